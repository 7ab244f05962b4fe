"""Run a function over a dataset: concurrent with a bound, resumable, one JSONL line per item.

    items = load_items("questions.jsonl")                 # JSONL or JSON; each needs an id
    summary = await run_batch(items, work, out="results.jsonl", concurrency=4)

    # or a recipe over a dataset, from Python:
    summary = run_recipe_sync("local", items, out="answers.jsonl", prompt_key="question")

`work(item)` returns a JSON-able dict. Each finished item is appended to `out` at once, as
`{"id": ..., "ok": true, ...result}` or `{"id": ..., "ok": false, "error": ..., "error_type":
...}`: a failing item is recorded and the batch goes on. Run it again with the same `out` and
only the items without a successful line run (failed ones are retried); an interrupted run
loses at most the items in flight.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from moa.errors import ConfigError, RunError

__all__ = [
    "BatchSummary",
    "load_items",
    "read_results",
    "run_batch",
    "run_batch_sync",
    "run_recipe",
    "run_recipe_sync",
]

Work = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class BatchSummary:
    """What a batch did: items run now, skipped (already done), failed, and the time taken."""

    out: Path
    total: int
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def load_items(
    source: str | Path | Iterable[Mapping[str, Any]], *, id_key: str = "id"
) -> list[dict[str, Any]]:
    """Items from a JSONL/JSON file or an iterable of mappings. An item without an id gets its
    position ("0", "1", ...) as id; ids must be unique."""
    if isinstance(source, (str, Path)):
        from moa.evals.data import load_json_or_jsonl

        rows: list[dict[str, Any]] = load_json_or_jsonl(source)
    else:
        rows = [dict(r) for r in source]
    items = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        item = dict(row)
        item[id_key] = str(item.get(id_key, i))
        if item[id_key] in seen:
            raise ConfigError(f"item {i}: duplicate id {item[id_key]!r}")
        seen.add(item[id_key])
        items.append(item)
    return items


def read_results(out: str | Path) -> dict[str, dict[str, Any]]:
    """The last line for each id in a results file (a cut-off last line is ignored)."""
    path = Path(out)
    found: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "id" in record:
            found[str(record["id"])] = record
    return found


def _prepare(path: Path) -> dict[str, dict[str, Any]]:
    """The results so far. A line cut off by a crash is ended, so the next record is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with path.open("a", encoding="utf-8") as f:
            f.write("\n")
    return read_results(path)


def _sink(path: Path) -> TextIO:
    return path.open("a", encoding="utf-8")


def _progress(total: int, description: str, enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


async def run_batch(
    items: Sequence[Mapping[str, Any]],
    work: Work,
    *,
    out: str | Path,
    concurrency: int = 4,
    id_key: str = "id",
    progress: bool = True,
    description: str = "batch",
    retry_failed: bool = True,
) -> BatchSummary:
    """Run `work` over the items not yet done in `out`, at most `concurrency` at a time."""
    if concurrency < 1:
        raise ConfigError("concurrency: must be at least 1")
    path = Path(out)
    done = _prepare(path)
    todo = []
    for item in items:
        record = done.get(str(item[id_key]))
        if record is not None and (record.get("ok") or not retry_failed):
            continue
        todo.append(dict(item))
    summary = BatchSummary(out=path, total=len(items), skipped=len(items) - len(todo))
    start = time.monotonic()
    gate = asyncio.Semaphore(concurrency)
    bar = _progress(len(items), description, progress)
    with bar, _sink(path) as sink:
        task = bar.add_task(description, total=len(items), completed=summary.skipped, failed=0)

        async def one(item: dict[str, Any]) -> None:
            async with gate:
                key = str(item[id_key])
                try:
                    result = await work(item)
                    record = {"id": key, "ok": True, **result}
                except Exception as exc:  # recorded; the batch goes on
                    record = {
                        "id": key,
                        "ok": False,
                        "error": str(exc) or type(exc).__name__,
                        "error_type": type(exc).__name__,
                    }
                    if isinstance(exc, RunError) and exc.trace is not None:
                        record["trace"] = exc.trace.to_dict()
                    summary.failed += 1
                    summary.errors.append(f"{key}: {record['error']}")
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
                summary.ran += 1
                bar.update(task, advance=1, failed=summary.failed)

        await asyncio.gather(*(one(item) for item in todo))
    summary.seconds = time.monotonic() - start
    return summary


def run_batch_sync(items: Sequence[Mapping[str, Any]], work: Work, **kwargs: Any) -> BatchSummary:
    """The blocking twin of `run_batch`."""
    return asyncio.run(run_batch(items, work, **kwargs))


async def run_recipe(
    recipe: Any,
    items: Sequence[Mapping[str, Any]],
    *,
    out: str | Path,
    prompt_key: str = "prompt",
    moa: Any = None,
    keep_trace: bool = True,
    **kwargs: Any,
) -> BatchSummary:
    """Answer `item[prompt_key]` (a string or a list of messages) for every item with a recipe.
    Each line holds the answer, tokens, latency and (if `keep_trace`) the trace."""
    from moa.engine import MoA

    engine = moa or MoA(recipe)

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        if prompt_key not in item:
            raise ConfigError(f"item {item.get('id')!r} has no {prompt_key!r}")
        result = await engine.arun(item[prompt_key])
        totals = result.trace.totals()
        record: dict[str, Any] = {
            "text": result.text,
            "input_tokens": totals.input_tokens,
            "output_tokens": totals.output_tokens,
            "latency_s": round(result.trace.latency_s, 3),
        }
        if keep_trace:
            record["trace"] = result.trace.to_dict()
        return record

    try:
        return await run_batch(items, work, out=out, **kwargs)
    finally:
        if moa is None:
            await engine.aclose()


def run_recipe_sync(recipe: Any, items: Sequence[Mapping[str, Any]], **kwargs: Any) -> BatchSummary:
    """The blocking twin of `run_recipe`."""
    return asyncio.run(run_recipe(recipe, items, **kwargs))
