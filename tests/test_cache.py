"""The response cache: what is cached, what is not, the key, costs noted, reuse through MoA."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from moa import FakeBackend, MoA
from moa.backends.base import Backend, collect
from moa.cache import CachedBackend, ResponseCache, cacheable, recording, request_key
from moa.errors import BackendTimeout
from moa.resolver import Resolver
from moa.types import Message, Request, Settings


def req(text: str = "hi", model: str = "m", **settings: object) -> Request:
    return Request(model=model, messages=(Message("user", text),), settings=Settings(**settings))  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "responses.sqlite3")


def test_only_deterministic_requests_are_cacheable() -> None:
    assert cacheable(req(temperature=0))
    assert cacheable(req(temperature=0.7, seed=3))
    assert cacheable(req(seed=0))
    assert not cacheable(req(temperature=0.7))
    assert not cacheable(req())


def test_the_key() -> None:
    base = request_key("local", req(temperature=0))
    assert base == request_key("local", req(temperature=0))
    assert base != request_key("openai", req(temperature=0))
    assert base != request_key("local", req("other", temperature=0))
    assert base != request_key("local", req(temperature=0, max_tokens=5))
    assert base == request_key("local", req(temperature=0.0))  # an agent's 0.0, a default's 0
    assert base != request_key("local", req(temperature=0.5))
    assert base != request_key("local", req(model="n", temperature=0))
    # a GGUF file counts by its name, wherever the model cache is
    a = request_key("local", req(model="/home/a/.cache/moa/models/x.gguf", temperature=0))
    b = request_key("local", req(model="/tmp/elsewhere/x.gguf", temperature=0))
    assert a == b


async def test_hits_and_misses(store: ResponseCache) -> None:
    fake = FakeBackend().enqueue("m", "first", "second", "third")
    cached = CachedBackend(fake, store, namespace="fake")
    one = await cached.complete(req(temperature=0))
    two = await cached.complete(req(temperature=0))
    assert one.text == two.text == "first"
    assert (store.hits, store.misses) == (1, 1)
    assert len(fake.calls) == 1 and len(store) == 1
    # a stream is served from the same entry
    streamed = await collect(cached.stream(req(temperature=0)))
    assert streamed.text == "first" and streamed.usage == one.usage
    assert len(fake.calls) == 1


async def test_non_deterministic_requests_always_reach_the_backend(store: ResponseCache) -> None:
    fake = FakeBackend().enqueue("m", "first", "second")
    cached = CachedBackend(fake, store)
    assert (await cached.complete(req(temperature=0.7))).text == "first"
    assert (await cached.complete(req(temperature=0.7))).text == "second"
    assert len(store) == 0 and len(fake.calls) == 2


async def test_errors_and_cut_streams_are_not_cached(store: ResponseCache) -> None:
    fake = FakeBackend().fail("m", BackendTimeout("slow"), times=1).enqueue("m", "ok")
    cached = CachedBackend(fake, store)
    with pytest.raises(BackendTimeout):
        await cached.complete(req(temperature=0))
    assert len(store) == 0
    assert (await cached.complete(req(temperature=0))).text == "ok"
    stream = cached.stream(req("long", temperature=0))
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(store) == 1


async def test_answers_survive_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    first = CachedBackend(FakeBackend().enqueue("m", "kept"), ResponseCache(path))
    await first.complete(req(seed=1))
    fake = FakeBackend()
    again = CachedBackend(fake, ResponseCache(path))
    assert (await again.complete(req(seed=1))).text == "kept"
    assert fake.calls == []


async def test_costs_are_noted_as_when_generated(store: ResponseCache) -> None:
    fake = FakeBackend().enqueue("m", "one two three").latency("m", 0.05)
    cached = CachedBackend(fake, store)
    with recording() as ledger:
        await cached.complete(req(temperature=0))
        await cached.complete(req(temperature=0))
    first, second = ledger
    assert not first.cached and second.cached
    assert first.output_tokens == second.output_tokens == 3
    assert second.seconds == pytest.approx(first.seconds, abs=0.01) and first.seconds >= 0.05


async def test_concurrency_bound_keeps_the_time_of_each_call_its_own(store: ResponseCache) -> None:
    fake = FakeBackend().latency("m", 0.05)
    cached = CachedBackend(fake, store, concurrency=1)
    with recording() as ledger:
        await asyncio.gather(*(cached.complete(req(str(i), seed=0)) for i in range(3)))
    assert all(c.seconds < 0.09 for c in ledger)  # queued time is not counted


async def test_cached_proposals_are_reused_across_recipes(store: ResponseCache) -> None:

    def wrap(provider: str, backend: Backend) -> Backend:
        return CachedBackend(backend, store, namespace=provider)

    resolver = Resolver(wrap=wrap)
    layers = [[{"model": "fake:p", "n": 3, "temperature": 0.7}]]
    one = MoA({"layers": layers, "aggregator": "fake:a"}, resolver=resolver)
    vote = MoA(
        {"layers": layers, "aggregator": "fake:a", "strategy": {"final": "vote"}},
        resolver=resolver,
    )
    await one.arun("q")
    backend, _ = resolver.resolve("fake:p")
    assert isinstance(backend, CachedBackend)
    inner = backend.inner
    assert isinstance(inner, FakeBackend)
    calls = len(inner.calls)
    assert calls == 4  # three samples (seeds 0, 1, 2) and an aggregator without a seed
    with recording() as ledger:
        await vote.arun("q")
    assert len(inner.calls) == calls  # every proposal came from the cache
    assert [c.cached for c in ledger] == [True, True, True]
    await resolver.aclose()
