"""What a benchmark is to the harness: how its items load, how each is put to a recipe, how an
answer is scored and how a row of scores is summed up. One class per benchmark, registered by
name in `moa.evals.registry`; `moa.evals.runner.evaluate` runs any of them and `moa eval NAME`
is made from it (its options are the class's dataclass fields).

    @dataclass
    class Trivia(Benchmark):
        name: ClassVar[str] = "trivia"
        title: ClassVar[str] = "Trivia"
        hint: str = field(default="", metadata={"help": "Added to every question."})

        def load(self, data, *, split, limit, offset): ...
        def prompt(self, item): return item["question"] + self.hint
        def score(self, item, text): return {"correct": text == item["answer"]}
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from moa.engine import MoA
from moa.errors import ConfigError
from moa.evals.harness import Harness, answer_fields
from moa.evals.stats import wilson
from moa.evals.variants import Variant
from moa.types import MessagesLike, ToolCall

__all__ = ["SPLITS", "Benchmark", "Items", "check_split", "cost_columns", "wall_time", "window"]

SPLITS = ("dev", "held-out", "all")
"""Development (choose on it), held-out (report on it) and both."""


@dataclass
class Items:
    """The items of one run (each with an `id`) and what the report says about where they came
    from."""

    items: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def window(items: Sequence[dict[str, Any]], limit: int | None, offset: int) -> list[dict[str, Any]]:
    """`limit` items from `offset` (all of the rest without a limit)."""
    return list(items[offset : None if limit is None else offset + limit])


def check_split(split: str, splits: Sequence[str] = SPLITS) -> None:
    if split not in splits:
        raise ConfigError(f"unknown split {split!r}; use {', '.join(splits)}")


def wall_time(records: Sequence[dict[str, Any]]) -> tuple[float | None, int]:
    """Mean wall seconds of the items that ran alone (concurrency 1) and made every call afresh
    (no cache hit), and how many there were: the latency a user would see, measured, never
    estimated."""
    fresh = [
        float(r["wall_s"])
        for r in records
        if r.get("ok") and not r.get("cached_calls") and r.get("concurrency") == 1
    ]
    return (sum(fresh) / len(fresh) if fresh else None), len(fresh)


def cost_columns(
    variant: Variant,
    ok: Sequence[dict[str, Any]],
    n: int,
    timing: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The columns every report row shares: its name, kind and size, tokens, cost (None unless
    every item's is known) and call seconds per answered item, the measured wall time (from
    `timing`, an uncached run, if given), the failed items and the results file."""
    per = max(len(ok), 1)
    wall, timed = wall_time(ok if timing is None else timing)
    costs = [r.get("cost") for r in ok]
    return {
        "cost": sum(costs) / per if ok and None not in costs else None,  # type: ignore[arg-type]
        "name": variant.name,
        "kind": variant.kind,
        "n": n,
        "tokens": sum(r["input_tokens"] + r["output_tokens"] for r in ok) / per,
        "call_seconds": sum(r["seconds"] for r in ok) / per,
        "wall": wall,
        "timed": timed,
        "errors": n - len(ok),
        "file": f"runs/{variant.file}",
    }


@dataclass
class Benchmark:
    """A benchmark: subclasses set the class variables, write `load`, `prompt` and `score`,
    and may change the rest. Their dataclass fields are their options (`moa eval NAME --x`)."""

    name: ClassVar[str]
    """The command's name: `moa eval NAME`."""
    title: ClassVar[str]
    report: ClassVar[str] = "accuracy"
    """The kind of report (`moa.evals.report.COLUMNS`)."""
    kinds: ClassVar[tuple[str, ...]] = ("alone", "vote", "rank", "recipe", "self")
    """The rows it can report (`moa.evals.variants.ORDER`); the first is the default set."""
    splits: ClassVar[tuple[str, ...]] = ()
    """Its splits (`SPLITS`), or none: then items are chosen by --offset and --limit only."""
    default_limit: ClassVar[int | None] = None
    data_help: ClassVar[str | None] = None
    """The --data option's help; None where the benchmark reads no data file."""
    select_label: ClassVar[str | None] = None
    """The `select` row's name (a choice among the proposers' answers after the fact)."""
    measure: ClassVar[str] = "accuracy"
    """What the accuracy column measures, in the log."""

    def load(self, data: Path | None, *, split: str, limit: int | None, offset: int) -> Items:
        raise NotImplementedError

    def prompt(self, item: dict[str, Any]) -> MessagesLike:
        raise NotImplementedError

    def request(self, item: dict[str, Any]) -> dict[str, Any]:
        """What the run is given beside the prompt: `tools`, `tool_choice`, `response_format`
        (`moa.engine.MoA.arun`'s keyword arguments); nothing by default."""
        return {}

    def answer_text(self, text: str | None, tool_calls: Sequence[ToolCall]) -> str | None:
        """The text of an answer that is scored (and compared among answers): its text by
        default; a benchmark of tool calls writes its calls out here."""
        return text

    def score(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        """The fields a record of this answer carries, `correct` among them."""
        raise NotImplementedError

    def check(self) -> None:
        """Fail before any model runs when the options or the benchmark's tools are unusable."""

    async def work(self, harness: Harness, moa: MoA, item: dict[str, Any]) -> dict[str, Any]:
        """Answer one item and score the answer (in a thread: scorers may run programs)."""
        result, cost, wall = await harness.answer(moa, self.prompt(item), **self.request(item))
        text = self.answer_text(result.text, result.tool_calls)
        scored = await asyncio.to_thread(self.score, item, text)
        fields = answer_fields(result, cost, wall)
        if text != result.text:
            fields |= {"text": text, "reply": result.text}
        return {**scored, **fields}

    def correct(self, record: dict[str, Any]) -> bool:
        return bool(record.get("correct"))

    def columns(self, ok: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
        """Columns of its own beside the accuracy (none by default)."""
        return {}

    def summarize(
        self,
        variant: Variant,
        records: Sequence[dict[str, Any]],
        n: int,
        timing: Sequence[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A report row: accuracy with its Wilson interval, tokens, cost, wall time."""
        ok = [r for r in records if r.get("ok")]
        correct = sum(1 for r in ok if self.correct(r))
        lo, hi = wilson(correct, n)
        return {
            **cost_columns(variant, ok, n, timing),
            "correct": correct,
            "accuracy": correct / n if n else 0.0,
            "ci_low": lo,
            "ci_high": hi,
            "output_tokens": sum(r["output_tokens"] for r in ok) / max(len(ok), 1),
            **self.columns(ok, n),
            "recipe": variant.recipe.model_dump(mode="json", exclude_defaults=True),
        }

    def select(self, item: dict[str, Any], texts: list[str]) -> int:
        """The index of the answer the `select` row takes among the proposers' answers."""
        raise NotImplementedError

    def heading(self, split: str, count: int, offset: int) -> str:
        """The report's title."""
        where = f" ({split})" if self.splits else ""
        return f"{self.title}{where}: {self.measure} on {count} items (offset {offset})"

    def log_line(self, row: dict[str, Any], count: int) -> str:
        wall = f", {row['wall']:.1f} s/q (n={row['timed']})" if row.get("wall") is not None else ""
        return (
            f"{row['name']}: {self.measure} {row['accuracy']:.1%} "
            f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}] on {count}, "
            f"{row['tokens']:.0f} tokens/q{wall}"
        )
