"""GSM8K exact-match accuracy of a recipe and of the baselines made from it, on the same problems
(each proposer alone, their majority vote, the LLM ranker, the recipe, its Self-MoA twin:
`moa.evals.variants`).

The 1,319 test problems ship in `moa/evals/data/gsm8k_test.jsonl` (MIT, see the NOTICE there).
An answer is read as the strategy reads numbers (`moa.strategies.read.extract_number`) and
compared with the number after '####'. No splits: problems are chosen by offset and limit (the
development problems were 0-99, the held-out ones 1000-1099).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moa.errors import ConfigError
from moa.evals.benchmark import Benchmark, Items, window
from moa.evals.data import load_json_or_jsonl, packaged, require
from moa.evals.harness import Harness
from moa.evals.report import Report
from moa.evals.runner import evaluate as run
from moa.evals.variants import RecipeLike, dedupe, variants_for
from moa.strategies.read import extract_number
from moa.types import MessagesLike

__all__ = [
    "GSM8K",
    "KINDS",
    "PROMPTS",
    "dedupe",
    "evaluate",
    "load_problems",
    "score",
    "template_of",
    "variants_for",
]

PROMPTS = {
    "answer-line": (
        "{question}\n\nSolve step by step, then give the final answer on the last line as "
        "'Answer: <number>'."
    ),
    "plain": "{question}",
}
"""How a problem is put to the models. 'answer-line' is the one the measurements use."""

KINDS = ("alone", "vote", "rank", "recipe", "self")


def load_problems(
    path: str | Path | None = None, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """Problems with `id`, `question` and `gold` (the number after '####')."""
    rows = load_json_or_jsonl(path or packaged("gsm8k_test.jsonl"))
    out = []
    where = path or "gsm8k_test.jsonl"
    for i, row in enumerate(rows):
        require(row, ("question",), f"{where}: item {i}")
        gold = extract_number(str(row.get("answer", "")))
        out.append({"id": str(row.get("id", i)), "question": row["question"], "gold": gold})
    return window(out, limit, offset)


def template_of(prompt: str) -> str:
    """The template of a prompt style ('answer-line', 'plain') or of a template itself, checked:
    it may name {question} and nothing else."""
    template = PROMPTS.get(prompt, prompt)
    try:
        template.format(question="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"--prompt: {template!r} is not a template of {{question}} ({exc!r}): use braces "
            "for only {question}, or double them ({{ }}) for a literal brace"
        ) from None
    return template


def score(text: str | None, gold: str | None) -> tuple[str | None, bool]:
    answer = extract_number(text)
    return answer, answer is not None and answer == gold


@dataclass
class GSM8K(Benchmark):
    """GSM8K exact-match accuracy of each recipe and its baselines (each proposer alone,
    majority vote, LLM ranker, Self-MoA twin), with 95% intervals, tokens and wall time."""

    name: ClassVar[str] = "gsm8k"
    title: ClassVar[str] = "GSM8K"
    kinds: ClassVar[tuple[str, ...]] = KINDS
    default_limit: ClassVar[int | None] = 100
    data_help: ClassVar[str | None] = "GSM8K JSONL (default: shipped)."
    measure: ClassVar[str] = "exact match"

    prompt_style: str = field(
        default="answer-line",
        metadata={
            "flag": "prompt",
            "help": "'answer-line', 'plain', or a template with {question}.",
        },
    )

    def check(self) -> None:
        template_of(self.prompt_style)

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        meta = {
            "prompt": template_of(self.prompt_style),
            "data": str(data or "packaged gsm8k_test.jsonl (MIT)"),
        }
        return Items(load_problems(data, limit=limit, offset=offset), meta)

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        return template_of(self.prompt_style).format(question=item["question"])

    def score(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        answer, correct = score(text, item["gold"])
        return {"answer": answer, "gold": item["gold"], "correct": correct}

    def correct(self, record: dict[str, Any]) -> bool:
        # scored again from the text, so every row uses the same (current) extraction
        return score(record.get("text"), record.get("gold"))[1]

    def heading(self, split: str, count: int, offset: int) -> str:
        return f"{self.title}: exact match on {count} problems (offset {offset})"


async def evaluate(
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    prompt: str = "answer-line",
    **options: Any,
) -> Report:
    """`moa.evals.runner.evaluate` on GSM8K (kept for the callers of this module)."""
    return await run(GSM8K(prompt_style=prompt), recipes, harness, **options)
