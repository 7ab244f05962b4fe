"""Rows chosen after the fact among the answers each proposer gave alone: a selection rule
measured on a benchmark without a new model call and without the engine (until the rule is a
strategy of its own, this is how it is compared with the rows that are).

The chosen row's cost is what the proposals cost together (every proposer's tokens and call
seconds); its wall time is left out, since no single run made it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from moa.batch import read_results
from moa.evals.variants import Variant, variants_for
from moa.recipe import Recipe

__all__ = ["Chooser", "chosen_records", "proposals", "selection_variant"]

Chooser = Callable[[dict[str, Any], list[str]], int]
"""(item, the proposals' texts in the recipe's order) -> the index chosen."""


def proposals(
    out_dir: Path, recipe: Recipe, items: Sequence[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per item id, the records of each proposer alone (the recipe's first layer, in order),
    for the items that every proposer answered."""
    files = [read_results(out_dir / "runs" / v.file) for v in variants_for(recipe, ["alone"])]
    out = {}
    for item in items:
        key = str(item["id"])
        records = [f.get(key) for f in files]
        if len(records) > 1 and all(r is not None and r.get("ok") for r in records):
            out[key] = [r for r in records if r is not None]
    return out


def selection_variant(recipe: Recipe, label: str) -> Variant:
    base = recipe.model_copy(
        update={"name": f"{recipe.name}: {label}", "layers": recipe.layers[:1]}
    )
    return Variant(base.name, base, "select")


def chosen_records(
    out_dir: Path,
    variant: Variant,
    items: Sequence[dict[str, Any]],
    found: dict[str, list[dict[str, Any]]],
    choose: Chooser,
) -> list[dict[str, Any]]:
    """Each item's chosen proposal as a record (its score fields, the proposals' summed cost,
    `chosen`), also written to the variant's results file for inspection."""
    out = []
    for item in items:
        records = found.get(str(item["id"]))
        if records is None:
            continue
        index = choose(item, [str(r.get("text") or "") for r in records])
        record = {k: v for k, v in records[index].items() if k not in ("trace", "concurrency")}
        for key in ("input_tokens", "output_tokens", "seconds", "calls"):
            record[key] = sum(r.get(key, 0) for r in records)
        record.update(id=str(item["id"]), chosen=index, wall_s=None, ok=True)
        out.append(record)
    path = out_dir / "runs" / variant.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
    return out
