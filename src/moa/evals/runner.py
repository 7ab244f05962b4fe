"""The one runner: any registered benchmark (`moa.evals.benchmark.Benchmark`), every row of
every recipe given, on the same items; resumable, cached, scored, summed up and reported.

    report = await evaluate(IFEval(), ["local"], Harness(out_dir=Path("out")), split="dev")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moa.batch import read_results
from moa.evals import posthoc
from moa.evals.benchmark import Benchmark, Items, check_split, cost_columns, wall_time
from moa.evals.harness import Harness, ItemCost, answer_fields, call_record
from moa.evals.report import Report, write_report
from moa.evals.stats import mean_interval, wilson
from moa.evals.variants import ORDER, RecipeLike, Variant, dedupe, recipe_key, variants_for
from moa.recipe import load_recipe

__all__ = [
    "Harness",
    "ItemCost",
    "RecipeLike",
    "Variant",
    "answer_fields",
    "call_record",
    "cost_columns",
    "evaluate",
    "load_items",
    "mean_interval",
    "recipe_key",
    "scored_row",
    "wall_time",
    "wilson",
]

_DEFAULT: Any = object()


def load_items(
    bench: Benchmark,
    data: str | Path | None = None,
    *,
    split: str | None = None,
    limit: int | None = _DEFAULT,
    offset: int = 0,
) -> Items:
    """The benchmark's items of a split (its first split when none is given), from `offset`,
    at most `limit` (the benchmark's default when not given)."""
    split = split or (bench.splits[0] if bench.splits else "all")
    if bench.splits:
        check_split(split, bench.splits)
    return bench.load(
        Path(data).expanduser() if data else None,
        split=split,
        limit=bench.default_limit if limit is _DEFAULT else limit,
        offset=offset,
    )


async def scored_row(
    harness: Harness,
    bench: Benchmark,
    variant: Variant,
    items: Sequence[dict[str, Any]],
    timing: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark's work on every item with one variant (resumable) and sum up the
    records as a report row, with wall times from the uncached run under `timing` if given."""

    async def work(moa: Any, item: dict[str, Any]) -> dict[str, Any]:
        return await bench.work(harness, moa, item)

    records, _ = await harness.run(variant, items, work)
    timed = None
    if timing is not None:
        timed = [r for r in read_results(timing / "runs" / variant.file).values() if r.get("ok")]
    n = len(records) if harness.report_only else len(items)
    return bench.summarize(variant, records, n, timed)


async def evaluate(
    bench: Benchmark,
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    limit: int | None = _DEFAULT,
    offset: int = 0,
    kinds: Sequence[str] | None = None,
    timing: str | Path | None = None,
) -> Report:
    """Every row of `kinds` (default: all the benchmark's) of every recipe, on the same items;
    the report written under the harness's `out_dir`."""
    bench.check()
    split = split or (bench.splits[0] if bench.splits else "all")
    loaded = load_items(bench, data, split=split, limit=limit, offset=offset)
    kinds = list(bench.kinds if kinds is None else kinds)
    if "select" in kinds and "alone" not in kinds:  # the selection chooses among these
        kinds.append("alone")
    sources = [load_recipe(r) for r in recipes]
    variants = dedupe([v for r in sources for v in variants_for(r, kinds)])
    rows = []
    timed = Path(timing) if timing else None
    for variant in sorted(variants, key=lambda v: ORDER.index(v.kind)):
        row = await scored_row(harness, bench, variant, loaded.items, timed)
        if not row["n"]:
            continue
        rows.append(row)
        harness.log(bench.log_line(row, len(loaded.items)))
    if "select" in kinds and bench.select_label:
        for recipe in sources:
            chosen = _selection_row(harness, bench, recipe, loaded.items)
            if chosen is not None:
                rows.append(chosen)
                harness.log(bench.log_line(chosen, chosen["n"]))
    meta: dict[str, Any] = {"benchmark": bench.name}
    if bench.splits:
        meta["split"] = split
    meta |= {"items": len(loaded.items), "offset": offset, **loaded.meta}
    report = Report(
        title=bench.heading(split, len(loaded.items), offset),
        rows=rows,
        meta=meta,
        kind=bench.report,
    )
    return write_report(harness.out_dir, report)


def _selection_row(
    harness: Harness, bench: Benchmark, recipe: Any, items: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """The `select` row: among the proposers' answers alone, the one the benchmark's selection
    rule takes, chosen after the fact (no model call)."""
    found = posthoc.proposals(harness.out_dir, recipe, items)
    if not found or bench.select_label is None:
        return None
    variant = posthoc.selection_variant(recipe, bench.select_label)
    records = posthoc.chosen_records(harness.out_dir, variant, items, found, bench.select)
    return bench.summarize(variant, records, len(records))
