"""A recipe over a dataset: the work of one item, and `run_recipe` around `run_batch`.

An item is answered from `item[prompt_key]` (a string or a list of messages) or, for an
MT-Bench question (`turns`, and no prompt field), turn by turn: each turn is asked with the
conversation so far, the recipe's earlier answers included. Each line holds the answer (and
`answers`, one per turn), tokens, latency, cost (when prices are known), the input item (the
output formats need its fields) and, if asked, the trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moa.batch.executor import BatchSummary, run_batch
from moa.batch.reader import Source
from moa.cost import Prices, merge_prices, price_trace
from moa.engine import MoA
from moa.errors import ConfigError
from moa.recipe import Recipe

RecipeLike = Recipe | str | Path | Mapping[str, Any]
"""What `moa.recipe.load_recipe` accepts: a built-in name, a file, a mapping, a Recipe."""

__all__ = ["answer_item", "run_recipe", "run_recipe_sync"]


async def answer_item(
    engine: MoA,
    item: Mapping[str, Any],
    *,
    prompt_key: str = "prompt",
    id_key: str = "id",
    keep_trace: bool = True,
    prices: Prices | None = None,
) -> dict[str, Any]:
    """Answer one item with an engine (`moa.MoA`); the record of its line (without id/ok)."""
    if prompt_key in item:
        prompts: list[Any] = [item[prompt_key]]
        multi = False
    elif isinstance(item.get("turns"), list) and item["turns"]:
        prompts = [str(t) for t in item["turns"]]
        multi = True
    else:
        raise ConfigError(f"item {item.get(id_key)!r} has no {prompt_key!r} (nor MT-Bench 'turns')")
    history: list[dict[str, str]] = []
    answers: list[str] = []
    traces: list[dict[str, Any]] = []
    tokens_in = tokens_out = 0
    latency = 0.0
    cost: float | None = 0.0
    for prompt in prompts:
        if multi:
            history.append({"role": "user", "content": prompt})
        result = await engine.arun(history if multi else prompt)
        trace = result.trace
        priced = price_trace(trace, prices) if prices else None
        cost = None if cost is None or priced is None else cost + priced
        totals = trace.totals()
        tokens_in += totals.input_tokens
        tokens_out += totals.output_tokens
        latency += trace.latency_s
        answers.append(result.text)
        if multi:
            history.append({"role": "assistant", "content": result.text})
        if keep_trace:
            traces.append(trace.to_dict())
    record: dict[str, Any] = {
        "text": answers[-1],
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "latency_s": round(latency, 3),
        "cost": cost,
        "finished_at": round(time.time(), 3),
    }
    if multi:
        record["answers"] = answers
    if keep_trace:
        record.update({"traces": traces} if multi else {"trace": traces[0]})
    record["item"] = {k: v for k, v in item.items() if k != id_key}
    return record


async def run_recipe(
    recipe: RecipeLike | None,
    items: Source,
    *,
    out: str | Path,
    prompt_key: str = "prompt",
    moa: MoA | None = None,
    keep_trace: bool = True,
    prices: Prices | None = None,
    id_key: str = "id",
    **kwargs: Any,
) -> BatchSummary:
    """Answer every item with a recipe (or the engine `moa`), resumably; see `run_batch` for
    the other options. `prices` add to those of the recipe's `providers:` section."""
    if moa is not None:
        engine = moa
    elif recipe is not None:
        engine = MoA(recipe)
    else:
        raise ConfigError("give a recipe or an engine (moa=)")
    table = merge_prices(engine.recipe.providers, prices)

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        return await answer_item(
            engine,
            item,
            prompt_key=prompt_key,
            id_key=id_key,
            keep_trace=keep_trace,
            prices=table,
        )

    try:
        return await run_batch(items, work, out=out, id_key=id_key, **kwargs)
    finally:
        if moa is None:
            await engine.aclose()


def run_recipe_sync(recipe: RecipeLike | None, items: Source, **kwargs: Any) -> BatchSummary:
    """The blocking twin of `run_recipe`."""
    return asyncio.run(run_recipe(recipe, items, **kwargs))
