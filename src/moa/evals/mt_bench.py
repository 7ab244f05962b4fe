"""MT-Bench single-answer grading: two turns per question, each rated 1 to 10 by a judge.

The judge prompts are FastChat's (`single-v1`, `single-v1-multi-turn`, and their `-math-`
forms with a reference answer for math, reasoning and coding questions), read from
`moa/evals/data/mt_bench_judge_prompts.jsonl`. A rating is read from `[[N]]` (or `[N]`);
an unreadable one is left out of the averages and counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moa.engine import MoA
from moa.errors import ConfigError
from moa.evals.benchmark import Benchmark, Items, cost_columns, window
from moa.evals.data import load_json_or_jsonl, packaged, require
from moa.evals.harness import Harness, call_record
from moa.evals.report import Report
from moa.evals.runner import evaluate as run
from moa.evals.stats import mean_interval
from moa.evals.variants import RecipeLike, Variant
from moa.types import MessagesLike

__all__ = ["NEEDS_REFERENCE", "MTBench", "evaluate", "load_questions", "parse_rating"]

NEEDS_REFERENCE = ("math", "reasoning", "coding")


def parse_rating(text: str | None) -> float | None:
    """The judge's rating, 1 to 10; None if it gave none."""
    if not text:
        return None
    for pattern in (r"\[\[(\d+\.?\d*)\]\]", r"\[(\d+\.?\d*)\]", r"[Rr]ating:\s*(\d+\.?\d*)"):
        found = re.findall(pattern, text)
        if found:
            value = float(found[-1])
            if 1 <= value <= 10:
                return value
    return None


def load_questions(
    path: str | Path | None = None,
    references: str | Path | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
    categories: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Questions with `turns`, `category` and (for math, reasoning, coding) `reference`."""
    path = path or packaged("mt_bench_questions.jsonl")
    references = references or packaged("mt_bench_reference_gpt4.jsonl")
    refs = {}
    for i, r in enumerate(load_json_or_jsonl(references)):
        require(r, ("question_id", "choices"), f"{references}: item {i}")
        choices = r["choices"]
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            raise ConfigError(f"{references}: item {i}: 'choices' must be a list of objects")
        require(choices[0], ("turns",), f"{references}: item {i}: choices[0]")
        refs[_question_id(r, f"{references}: item {i}")] = choices[0]["turns"]
    items = []
    for i, row in enumerate(load_json_or_jsonl(path)):
        require(row, ("question_id", "category", "turns"), f"{path}: item {i}")
        qid = _question_id(row, f"{path}: item {i}")
        if categories and row["category"] not in categories:
            continue
        items.append(
            {
                "id": str(qid),
                "category": row["category"],
                "turns": list(row["turns"]),
                "reference": refs.get(qid) if row["category"] in NEEDS_REFERENCE else None,
            }
        )
    return window(items, limit, offset)


def _question_id(row: dict[str, Any], where: str) -> int:
    try:
        return int(row["question_id"])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: 'question_id' must be a number") from None


def _prompts() -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in load_json_or_jsonl(packaged("mt_bench_judge_prompts.jsonl"))}


def judge_messages(item: dict[str, Any], answers: Sequence[str], turn: int) -> list[dict[str, str]]:
    """The judge's conversation for `turn` (1 or 2), as FastChat builds it."""
    prompts = _prompts()
    q, ref = item["turns"], item["reference"]
    math = ref is not None
    if turn == 1:
        spec = prompts["single-math-v1" if math else "single-v1"]
        fields = {"question": q[0], "answer": answers[0]}
        if math:
            fields["ref_answer_1"] = ref[0]
    else:
        spec = prompts["single-math-v1-multi-turn" if math else "single-v1-multi-turn"]
        fields = {
            "question_1": q[0],
            "question_2": q[1],
            "answer_1": answers[0],
            "answer_2": answers[1],
        }
        if math:
            fields["ref_answer_1"], fields["ref_answer_2"] = ref[0], ref[1]
    return [
        {"role": "system", "content": str(spec["system_prompt"])},
        {"role": "user", "content": str(spec["prompt_template"]).format(**fields)},
    ]


@dataclass
class MTBench(Benchmark):
    """MT-Bench: both turns answered, each graded 1-10 by the judge (FastChat's prompts)."""

    name: ClassVar[str] = "mt-bench"
    title: ClassVar[str] = "MT-Bench"
    report: ClassVar[str] = "score"
    kinds: ClassVar[tuple[str, ...]] = ("recipe",)

    judge: str = field(metadata={"help": "The judge's model reference.", "short": "-j"})
    category: list[str] | None = field(
        default=None, metadata={"help": "Only these categories (repeatable)."}
    )
    questions: Path | None = field(default=None, metadata={"help": "Questions JSONL."})
    references: Path | None = field(default=None, metadata={"help": "Reference answers JSONL."})
    judge_max_tokens: int = field(default=1024, metadata={"help": "The judge's answer budget."})

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        items = load_questions(
            self.questions,
            self.references,
            limit=limit,
            offset=offset,
            categories=self.category or (),
        )
        meta = {
            "judge": self.judge,
            "categories": sorted({i["category"] for i in items}),
            "judge_prompts": "FastChat single-v1 / single-math-v1 (+ multi-turn), GPT-4 references",
        }
        return Items(items, meta)

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        return str(item["turns"][0])

    async def work(self, harness: Harness, moa: MoA, item: dict[str, Any]) -> dict[str, Any]:
        conversation: list[dict[str, str]] = []
        answers: list[str] = []
        tokens_in = tokens_out = 0
        seconds = wall = 0.0
        price: float | None = 0.0
        traces = []
        cached = 0
        for question in item["turns"][:2]:
            conversation.append({"role": "user", "content": question})
            result, cost, took = await harness.answer(moa, conversation)
            wall += took
            cached += cost.cached_calls
            answers.append(result.text)
            conversation.append({"role": "assistant", "content": result.text})
            tokens_in += cost.input_tokens
            tokens_out += cost.output_tokens
            price = None if price is None or cost.cost is None else price + cost.cost
            seconds += cost.seconds
            traces.append(result.trace.to_dict())
        ratings: list[float | None] = []
        calls = []
        for turn in (1, 2)[: len(answers)]:
            call, _ = await harness.judge(
                self.judge, judge_messages(item, answers, turn), max_tokens=self.judge_max_tokens
            )
            ratings.append(parse_rating(call.text))
            calls.append(call_record(call))
        return {
            "category": item["category"],
            "answers": answers,
            "ratings": ratings,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost": price,
            "seconds": round(seconds, 3),
            "wall_s": round(wall, 3),
            "cached_calls": cached,
            "judge_calls": calls,
            "traces": traces,
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
        return f"MT-Bench on {count} questions, judged by {self.judge}"

    def log_line(self, row: dict[str, Any], count: int) -> str:
        return f"{row['name']}: score {row['score']:.2f} on {count}"


async def evaluate(
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    judge: str,
    questions: str | Path | None = None,
    references: str | Path | None = None,
    categories: Sequence[str] = (),
    judge_max_tokens: int = 1024,
    **options: Any,
) -> Report:
    """`moa.evals.runner.evaluate` on MT-Bench."""
    bench = MTBench(
        judge,
        list(categories) or None,
        Path(questions) if questions else None,
        Path(references) if references else None,
        judge_max_tokens,
    )
    return await run(bench, recipes, harness, **options)


def summarize(variant: Variant, records: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
    ok = [r for r in records if r.get("ok")]
    turns: list[list[float]] = [[], []]
    by_category: dict[str, list[float]] = {}
    unparsed = 0
    for r in ok:
        for t, rating in enumerate(r["ratings"]):
            if rating is None:
                unparsed += 1
                continue
            turns[t].append(rating)
            by_category.setdefault(r["category"], []).append(rating)
    every = turns[0] + turns[1]
    score, lo, hi = mean_interval(every)

    def avg(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    return {
        **cost_columns(variant, ok, n),
        "score": score,
        "ci_low": lo,
        "ci_high": hi,
        "turn1": avg(turns[0]),
        "turn2": avg(turns[1]),
        "categories": {k: avg(v) for k, v in sorted(by_category.items())},
        "unparsed": unparsed,
    }
