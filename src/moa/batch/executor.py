"""Run a function over a stream of items: a bounded number in flight, one durable line each.

`run_batch` reads the items as it goes (a JSONL file is never read whole), keeps at most
`concurrency` of them in flight, and has the driver alone append each finished item's line
to the results log, flushed and fsync'ed before the item counts (moa.batch.log). Resuming
scans that log for the ids already done; an interrupted run loses only the items in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa.batch.log import ResultLog
from moa.batch.reader import Source, count_items, iter_items
from moa.errors import ConfigError, RunError

__all__ = ["BatchSummary", "Work", "failure_record", "run_batch", "run_batch_sync"]

Work = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

MAX_ERRORS = 100
"""Error lines a summary keeps (the log has them all): bounded on a million items."""


@dataclass
class BatchSummary:
    """What a batch did: items seen, run now, skipped (already done), failed, the time taken,
    and the cost of the calls made now (None when a call had no price)."""

    out: Path
    total: int
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    cost: float | None = None
    unpriced: int = 0
    """Answered items whose cost was unknown (a call without a price): `cost` counts the
    others."""
    notes: list[str] = field(default_factory=list)
    """What the executor has to say (Ray: workers lost, items sent again)."""

    def add_cost(self, cost: float | None) -> None:
        if cost is None:
            self.unpriced += 1
        else:
            self.cost = (self.cost or 0.0) + cost


def _progress(description: str, enabled: bool) -> Any:
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


class _Committer:
    """Group commit: records that finish while a write is on disk go in the next write, so one
    fsync serves many items and the event loop never waits for the disk."""

    def __init__(self, log: ResultLog) -> None:
        self.log = log
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def commit(self, record: dict[str, Any]) -> None:
        """Return once the record's line is on disk."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            group, self._pending = self._pending, []
            try:
                if self.log.fsync:
                    await asyncio.to_thread(self.log.commit, [r for r, _ in group])
                else:
                    self.log.commit([r for r, _ in group])
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    async def aclose(self) -> None:
        """Write what is pending (lines of finished items), then stop."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)


def failure_record(key: str, exc: Exception) -> dict[str, Any]:
    """The line of an item whose work raised `exc` (with the run's trace, if it has one)."""
    record: dict[str, Any] = {
        "id": key,
        "ok": False,
        "error": str(exc) or type(exc).__name__,
        "error_type": type(exc).__name__,
    }
    if isinstance(exc, RunError) and exc.trace is not None:
        record["trace"] = exc.trace.to_dict()
    return record


async def run_batch(
    items: Source,
    work: Work,
    *,
    out: str | Path,
    concurrency: int = 4,
    id_key: str = "id",
    progress: bool = True,
    description: str = "batch",
    retry_failed: bool = True,
    total: int | None = None,
    fsync: bool = True,
) -> BatchSummary:
    """Run `work` over the items not yet done in `out`, at most `concurrency` at a time.
    An item whose work raises is recorded as failed (as is one whose work returns a record
    with `ok: false`, as a remote worker does).

    `items`: a JSONL/JSON path or an iterable of mappings, read as the batch goes. `total`
    (for the progress bar) is counted when cheap. `fsync=False` trades the power-cut
    guarantee for speed (a kill still loses only the items in flight)."""
    if concurrency < 1:
        raise ConfigError("concurrency: must be at least 1")
    path = Path(out)
    log = ResultLog(path, fsync=fsync)
    done = log.done(retry_failed=retry_failed)
    summary = BatchSummary(out=path, total=0)
    start = time.monotonic()
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    bar = _progress(description, progress)
    committer = _Committer(log)
    log.open()
    try:
        with bar:
            if total is None and progress:
                total = count_items(items)
            task = bar.add_task(description, total=total, failed=0)

            async def one(item: dict[str, Any]) -> None:
                key = item[id_key]
                try:
                    try:
                        record = {"id": key, "ok": True, **await work(item)}
                    except Exception as exc:  # recorded; the batch goes on
                        record = failure_record(key, exc)
                    await committer.commit(record)
                    summary.ran += 1
                    if record["ok"]:
                        cost = record.get("cost")
                        summary.add_cost(cost if isinstance(cost, (int, float)) else None)
                    else:
                        summary.failed += 1
                        if len(summary.errors) < MAX_ERRORS:
                            summary.errors.append(f"{key}: {record['error']}")
                    bar.update(task, advance=1, failed=summary.failed)
                finally:
                    slots.release()

            try:
                for item in iter_items(items, id_key=id_key):
                    summary.total += 1
                    if item[id_key] in done:
                        done.discard(item[id_key])
                        summary.skipped += 1
                        if summary.skipped % 1000 == 0:
                            bar.update(task, advance=1000)
                        continue
                    await slots.acquire()
                    job = asyncio.create_task(one(item))
                    running.add(job)
                    job.add_done_callback(running.discard)
            except ConfigError:
                # what was started finishes (and is logged) when the input turns out bad
                if running:
                    await asyncio.gather(*list(running))
                raise
            if running:
                await asyncio.gather(*list(running))
            bar.update(task, advance=summary.skipped % 1000)
    finally:
        for job in list(running):
            job.cancel()
        await asyncio.gather(*list(running), return_exceptions=True)
        await committer.aclose()
        log.close()
    summary.seconds = time.monotonic() - start
    return summary


def run_batch_sync(items: Source, work: Work, **kwargs: Any) -> BatchSummary:
    """The blocking twin of `run_batch`."""
    return asyncio.run(run_batch(items, work, **kwargs))
