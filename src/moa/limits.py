"""Rate and concurrency limits per provider, shared by every run in the process.

    from moa.limits import LIMITS
    LIMITS.configure("together", rpm=600, tpm=180_000, concurrency=8)

A recipe's `providers:` section configures the same registry. Requests and tokens per minute
are token buckets refilled continuously; a call that would overdraw one waits for it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    per_minute: float
    level: float
    stamp: float

    def reserve(self, amount: float, now: float) -> float:
        """Take `amount` (possibly into debt) and return how long to wait until it is covered."""
        rate = self.per_minute / 60.0
        self.level = min(self.per_minute, self.level + (now - self.stamp) * rate)
        self.stamp = now
        self.level -= min(amount, self.per_minute)
        return 0.0 if self.level >= 0 else -self.level / rate


@dataclass
class Gate:
    """The limits of one provider."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    clock: Callable[[], float] = time.monotonic
    _requests: _Bucket | None = None
    _tokens: _Bucket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        now = self.clock()
        if self.rpm:
            self._requests = _Bucket(self.rpm, self.rpm, now)
        if self.tpm:
            self._tokens = _Bucket(self.tpm, self.tpm, now)

    def reserve(self, tokens: int) -> float:
        """Book one request of about `tokens` tokens; return the seconds to wait first."""
        with self._lock:
            now = self.clock()
            wait = 0.0
            if self._requests is not None:
                wait = max(wait, self._requests.reserve(1, now))
            if self._tokens is not None:
                wait = max(wait, self._tokens.reserve(tokens, now))
            return wait

    def charge(self, tokens: int) -> None:
        """Book tokens learnt after the call (the answer's), so later calls pay for them."""
        if self._tokens is not None and tokens > 0:
            with self._lock:
                self._tokens.reserve(tokens, self.clock())

    def _semaphore(self) -> asyncio.Semaphore | None:
        if not self.concurrency:
            return None
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
        return sem

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[float]:
        """Wait for a concurrency slot and the rate budget; yields the seconds waited."""
        start = self.clock()
        sem = self._semaphore()
        if sem is not None:
            await sem.acquire()
        try:
            wait = self.reserve(tokens)
            if wait > 0:
                await asyncio.sleep(wait)
            yield self.clock() - start
        finally:
            if sem is not None:
                sem.release()


class Limits:
    """Gates by provider name; unconfigured providers are unlimited."""

    def __init__(self) -> None:
        self._gates: dict[str, Gate] = {}
        self._open = Gate()

    def configure(
        self,
        provider: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
    ) -> Gate:
        current = self._gates.get(provider)
        if current is not None and (current.rpm, current.tpm, current.concurrency) == (
            rpm,
            tpm,
            concurrency,
        ):
            return current  # keep the state of an identical gate
        gate = self._gates[provider] = Gate(rpm=rpm, tpm=tpm, concurrency=concurrency)
        return gate

    def gate(self, provider: str) -> Gate:
        return self._gates.get(provider, self._open)

    def reset(self) -> None:
        self._gates.clear()


LIMITS = Limits()
