"""Benchmarks of verifiable instructions (IFEval, IFBench): each prompt carries instructions
("answer in under 100 words", "no commas") that a program checks, strict (the response as it
is) and loose (also with its first and/or last line removed, or '*' removed), by the
checkers of `moa.evals.checkers`. No judge model.

Scores: prompt-level (every instruction of the prompt followed) and instruction-level. The
prompts whose instructions cannot be checked offline are left out after splitting (so the
halves stay fixed) and named in the report. Rows: as GSM8K's but no `vote`, and `select`: the
proposal most in agreement with the others (`moa.strategies.agreement.most_agreed`) among the
first layer's proposers' answers alone, chosen after the fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from moa.errors import ConfigError
from moa.evals import checkers
from moa.evals.benchmark import SPLITS, Benchmark, Items, check_split, window
from moa.evals.data import load_json_or_jsonl, packaged
from moa.strategies.agreement import most_agreed
from moa.types import MessagesLike

__all__ = ["InstructionBenchmark", "split_rows"]


def split_rows(rows: Sequence[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The rows of a split: development is the first half (one more when the count is odd),
    held-out the second."""
    check_split(split)
    half = (len(rows) + 1) // 2
    return {"dev": list(rows[:half]), "held-out": list(rows[half:]), "all": list(rows)}[split]


@dataclass
class InstructionBenchmark(Benchmark):
    """IFEval and IFBench: the same scoring on their own files and checkers."""

    report: ClassVar[str] = "instructions"
    kinds: ClassVar[tuple[str, ...]] = ("alone", "rank", "recipe", "self", "select")
    splits: ClassVar[tuple[str, ...]] = SPLITS
    select_label: ClassVar[str | None] = "agreement selection"
    measure: ClassVar[str] = "prompt-level strict"
    suite: ClassVar[checkers.Suite]
    file: ClassVar[str]
    source: ClassVar[str]
    """Where the packaged file comes from, for the report."""

    def order(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows in the order that the splits halve (the file's)."""
        return rows

    def rows(self, data: Path | None) -> list[dict[str, Any]]:
        rows = load_json_or_jsonl(data or packaged(self.file))
        for row in rows:
            if not {"key", "prompt", "instruction_id_list", "kwargs"} <= set(row):
                raise ConfigError(
                    f"{data or self.file}: a row lacks key, prompt, instruction_id_list or kwargs"
                )
        return rows

    def prompts(
        self,
        data: Path | None = None,
        *,
        split: str = "all",
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The prompts of a split that can be checked offline (`id`, `prompt`,
        `instruction_id_list`, `kwargs`; from `offset`, at most `limit`), and the keys of
        those left out."""
        chosen = split_rows(self.order(self.rows(data)), split)
        items, left_out = [], []
        for row in chosen:
            if set(row["instruction_id_list"]) & set(checkers.UNCHECKABLE):
                left_out.append(str(row["key"]))
                continue
            kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in row["kwargs"]]
            items.append({**row, "id": str(row["key"]), "kwargs": kwargs})
        return window(items, limit, offset), left_out

    def check(self) -> None:
        checkers.registry(self.suite)  # fail before any model runs if they cannot load

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        items, left_out = self.prompts(data, split=split, limit=limit, offset=offset)
        meta = {
            "left out (cannot be checked offline)": {
                "keys": left_out,
                "instruction types": checkers.UNCHECKABLE,
            },
            "data": str(data or f"packaged {self.file} ({self.source})"),
        }
        return Items(items, meta)

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        return str(item["prompt"])

    def score(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        followed = checkers.follows(self.suite, item, text)
        return {
            "instructions": item["instruction_id_list"],
            **followed,
            "correct": all(followed["strict"]),
        }

    def correct(self, record: dict[str, Any]) -> bool:
        return all(record["strict"])

    def columns(self, ok: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
        instructions = max(sum(len(r["strict"]) for r in ok), 1)
        return {
            "loose": sum(1 for r in ok if all(r["loose"])) / n if n else 0.0,
            "instruction_strict": sum(sum(r["strict"]) for r in ok) / instructions,
            "instruction_loose": sum(sum(r["loose"]) for r in ok) / instructions,
        }

    def select(self, item: dict[str, Any], texts: list[str]) -> int:
        return most_agreed(texts).index

    def heading(self, split: str, count: int, offset: int) -> str:
        return f"{self.title} ({split}): instructions followed on {count} prompts"

    def log_line(self, row: dict[str, Any], count: int) -> str:
        return super().log_line(row, count) + f", loose {row['loose']:.1%}"
