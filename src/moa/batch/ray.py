"""The same batch on a Ray cluster: items spread over worker actors, one driver writing.

    summary = await run_recipe_ray("recipe.yaml", "items.jsonl", out="answers.jsonl",
                                   workers=4, address="auto")

Each worker is an actor holding one engine (`moa.MoA`), so a local model loads once per
worker, not per item. The driver reads the items, keeps `concurrency` in flight across the
workers (the least busy live worker gets the next one) and alone appends the results log
(`moa.batch.executor.run_batch`): resume and nothing-lost-nothing-repeated are the local
executor's. A provider's rate and concurrency limits are held by one named actor for the whole
cluster (`ClusterLimits`), which every worker's engine asks before each call. A worker that
dies loses only its items in flight: the driver releases the limiter slots it held, starts a
replacement, and runs those items again on a live worker.

Needs the `ray` extra: `pip install 'mixture-of-agents[ray]'`.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from moa.batch.answers import answer_item
from moa.batch.executor import BatchSummary, failure_record, run_batch
from moa.batch.reader import Source
from moa.cost import Prices, merge_prices
from moa.errors import ConfigError
from moa.limits import Gate, Limits, LimitSpec

__all__ = ["ClusterLimits", "RayPool", "run_recipe_ray"]

LIMITER_NAME = "moa-limits"
LIMITER_NAMESPACE = "moa"
"""The limiter is one detached actor per cluster, shared by every batch that runs there."""
MAX_TRIES = 3
"""Workers an item may take down before it is recorded as failed (not retried forever)."""

Setup = Callable[[], Mapping[str, Any]]
"""Run in each worker to build its backends (by provider name); None: the recipe's own."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'mixture-of-agents[ray]'"
        ) from None
    return ray


class _Limiter:
    """The cluster's limits (a Ray actor): the `moa.limits` gates, and who holds which slot,
    so that a dead worker's slots can be handed back."""

    def __init__(self) -> None:
        self.limits = Limits()
        self.held: Counter[tuple[str, str]] = Counter()
        self.dead: set[str] = set()  # holders whose slots were handed back: grant them none
        self.in_use: Counter[tuple[str, str]] = Counter()  # by (batch, provider)
        self.peak: Counter[tuple[str, str]] = Counter()

    def configure(
        self, provider: str, rpm: int | None, tpm: int | None, concurrency: int | None
    ) -> None:
        self.limits.configure(provider, rpm=rpm, tpm=tpm, concurrency=concurrency)

    async def acquire(self, provider: str, tokens: int, holder: str) -> float:
        start = time.monotonic()
        gate = self.limits.gate(provider)
        await gate.acquire(tokens)
        if holder in self.dead:  # it asked, then died: the slot goes to the next in line
            gate.release()
            raise RuntimeError(f"{holder} is gone")
        self.held[(holder, provider)] += 1
        for key in ((holder.split("/")[0], provider), ("*", provider)):
            self.in_use[key] += 1
            self.peak[key] = max(self.peak[key], self.in_use[key])
        return time.monotonic() - start

    def release(self, provider: str, holder: str) -> None:
        if self.held[(holder, provider)] > 0:
            self.held[(holder, provider)] -= 1
            self.in_use[(holder.split("/")[0], provider)] -= 1
            self.in_use[("*", provider)] -= 1
            self.limits.gate(provider).release()

    def release_granted(self, provider: str, holder: str, _granted: float) -> None:
        """Hand back a slot granted to a caller that stopped waiting for it (Ray calls this
        once the `acquire` passed as `_granted` is done)."""
        self.release(provider, holder)

    def charge(self, provider: str, tokens: int) -> None:
        self.limits.gate(provider).charge(tokens)

    def release_holder(self, holder: str) -> int:
        """Hand back every slot `holder` (a dead worker) held, and any it is still waiting
        for when granted; how many it held."""
        self.dead.add(holder)
        freed = 0
        for (who, provider), count in list(self.held.items()):
            if who == holder:
                for _ in range(count):
                    self.release(provider, holder)
                freed += count
        return freed

    def stats(self, batch: str = "*") -> dict[str, dict[str, int]]:
        """Slots in use now and at most, by provider: of one batch, or of all ("*")."""
        return {
            "in_use": {p: n for (b, p), n in self.in_use.items() if b == batch},
            "peak": {p: n for (b, p), n in self.peak.items() if b == batch},
        }


class _ClusterGate(Gate):
    """A gate whose slots and budget are the cluster limiter's."""

    def __init__(self, limiter: Any, provider: str, holder: str) -> None:
        super().__init__()
        self._limiter, self._provider, self._holder = limiter, provider, holder

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[float]:
        granted = self._limiter.acquire.remote(self._provider, tokens, self._holder)
        try:
            waited: float = await granted
        except asyncio.CancelledError:  # the slot may still be granted: then it goes back
            self._limiter.release_granted.remote(self._provider, self._holder, granted)
            raise
        try:
            yield waited
        finally:
            self._limiter.release.remote(self._provider, self._holder)

    def charge(self, tokens: int) -> None:
        if tokens > 0:
            self._limiter.charge.remote(self._provider, tokens)


class ClusterLimits(Limits):
    """`moa.limits.Limits` for a worker: a configured provider's gate asks the cluster's
    limiter actor, so one limit holds across every worker."""

    def __init__(self, limiter: Any, holder: str) -> None:
        super().__init__()
        self._limiter, self._holder = limiter, holder
        self._cluster: dict[str, Gate] = {}

    def configure(
        self,
        provider: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        period: float = 60.0,
    ) -> Gate:
        _ray().get(self._limiter.configure.remote(provider, rpm, tpm, concurrency))
        gate = self._cluster.get(provider)
        if gate is None:
            gate = self._cluster[provider] = _ClusterGate(self._limiter, provider, self._holder)
        return gate

    def gate(self, provider: str, spec: LimitSpec | None = None) -> Gate:
        """A recipe's limits (`spec`) are the cluster's: set on the limiter once, then every
        call of every worker asks it."""
        if spec is not None and provider not in self._cluster:
            return self.configure(
                provider, rpm=spec.rpm, tpm=spec.tpm, concurrency=spec.concurrency
            )
        return self._cluster.get(provider) or super().gate(provider)


class _Worker:
    """One engine in a Ray actor, answering items as the driver sends them."""

    def __init__(self, recipe: dict[str, Any], limiter: Any, holder: str, setup: Setup | None):
        import os

        from moa.engine import MoA

        self.pid = os.getpid()
        backends = dict(setup()) if setup is not None else None
        self.engine = MoA(recipe, backends=backends, limits=ClusterLimits(limiter, holder))
        self.engine.prepare()  # a local model is pulled and loaded here, once per worker

    def ready(self) -> int:
        return self.pid

    async def answer(self, item: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """The item's record; a failure comes back as data (its line), with its trace."""
        try:
            return await answer_item(self.engine, item, **options)
        except Exception as exc:
            return failure_record(item[options.get("id_key", "id")], exc)


class RayPool:
    """Worker actors on a Ray cluster, and the driver's side of sending them items."""

    def __init__(
        self,
        recipe: Any,
        *,
        workers: int = 2,
        address: str | None = None,
        per_worker: int = 4,
        cpus_per_worker: float = 0.0,
        setup: Setup | None = None,
        start_timeout: float = 600.0,
    ) -> None:
        """`cpus_per_worker`: the CPUs Ray reserves for each worker (0: workers are placed
        by spreading them over the nodes, however many CPUs each has; a number places them
        by CPUs, and more workers than fit wait). `start_timeout`: seconds for the workers to
        start (their models are loaded then)."""
        from moa.recipe import load_recipe

        if workers < 1 or per_worker < 1:
            raise ConfigError("workers and concurrency: must be at least 1")
        self.recipe = load_recipe(recipe)
        self.workers, self.address, self.per_worker = workers, address, per_worker
        self.cpus_per_worker, self.setup = cpus_per_worker, setup
        self.start_timeout = start_timeout
        self.ray = _ray()
        self.limiter: Any = None
        self._actors: dict[str, Any] = {}
        self._load: Counter[str] = Counter()
        self._serial = 0
        self.served: Counter[str] = Counter()
        """Items answered, by worker name."""
        self.deaths = 0
        self.retried = 0
        """Items sent again because their worker died."""
        self._started_ray = False
        self.batch = uuid.uuid4().hex[:8]
        """This pool's name at the limiter (its workers hold slots as `batch/worker-n`)."""

    def start(self) -> RayPool:
        ray = self.ray
        if not ray.is_initialized():
            # "local": always a new instance (None would join one found running here)
            options = {} if self.address else {"include_dashboard": False}
            try:
                ray.init(address=self.address or "local", log_to_driver=False, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local instance"
                raise ConfigError(f"Ray: cannot start or join {where}: {exc}") from None
            self._started_ray = True
        self.limiter = (
            ray.remote(_Limiter)
            .options(
                name=LIMITER_NAME,
                namespace=LIMITER_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
                max_concurrency=10_000,
            )
            .remote()
        )
        for _ in range(self.workers):
            self._spawn()
        try:
            ray.get([a.ready.remote() for a in self._actors.values()], timeout=self.start_timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ConfigError(
                f"Ray: {self.workers} workers did not start within {self.start_timeout:g}s "
                "(not enough CPUs for --workers, or their models are slow to load)"
            ) from None
        except ray.exceptions.RayError as exc:
            self.close()
            last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]  # the error's line
            raise ConfigError(f"Ray: a worker could not start: {last}") from None
        return self

    def _spawn(self) -> str:
        self._serial += 1
        name = f"worker-{self._serial}"
        actor = (
            self.ray.remote(_Worker)
            .options(
                num_cpus=self.cpus_per_worker,
                max_concurrency=self.per_worker,
                max_restarts=0,
                scheduling_strategy="SPREAD",
            )
            .remote(
                self.recipe.model_dump(mode="json"),
                self.limiter,
                f"{self.batch}/{name}",
                self.setup,
            )
        )
        self._actors[name] = actor
        return name

    def pids(self) -> dict[str, int]:
        """Each live worker's process id (to watch it, or to kill it in a test)."""
        return {n: self.ray.get(a.ready.remote()) for n, a in self._actors.items()}

    def limiter_stats(self) -> dict[str, dict[str, int]]:
        """This pool's slots at the cluster limiter: in use now and at most, by provider."""
        result: dict[str, dict[str, int]] = self.ray.get(self.limiter.stats.remote(self.batch))
        return result

    async def answer(self, item: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """Answer an item on the least busy worker; on another one if that worker dies (at
        most MAX_TRIES workers: an item that kills every worker it meets is a failure)."""
        errors = self.ray.exceptions
        for _ in range(MAX_TRIES):
            if not self._actors:
                raise RuntimeError("no Ray worker is alive")
            name = min(self._actors, key=lambda n: self._load[n])
            actor = self._actors[name]
            self._load[name] += 1
            try:
                result: dict[str, Any] = await actor.answer.remote(item, options)
                self.served[name] += 1
                return result
            except (errors.RayActorError, errors.ActorUnavailableError):
                self._lost(name, actor)
                self.retried += 1
            finally:
                self._load[name] -= 1
        raise RuntimeError(f"{MAX_TRIES} Ray workers died while answering this item")

    def _lost(self, name: str, actor: Any) -> None:
        if self._actors.get(name) is actor:  # the first of its items to notice
            del self._actors[name]
            self.deaths += 1
            self.limiter.release_holder.remote(f"{self.batch}/{name}")
            self._spawn()

    def close(self) -> None:
        for actor in self._actors.values():
            self.ray.kill(actor)
        self._actors.clear()
        self.limiter = None  # shared by the cluster's batches: it stays
        if self._started_ray:
            self.ray.shutdown()


async def run_recipe_ray(
    recipe: Any,
    items: Source,
    *,
    out: str | Path,
    workers: int = 2,
    address: str | None = None,
    concurrency: int = 8,
    prompt_key: str = "prompt",
    id_key: str = "id",
    keep_trace: bool = True,
    prices: Prices | None = None,
    setup: Setup | None = None,
    pool: RayPool | None = None,
    **kwargs: Any,
) -> BatchSummary:
    """`moa.batch.run_recipe` on Ray workers. `address`: None starts a local Ray instance
    (unless one is running), "auto" joins the cluster of this machine, "ray://HOST:10001" a
    remote one. `concurrency`: items in flight across all workers."""
    mine = pool is None
    if pool is None:
        per = max(1, math.ceil(concurrency / workers))
        pool = await asyncio.to_thread(
            RayPool(recipe, workers=workers, address=address, per_worker=per, setup=setup).start
        )
    options = {
        "prompt_key": prompt_key,
        "id_key": id_key,
        "keep_trace": keep_trace,
        "prices": merge_prices(pool.recipe.providers, prices),
    }

    async def work(item: dict[str, Any]) -> dict[str, Any]:
        return await pool.answer(item, options)

    try:
        summary = await run_batch(
            items, work, out=out, id_key=id_key, concurrency=concurrency, **kwargs
        )
        spread = ", ".join(f"{n} {c}" for n, c in sorted(pool.served.items()))
        summary.notes.append(f"Ray: items by worker: {spread}")
        if pool.deaths:
            summary.notes.append(
                f"Ray: {pool.deaths} worker(s) lost, {pool.retried} item(s) sent again"
            )
        return summary
    finally:
        if mine:
            await asyncio.to_thread(pool.close)
