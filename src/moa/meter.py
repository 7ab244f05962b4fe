"""Metering: what each backend call cost (tokens, and the seconds it took), noted in the ledger
of the current context, whether or not any answer is cached.

    with recording() as ledger:                 # every call below is noted here
        await MeteredBackend(backend).complete(request)

`moa.cache.CachedBackend` is a metered backend that also keeps deterministic answers; a hit is
noted with the seconds it took when it was generated, so an evaluation reports what a question
costs without a cache even when it was served from one. Without a cache, an evaluation wraps
its backends in `MeteredBackend` alone: counting needs no store.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from moa.backends.base import Backend, Fold
from moa.types import Completion, Delta, Request

__all__ = ["CallCost", "MeteredBackend", "note", "recording"]


@dataclass(frozen=True, slots=True)
class CallCost:
    """What one backend call cost: tokens, and seconds when it was generated."""

    model: str
    input_tokens: int
    output_tokens: int
    seconds: float
    cached: bool


_ledger: ContextVar[list[CallCost] | None] = ContextVar("moa_cache_ledger", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[CallCost]]:
    """Collect the cost of every metered call in this context (and the tasks it starts)."""
    ledger: list[CallCost] = []
    token = _ledger.set(ledger)
    try:
        yield ledger
    finally:
        _ledger.reset(token)


def note(cost: CallCost) -> None:
    """Add `cost` to the ledger of the current context, if one is recording."""
    ledger = _ledger.get()
    if ledger is not None:
        ledger.append(cost)


class MeteredBackend(Backend):
    """Wraps any backend and notes each call's tokens and seconds. `concurrency` bounds the
    calls in flight through this wrapper, so the time noted for each is its own."""

    def __init__(self, inner: Backend, *, concurrency: int | None = None) -> None:
        self.inner = inner
        self._gate = asyncio.Semaphore(concurrency) if concurrency else None

    def __repr__(self) -> str:
        return f"MeteredBackend({self.inner!r})"

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._gate is None:
            yield
        else:
            async with self._gate:
                yield

    def _metered(self, request: Request, done: Completion, seconds: float) -> None:
        usage = done.usage
        note(CallCost(request.model, usage.input_tokens, usage.output_tokens, seconds, False))

    async def complete(self, request: Request) -> Completion:
        async with self._slot():
            start = time.monotonic()
            done = await self.inner.complete(request)
            self._metered(request, done, time.monotonic() - start)
        return done

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        async with self._slot():
            start = time.monotonic()
            fold = Fold()
            async for delta in self.inner.stream(request):
                fold.add(delta)
                yield delta
            self._metered(request, fold.completion(), time.monotonic() - start)

    def context_window(self, model: str) -> int | None:
        return self.inner.context_window(model)

    def count_tokens(self, model: str, text: str) -> int | None:
        return self.inner.count_tokens(model, text)

    def configure_model(self, model: str, *, n_ctx: int) -> None:
        self.inner.configure_model(model, n_ctx=n_ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()
