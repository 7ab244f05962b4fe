"""The helpers that build the suites' recipes and engines (recipes as data, so a test can change
any field), shared by every suite instead of a copy in each."""

from __future__ import annotations

from typing import Any

from faultserver import FaultServer

from moa import FakeBackend, MoA, Result

ABC = [["fake:a", "fake:b", "fake:c"]]


def recipe(
    layers: Any = None,
    aggregator: Any = "fake:agg",
    *,
    server: FaultServer | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A recipe named 't': by default one layer of fake:a, fake:b and fake:c, with fake:agg
    aggregating, and one attempt a call (a failure is final).

    With `server`, the `faulty:` models are that fault server's (`provider=` adds to its
    entry), retries are quick and without jitter (`retry=` adds to them) and a call times out
    after 2 s (`timeout=`). Everything else in `extra` goes into the recipe as given.
    """
    data: dict[str, Any] = {"name": "t", "layers": ABC if layers is None else layers}
    data["aggregator"] = aggregator
    if server is None:
        data["retry"] = {"attempts": 1}
    else:
        data["providers"] = {"faulty": {"base_url": server.base_url, **extra.pop("provider", {})}}
        quick = {"backoff": 0.01, "max_backoff": 0.05, "jitter": 0}
        data["retry"] = {**quick, **extra.pop("retry", {})}
        data["timeout"] = extra.pop("timeout", 2.0)
    return {**data, **extra}


def proposers(n: int) -> list[list[str]]:
    """One layer of n fake proposers, fake:p0 ... fake:p{n-1}."""
    return [[f"fake:p{i}" for i in range(n)]]


def make(fake: FakeBackend, strategy: dict[str, Any] | None = None, **extra: Any) -> MoA:
    """An engine on `fake` for `recipe(**extra)`, with `strategy` as its strategy section."""
    if strategy is not None:
        extra["strategy"] = strategy
    return MoA(recipe(**extra), backends={"fake": fake})


async def run(fake: FakeBackend, data: dict[str, Any], prompt: str = "q") -> Result:
    """One run of the recipe `data` on `fake`, the engine closed after."""
    async with MoA(data, backends={"fake": fake}) as moa:
        return await moa.arun(prompt)


def script(fake: FakeBackend, *texts: str, models: str = "abc") -> None:
    """Queue one answer for each of fake:a, fake:b, fake:c (or `models`), in order."""
    for model, text in zip(models, texts, strict=True):
        fake.enqueue(model, text)


def respond_in_order(*texts: str) -> FakeBackend:
    """A fake whose proposers fake:p0, fake:p1, ... answer `texts`."""
    fake = FakeBackend()
    for i, text in enumerate(texts):
        fake.respond(f"p{i}", text)
    return fake
