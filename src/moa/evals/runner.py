"""What every evaluation shares: variants of recipes, the cached resolver, the batch run of a
variant over items, judge calls, and the statistics of a column of results."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moa.backends.base import Backend
from moa.batch import BatchSummary, read_results, run_batch
from moa.cache import CachedBackend, CallCost, ResponseCache, recording
from moa.call import Caller, Run
from moa.cost import Prices, merge_prices, price_trace
from moa.engine import MoA, Result
from moa.errors import BackendError
from moa.limits import LIMITS
from moa.plan import compile_recipe
from moa.recipe import Agent, Recipe, Retry
from moa.resolver import Resolver
from moa.trace import Call, Trace
from moa.types import Message, MessagesLike, Settings, to_messages

__all__ = [
    "Harness",
    "RecipeLike",
    "Variant",
    "mean_interval",
    "recipe_key",
    "slug",
    "wall_time",
    "wilson",
]

RecipeLike = str | Path | Recipe | Mapping[str, Any]
"""What `moa.recipe.load_recipe` accepts: a built-in name, a file, a mapping, a Recipe."""


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default)."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean and its normal-approximation 95% interval."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def wall_time(records: Sequence[dict[str, Any]]) -> tuple[float | None, int]:
    """Mean wall seconds of the items that ran alone (concurrency 1) and made every call afresh
    (no cache hit), and how many there were: the latency a user would see, measured, never
    estimated."""
    fresh = [
        float(r["wall_s"])
        for r in records
        if r.get("ok") and not r.get("cached_calls") and r.get("concurrency") == 1
    ]
    return (sum(fresh) / len(fresh) if fresh else None), len(fresh)


def cost_columns(
    variant: Variant,
    ok: Sequence[dict[str, Any]],
    n: int,
    timing: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The columns every report row shares: its name, kind and size, tokens, cost (None unless
    every item's is known) and call seconds per answered item, the measured wall time (from
    `timing`, an uncached run, if given), the failed items and the results file."""
    per = max(len(ok), 1)
    wall, timed = wall_time(ok if timing is None else timing)
    costs = [r.get("cost") for r in ok]
    return {
        "cost": sum(costs) / per if ok and None not in costs else None,  # type: ignore[arg-type]
        "name": variant.name,
        "kind": variant.kind,
        "n": n,
        "tokens": sum(r["input_tokens"] + r["output_tokens"] for r in ok) / per,
        "call_seconds": sum(r["seconds"] for r in ok) / per,
        "wall": wall,
        "timed": timed,
        "errors": n - len(ok),
        "file": f"runs/{variant.file}",
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:60] or "run"


def recipe_key(recipe: Recipe) -> str:
    """A short hash of what a recipe does (name and description aside). Settings left at their
    defaults are not part of it, so a new setting does not orphan results made before it."""
    data = recipe.model_dump(mode="json", exclude={"name", "description"}, exclude_defaults=True)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Variant:
    """One row of a report: a recipe under a name, and what kind of baseline it is."""

    name: str
    recipe: Recipe
    kind: str = "recipe"

    @property
    def key(self) -> str:
        return recipe_key(self.recipe)

    @property
    def file(self) -> str:
        return f"{slug(self.name)}-{self.key}.jsonl"


def agent_label(agent: Agent) -> str:
    """'model (T=0.7, seed 1)': enough to tell two samples of a model apart."""
    bits = []
    if agent.temperature is not None:
        bits.append(f"T={agent.temperature:g}")
    if agent.seed is not None:
        bits.append(f"seed {agent.seed}")
    named = agent.name is not None and not agent.name.startswith(agent.model)  # not "model#2"
    name = agent.name if named and agent.name else agent.model.split(":", 1)[-1]
    return f"{name} ({', '.join(bits)})" if bits else name


def proposers(recipe: Recipe, layer: int = 0) -> list[Agent]:
    """The agents of a layer as the engine runs them: samples unrolled, defaults filled."""
    layers = compile_recipe(recipe).layers
    return list(layers[layer].agents) if layers else []


def single(recipe: Recipe, agent: Agent, name: str) -> Recipe:
    """`agent` alone (no layers), with every other rule of `recipe`."""
    from moa.strategies import Strategy

    solo = agent.model_copy(update={"name": None, "n": 1})
    return recipe.model_copy(
        update={
            "name": name,
            "layers": (),
            "aggregator": solo,
            "aggregator_defaults": Settings(),
            "strategy": Strategy(),
        }
    )


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
    """The shared machinery of one evaluation run: a resolver whose backends go through the
    response cache, results under `out_dir/runs`, batches with a progress bar."""

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
    store: ResponseCache = field(init=False)
    resolver: Resolver = field(init=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        # without the cache, an empty store in memory that is never read nor written
        store = ResponseCache(self.cache_path if self.cache else ":memory:")
        self.store = store

        def wrap(provider: str, backend: Backend) -> Backend:
            # every backend goes through the wrapper, which notes each call's cost in the ledger
            # (without the cache that is all it does). Calls are not gated here: concurrent
            # calls to a local model are decoded together, which is how the product runs them
            return CachedBackend(
                backend, store, namespace=provider, read=self.cache, write=self.cache
            )

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

    async def answer(self, moa: MoA, messages: MessagesLike) -> tuple[Result, ItemCost, float]:
        """One run of a recipe with its cost (as if uncached) and the wall time it took now."""
        with recording() as ledger:
            start = time.monotonic()
            result = await moa.arun(messages)
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


Summarize = Callable[
    [Variant, Sequence[dict[str, Any]], int, Sequence[dict[str, Any]] | None], dict[str, Any]
]


async def scored_row(
    harness: Harness,
    variant: Variant,
    items: Sequence[Mapping[str, Any]],
    work: Callable[[MoA, dict[str, Any]], Awaitable[dict[str, Any]]],
    summarize: Summarize,
    timing: Path | None = None,
) -> dict[str, Any]:
    """Run `work` on every item (resumable) and summarize the records into a report row, with
    wall times from the uncached run under `timing` when there is one."""
    records, _ = await harness.run(variant, items, work)
    timed = None
    if timing is not None:
        timed = [r for r in read_results(timing / "runs" / variant.file).values() if r.get("ok")]
    n = len(records) if harness.report_only else len(items)
    return summarize(variant, records, n, timed)
