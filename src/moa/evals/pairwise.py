"""AlpacaEval-style pairwise preference of a recipe's answers over reference outputs.

The judge sees every pair twice, the recipe's answer first and then second, so a judge that
prefers a position cancels out: a question scores 1 when the recipe's answer wins both times,
0.5 when the verdicts split or tie, 0 when it loses both. The win rate is the mean score.

Length control: judges favour longer answers. We fit p(win) = sigmoid(a + b * d), with
d = tanh((len(answer) - len(reference)) / sd) the scaled length difference (as AlpacaEval 2.0
does), by L2-regularised logistic regression on the per-question scores, and report sigmoid(a):
the predicted win rate at equal length. This is a one-judge, one-model simplification of
AlpacaEval's GLM (which also models instruction difficulty): a guide, not its number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moa.engine import MoA
from moa.errors import ConfigError
from moa.evals.benchmark import Benchmark, Items, cost_columns, window
from moa.evals.data import load_json_or_jsonl, packaged, require
from moa.evals.harness import Harness, answer_fields, call_record
from moa.evals.report import Report
from moa.evals.runner import evaluate as run
from moa.evals.stats import mean_interval
from moa.evals.variants import RecipeLike, Variant
from moa.types import MessagesLike

__all__ = [
    "JUDGE_PROMPTS",
    "Pairwise",
    "evaluate",
    "length_controlled",
    "load_pairs",
    "parse_verdict",
]

BRIEF_SYSTEM = (
    "You compare two answers to the same question and say which is better: more helpful, "
    'accurate and relevant. Reply with "[[A]]" if answer A is better, "[[B]]" if answer B is '
    'better, or "[[C]]" for a tie. Reply with the verdict only.'
)


def _fastchat(name: str) -> tuple[str, str]:
    row = next(
        r for r in load_json_or_jsonl(packaged("mt_bench_judge_prompts.jsonl")) if r["name"] == name
    )
    return str(row["system_prompt"]), str(row["prompt_template"])


def judge_prompt(style: str) -> tuple[str, str]:
    """(system, template with {question}, {answer_a}, {answer_b}) of a judge prompt style."""
    if style not in JUDGE_PROMPTS:
        raise ConfigError(f"unknown judge prompt {style!r}; use {', '.join(JUDGE_PROMPTS)}")
    if style == "brief":
        return BRIEF_SYSTEM, _fastchat("pair-v2")[1]
    return _fastchat(style)


JUDGE_PROMPTS = ("pair-v2", "brief")
"""'pair-v2' is FastChat's pairwise judge (an explanation, then [[A]]/[[B]]/[[C]]); 'brief' asks
for the verdict only, for small or slow judges."""


def parse_verdict(text: str | None) -> str | None:
    """'A', 'B' or 'C' (tie) from a judge's reply; None when it cannot be read."""
    if not text:
        return None
    found = re.findall(r"\[\[\s*([ABC])\s*\]\]", text)
    if found:
        return str(found[-1])
    bare = re.match(r"\W*(?:assistant\s+|answer\s+|output\s+)?([AB])\b", text, re.IGNORECASE)
    if bare:
        return bare.group(1).upper()
    if re.search(r"\btie\b", text, re.IGNORECASE):
        return "C"
    return None


def load_pairs(
    path: str | Path, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """Reference outputs in AlpacaEval's format: `instruction`, `output` (and `generator`)."""
    rows = load_json_or_jsonl(path)
    items = []
    for i, row in enumerate(rows):
        require(row, ("instruction", "output"), f"{path}: item {i}")
        items.append(
            {
                "id": str(row.get("id", i)),
                "instruction": str(row["instruction"]),
                "reference": str(row["output"]),
                "generator": str(row.get("generator", "reference")),
            }
        )
    return window(items, limit, offset)


def length_controlled(
    scores: Sequence[float], ours: Sequence[int], theirs: Sequence[int], l2: float = 1.0
) -> float:
    """The win rate (0-1) predicted at equal length; see the module docstring."""
    n = len(scores)
    if n == 0:
        return 0.0
    diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / n) or 1.0
    xs = [math.tanh(d / sd) for d in diffs]
    a = b = 0.0
    for _ in range(100):  # Newton steps on the penalised log-likelihood (b only is penalised)
        ps = [1 / (1 + math.exp(-(a + b * x))) for x in xs]
        ga = sum(y - p for y, p in zip(scores, ps, strict=True))
        gb = sum((y - p) * x for y, p, x in zip(scores, ps, xs, strict=True)) - l2 * b
        w = [p * (1 - p) for p in ps]
        haa = sum(w) + 1e-9
        hab = sum(wi * x for wi, x in zip(w, xs, strict=True))
        hbb = sum(wi * x * x for wi, x in zip(w, xs, strict=True)) + l2
        det = haa * hbb - hab * hab
        if det <= 0:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = max(min(a + da, 20.0), -20.0), b + db
        if abs(da) + abs(db) < 1e-9:
            break
    return 1 / (1 + math.exp(-a))


@dataclass
class Pairwise(Benchmark):
    """AlpacaEval-style win rate against reference outputs, both orders, length-controlled."""

    name: ClassVar[str] = "pairwise"
    title: ClassVar[str] = "Pairwise preference"
    report: ClassVar[str] = "winrate"
    kinds: ClassVar[tuple[str, ...]] = ("recipe",)
    default_limit: ClassVar[int | None] = 20

    against: Path = field(
        metadata={
            "help": "Reference outputs in AlpacaEval's format (JSON/JSONL).",
            "required": True,
        }
    )
    judge: str = field(metadata={"help": "The judge's model reference.", "short": "-j"})
    judge_prompt: str = field(
        default="pair-v2", metadata={"help": "'pair-v2' (FastChat) or 'brief' (verdict only)."}
    )
    judge_max_tokens: int = field(default=512, metadata={"help": "The judge's answer budget."})

    def check(self) -> None:
        judge_prompt(self.judge_prompt)

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        meta = {
            "against": str(self.against),
            "judge": self.judge,
            "judge_prompt": self.judge_prompt,
            "length_control": "logistic on tanh-scaled length difference; see docs/evaluation.md",
        }
        return Items(load_pairs(self.against, limit=limit, offset=offset), meta)

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        return str(item["instruction"])

    async def work(self, harness: Harness, moa: MoA, item: dict[str, Any]) -> dict[str, Any]:
        result, cost, wall = await harness.answer(moa, item["instruction"])
        system, template = judge_prompt(self.judge_prompt)
        ours, theirs = result.text, item["reference"]
        verdicts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        judge_tokens = 0  # the evaluation's cost, not the recipe's
        for ours_first in (True, False):
            a, b = (ours, theirs) if ours_first else (theirs, ours)
            user = template.format(question=item["instruction"], answer_a=a, answer_b=b)
            call, judged = await harness.judge(
                self.judge,
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                max_tokens=self.judge_max_tokens,
            )
            verdict = parse_verdict(call.text)
            win = "A" if ours_first else "B"
            lose = "B" if ours_first else "A"
            score = 1.0 if verdict == win else 0.0 if verdict == lose else 0.5
            verdicts.append({"ours_first": ours_first, "verdict": verdict, "score": score})
            calls.append(call_record(call))
            judge_tokens += judged.input_tokens + judged.output_tokens
        return {
            **answer_fields(result, cost, wall),
            "score": sum(v["score"] for v in verdicts) / 2,
            "verdicts": verdicts,
            "unparsed": sum(1 for v in verdicts if v["verdict"] is None),
            "length": len(ours),
            "reference_length": len(theirs),
            "judge_calls": calls,
            "judge_tokens": judge_tokens,
        }

    def summarize(
        self,
        variant: Variant,
        records: Sequence[dict[str, Any]],
        n: int,
        timing: Sequence[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return summarize(variant, records, n)

    def heading(self, split: str, count: int, offset: int) -> str:
        return f"Pairwise preference against {Path(self.against).name}, judged by {self.judge}"

    def log_line(self, row: dict[str, Any], count: int) -> str:
        return f"{row['name']}: win rate {row['win_rate']:.1f}% on {count}"


async def evaluate(
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    against: str | Path,
    judge: str,
    judge_prompt_style: str = "pair-v2",
    judge_max_tokens: int = 512,
    **options: Any,
) -> Report:
    """`moa.evals.runner.evaluate` on pairwise preference."""
    bench = Pairwise(Path(against), judge, judge_prompt_style, judge_max_tokens)
    return await run(bench, recipes, harness, **options)


def summarize(variant: Variant, records: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
    ok = [r for r in records if r.get("ok")]
    scores = [float(r["score"]) for r in ok]
    mean, lo, hi = mean_interval(scores)
    lc = length_controlled(scores, [r["length"] for r in ok], [r["reference_length"] for r in ok])
    ref_len = sum(r["reference_length"] for r in ok) or 1
    return {
        **cost_columns(variant, ok, n),
        "answered": len(ok),
        "win_rate": 100 * mean,
        "ci_low": 100 * max(lo, 0.0),
        "ci_high": 100 * min(hi, 1.0),
        "lc_win_rate": 100 * lc if ok else 0.0,
        "length_ratio": sum(r["length"] for r in ok) / ref_len,
        "unparsed": sum(int(r["unparsed"]) for r in ok),
    }
