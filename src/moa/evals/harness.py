"""The machinery of one evaluation run: a resolver whose backends are metered (and cached,
unless told not to), resumable batches of items under `out_dir/runs`, judge calls, and the
fields every record of an answered item shares."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moa.backends.base import Backend
from moa.batch import BatchSummary, read_results, run_batch
from moa.cache import CachedBackend, ResponseCache
from moa.call import Caller, Run
from moa.cost import Prices, merge_prices, price_trace
from moa.engine import MoA, Result
from moa.errors import BackendError
from moa.evals.variants import Variant
from moa.limits import LIMITS
from moa.meter import CallCost, MeteredBackend, recording
from moa.recipe import Agent, Recipe, Retry
from moa.resolver import Resolver
from moa.trace import Call, Trace
from moa.types import Message, MessagesLike, to_messages

__all__ = ["Harness", "ItemCost", "answer_fields", "call_record"]


@dataclass
class ItemCost:
    """Tokens and seconds of one question, whether its calls were served from the cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0
    cached_calls: int = 0
    cost: float | None = None
    """The recipe's cost at the given prices (as if uncached); None without a price."""

    @classmethod
    def of(
        cls, ledger: Sequence[CallCost], result: Result | None, prices: Prices | None = None
    ) -> ItemCost:
        cost = cls(
            seconds=round(sum(c.seconds for c in ledger), 3),
            calls=len(ledger),
            cached_calls=sum(1 for c in ledger if c.cached),
        )
        if result is not None:
            totals = result.trace.totals()
            cost.input_tokens, cost.output_tokens = totals.input_tokens, totals.output_tokens
            if prices:
                cost.cost = price_trace(result.trace, prices)
        else:
            cost.input_tokens = sum(c.input_tokens for c in ledger)
            cost.output_tokens = sum(c.output_tokens for c in ledger)
        return cost


@dataclass
class Harness:
    """The shared machinery of one evaluation run: a resolver whose backends are metered and go
    through the response cache (unless `cache` is off), results under `out_dir/runs`, batches
    with a progress bar."""

    out_dir: Path
    cache: bool = True
    cache_path: Path | None = None
    backends: Mapping[str, Backend] | None = None
    concurrency: int | None = None
    progress: bool = True
    report_only: bool = False
    """Run nothing: report on the results already under `out_dir` (rows count what is done)."""
    log: Callable[[str], None] = print
    judge_timeout: float | None = 300.0
    """Seconds a judge's call may take (as a recipe's `timeout`)."""
    judge_retry: Retry = field(default_factory=Retry)
    prices: Prices | None = None
    """Token prices (moa.cost) added to each recipe's own: every row's cost per item."""
    store: ResponseCache | None = field(init=False)
    resolver: Resolver = field(init=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        store = ResponseCache(self.cache_path) if self.cache else None
        self.store = store

        def wrap(provider: str, backend: Backend) -> Backend:
            # every call's cost is noted in the ledger; without the cache that is all. Calls are
            # not gated here: concurrent calls to a local model are decoded together, which is
            # how the product runs them
            if store is None:
                return MeteredBackend(backend)
            return CachedBackend(backend, store, namespace=provider)

        given = {k: wrap(k, b) for k, b in (self.backends or {}).items()}
        self.resolver = Resolver(backends=given, wrap=wrap)

    def moa(self, recipe: Recipe) -> MoA:
        return MoA(recipe, resolver=self.resolver)

    @property
    def bound(self) -> int:
        """Items in flight: the given concurrency, else 4 (a local model decodes 4 sequences
        together, and hosted providers take 4 at once)."""
        return self.concurrency or 4

    async def run(
        self,
        variant: Variant,
        items: Sequence[Mapping[str, Any]],
        work: Callable[[MoA, dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> tuple[list[dict[str, Any]], BatchSummary]:
        """Run `work(moa, item)` for every item (resumable), and the records of these items."""
        out = self.out_dir / "runs" / variant.file
        if self.report_only:
            done = read_results(out)
            records = [done[str(i["id"])] for i in items if done.get(str(i["id"]), {}).get("ok")]
            return records, BatchSummary(out=out, total=len(items), skipped=len(records))
        moa = self.moa(variant.recipe)
        out.parent.mkdir(parents=True, exist_ok=True)
        recipe_file = out.with_suffix(".recipe.json")
        if not recipe_file.exists():
            recipe_file.write_text(variant.recipe.model_dump_json(indent=2) + "\n")
        bound = self.bound

        async def one(item: dict[str, Any]) -> dict[str, Any]:
            record = await work(moa, item)
            record["concurrency"] = bound  # wall times count only when items ran alone
            return record

        summary = await run_batch(
            items,
            one,
            out=out,
            concurrency=bound,
            progress=self.progress,
            description=variant.name[:40],
        )
        if summary.failed:
            self.log(f"{variant.name}: {summary.failed} item(s) failed, e.g. {summary.errors[0]}")
        done = read_results(out)
        return [done[str(item["id"])] for item in items if str(item["id"]) in done], summary

    async def answer(
        self, moa: MoA, messages: MessagesLike, **act: Any
    ) -> tuple[Result, ItemCost, float]:
        """One run of a recipe with its cost (as if uncached) and the wall time it took now;
        `act` (tools, tool_choice, response_format) goes to the run."""
        with recording() as ledger:
            start = time.monotonic()
            result = await moa.arun(messages, **act)
            wall = time.monotonic() - start
        return (
            result,
            ItemCost.of(ledger, result, merge_prices(moa.recipe.providers, self.prices)),
            wall,
        )

    async def judge(
        self,
        ref: str,
        messages: Sequence[Message] | MessagesLike,
        *,
        max_tokens: int,
        temperature: float = 0.0,
    ) -> tuple[Call, ItemCost]:
        """One call to a judge model, made like every agent call (`moa.call.Caller`: retries,
        timeout, rate limits) and recorded as a trace `Call` with role 'judge'. A failure
        propagates as the call's error: the batch records the item as failed, and retries it
        on the next run."""
        agent = Agent(model=ref, temperature=temperature, max_tokens=max_tokens)
        self.resolver.check(ref)
        caller = Caller(self.resolver, LIMITS, retry=self.judge_retry, timeout=self.judge_timeout)
        run = Run(Trace(recipe="judge", started_at=time.time()))
        with recording() as ledger:
            call = await caller.call(run, agent, "judge", to_messages(messages), layer=0, index=0)
        if not call.ok:
            raise BackendError(call.error or "no answer", model=ref)
        return call, ItemCost.of(ledger, None)

    async def aclose(self) -> None:
        await self.resolver.aclose()
        if self.store is not None:
            self.store.close()


def call_record(call: Call) -> dict[str, Any]:
    data = asdict(call)
    data.pop("attempts", None)
    return data


def answer_fields(result: Result, cost: ItemCost, wall: float) -> dict[str, Any]:
    """The fields every evaluation's record of one item shares: the answer's text, its tokens,
    cost, call seconds and wall time, and the trace."""
    return {
        "text": result.text,
        "input_tokens": cost.input_tokens,
        "output_tokens": cost.output_tokens,
        "cost": cost.cost,
        "seconds": cost.seconds,
        "wall_s": round(wall, 3),
        "calls": cost.calls,
        "cached_calls": cost.cached_calls,
        "trace": result.trace.to_dict(),
    }
