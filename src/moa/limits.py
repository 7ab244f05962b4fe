"""Rate and concurrency limits per provider, shared by every run in the process.

    from moa.limits import LIMITS
    LIMITS.configure("together", rpm=600, tpm=180_000, concurrency=8)

A recipe's `providers:` section sets limits for the runs of that recipe: every run in the
process with the same limits for a provider shares one gate (`Limits.gate(provider, spec)`),
created on first use; a recipe that sets none uses the gate configured here.

Requests and tokens per minute are sliding windows: in any `period` (60 s) at most `rpm`
requests start and at most `tpm` tokens are booked, so a provider that counts per minute never
sees more than it allows; a call that would exceed either waits, in order of arrival. The
concurrency limit is one counter for the whole process, shared by every event loop and thread.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Window:
    """At most `limit` units booked in any `period` seconds: a sorted log of (time, amount)."""

    limit: float
    period: float
    log: list[tuple[float, float]] = field(default_factory=list)

    def when(self, amount: float, now: float) -> float:
        """The earliest time, not before `now` nor before the latest booking, that fits `amount`.

        An amount above the limit is booked as the whole limit: it waits for an empty window.
        """
        amount = min(amount, self.limit)
        cut = bisect.bisect_right(self.log, (now - self.period, float("inf")))
        del self.log[:cut]
        start = max(now, self.log[-1][0]) if self.log else now
        live = [entry for entry in self.log if entry[0] > start - self.period]
        used = sum(a for _, a in live)
        if used + amount <= self.limit:
            return start
        for at, booked in live:  # the oldest bookings leave the window first
            used -= booked
            if used + amount <= self.limit:
                return at + self.period
        return start  # pragma: no cover  (amount <= limit, so the loop always returns)

    def book(self, at: float, amount: float) -> None:
        bisect.insort(self.log, (at, min(amount, self.limit)))


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Slots:
    """A counting semaphore shared by every event loop and thread of the process, first come
    first served. (An asyncio.Semaphore belongs to one loop; `MoA.run` makes its own.)"""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.used < self.size and not self._waiters:
                self.used += 1
                return
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:  # the slot was handed to us as we were cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True  # the slot passes to the waiter: `used` stays
                try:
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                except RuntimeError:  # its event loop is closed: nobody is waiting there
                    continue
                return
            self.used -= 1


@dataclass
class Gate:
    """The limits of one provider."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    period: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _requests: _Window | None = None
    _tokens: _Window | None = None
    _slots: _Slots | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _holding: int = 0  # calls inside `slot()` now, counted by the holders themselves
    _peak: int = 0

    def __post_init__(self) -> None:
        if self.rpm:
            self._requests = _Window(self.rpm, self.period)
        if self.tpm:
            self._tokens = _Window(self.tpm, self.period)
        if self.concurrency:
            self._slots = _Slots(self.concurrency)

    def reserve(self, tokens: int) -> float:
        """Book one request of about `tokens` tokens; return the seconds to wait first."""
        with self._lock:
            now = self.clock()
            at = now
            if self._requests is not None:
                at = max(at, self._requests.when(1, now))
            if self._tokens is not None:
                at = max(at, self._tokens.when(tokens, now))
            if self._requests is not None:
                self._requests.book(at, 1)
            if self._tokens is not None:
                self._tokens.book(at, tokens)
            return at - now

    def charge(self, tokens: int) -> None:
        """Book tokens learnt after the call (the answer's), so later calls pay for them."""
        if self._tokens is not None and tokens > 0:
            with self._lock:
                self._tokens.book(self.clock(), tokens)

    @property
    def in_use(self) -> int:
        """Calls holding a concurrency slot now (0 when concurrency is unlimited)."""
        return self._slots.used if self._slots is not None else 0

    @property
    def peak_in_use(self) -> int:
        """The most calls that ever held a concurrency slot at once, counted as they take and
        give it back (0 when concurrency is unlimited): what the limit really let through."""
        return self._peak

    def _hold(self, step: int) -> None:
        with self._lock:
            self._holding += step
            self._peak = max(self._peak, self._holding)

    async def acquire(self, tokens: int) -> None:
        """Wait for a concurrency slot, then for the rate budget; pair it with `release`.
        (`slot` is the usual form; the two halves serve a limiter in another process.)"""
        if self._slots is not None:
            await self._slots.acquire()
            self._hold(1)
        try:
            wait = self.reserve(tokens)
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._slots is not None:
            self._hold(-1)
            self._slots.release()

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[float]:
        """Wait for a concurrency slot and the rate budget; yields the seconds waited."""
        start = self.clock()
        await self.acquire(tokens)
        try:
            yield self.clock() - start
        finally:
            self.release()


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitSpec:
    """Limits that a recipe sets for one provider."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    period: float = 60.0


class Limits:
    """Gates by provider name; unconfigured providers are unlimited."""

    def __init__(self) -> None:
        self._gates: dict[str, Gate] = {}
        self._shared: dict[tuple[str, LimitSpec], Gate] = {}
        self._lock = threading.Lock()
        self._open = Gate()

    def configure(
        self,
        provider: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        period: float = 60.0,
    ) -> Gate:
        """Set the limits of `provider` (`period`: the window of rpm and tpm, in seconds)."""
        current = self._gates.get(provider)
        if current is not None and (
            current.rpm,
            current.tpm,
            current.concurrency,
            current.period,
        ) == (rpm, tpm, concurrency, period):
            return current  # keep the state of an identical gate
        gate = Gate(rpm=rpm, tpm=tpm, concurrency=concurrency, period=period)
        self._gates[provider] = gate
        return gate

    def gate(self, provider: str, spec: LimitSpec | None = None) -> Gate:
        """The gate of `provider`: the one shared by every run with limits `spec`, else the one
        configured here (unlimited if none)."""
        if spec is None:
            return self._gates.get(provider, self._open)
        with self._lock:
            gate = self._shared.get((provider, spec))
            if gate is None:
                gate = Gate(
                    rpm=spec.rpm, tpm=spec.tpm, concurrency=spec.concurrency, period=spec.period
                )
                self._shared[(provider, spec)] = gate
            return gate

    def reset(self) -> None:
        self._gates.clear()
        with self._lock:
            self._shared.clear()


LIMITS = Limits()
