"""The batch on a real local Ray cluster (started here): the local executor's outputs, limits
held across workers, and a worker killed mid-batch losing only its items in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultserver import Fault, FaultServer, Seen, ok

from moa import FakeBackend
from moa.batch import iter_results, run_recipe
from moa.limits import Limits

ray = pytest.importorskip("ray")
from moa.batch.ray import RayPool, run_recipe_ray  # noqa: E402

FAKE = {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg"}


def fakes() -> dict[str, Any]:
    """Each worker's backends (sent by value: this module is not importable there)."""
    return {"fake": FakeBackend(latency=0.005)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


def echo(model: str, seen: Seen) -> Fault:
    """An answer that depends on the question, so two executors can be compared."""
    last = next(m["content"] for m in reversed(seen.messages) if m["role"] == "user")
    return ok(f"{model} on {last}", delay=0.05)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(chooser=echo) as s:
        yield s


def http_recipe(server: FaultServer, **provider: Any) -> dict[str, Any]:
    return {
        "providers": {"loop": {"base_url": server.base_url, **provider}},
        "layers": [["loop:a", "loop:b"]],
        "aggregator": "loop:agg",
        "timeout": 10,
    }


def texts(out: Path) -> dict[str, str]:
    return {r["id"]: r["text"] for r in iter_results(out) if r["ok"]}


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "prompt": f"question {i}"} for i in range(n)]


async def test_same_outputs_as_the_local_executor(
    cluster: None, tmp_path: Path, server: FaultServer
) -> None:
    from moa import MoA

    local = MoA(FAKE, backends=fakes())
    await run_recipe(None, items(30), out=tmp_path / "local.jsonl", moa=local, progress=False)
    await local.aclose()
    pool = await asyncio.to_thread(RayPool(FAKE, workers=2, per_worker=4, setup=fakes).start)
    try:
        summary = await run_recipe_ray(
            None, items(30), out=tmp_path / "ray.jsonl", pool=pool, concurrency=8, progress=False
        )
        assert (summary.ran, summary.failed) == (30, 0)
        assert sorted(pool.served.values()) and len(pool.served) == 2  # both workers answered
    finally:
        await asyncio.to_thread(pool.close)
    assert texts(tmp_path / "ray.jsonl") == texts(tmp_path / "local.jsonl")
    assert len(texts(tmp_path / "ray.jsonl")) == 30

    # HTTP: the workers call a real server on loopback, as the local executor does
    recipe = http_recipe(server)
    local = MoA(recipe, limits=Limits(), env={})
    await run_recipe(None, items(12), out=tmp_path / "h-local.jsonl", moa=local, progress=False)
    await local.aclose()
    summary = await run_recipe_ray(
        recipe, items(12), out=tmp_path / "h-ray.jsonl", workers=2, concurrency=6, progress=False
    )
    assert summary.ran == 12
    assert texts(tmp_path / "h-ray.jsonl") == texts(tmp_path / "h-local.jsonl")
    assert texts(tmp_path / "h-ray.jsonl")["3"] == "agg on question 3"


def peak_in_flight(server: FaultServer) -> int:
    events = sorted(
        [(s.started, 1) for s in server.requests()]
        + [(s.finished or s.started, -1) for s in server.requests()]
    )
    live = peak = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    return peak


async def test_a_provider_limit_holds_across_the_workers(
    cluster: None, tmp_path: Path, server: FaultServer
) -> None:
    recipe = http_recipe(server, concurrency=2)  # 3 workers x 4 items could send 12 at once
    pool = await asyncio.to_thread(RayPool(recipe, workers=3, per_worker=4).start)
    try:
        summary = await run_recipe_ray(
            None, items(18), out=tmp_path / "o.jsonl", pool=pool, concurrency=12, progress=False
        )
        stats = pool.limiter_stats()
        assert len(pool.served) == 3
    finally:
        await asyncio.to_thread(pool.close)
    assert summary.ran == 18 and not summary.failed
    assert stats["peak"]["loop"] == 2 and stats["in_use"]["loop"] == 0
    assert peak_in_flight(server) == 2  # as the server saw it


async def test_a_killed_worker_loses_only_its_items_in_flight(
    cluster: None, tmp_path: Path, server: FaultServer
) -> None:
    recipe = http_recipe(server, concurrency=4)  # the dead worker's slots must come back
    pool = await asyncio.to_thread(RayPool(recipe, workers=2, per_worker=3).start)
    out = tmp_path / "o.jsonl"
    n = 40
    try:
        pids = pool.pids()
        batch = asyncio.create_task(
            run_recipe_ray(None, items(n), out=out, pool=pool, concurrency=6, progress=False)
        )
        for _ in range(1000):  # until 8 lines are on disk
            if len(list(iter_results(out))) >= 8:
                break
            await asyncio.sleep(0.02)
        os.kill(pids["worker-1"], signal.SIGKILL)
        killed_at = time.monotonic()
        summary = await asyncio.wait_for(batch, 60)
        for _ in range(100):  # releases are sent without waiting: they may still be on the way
            stats = pool.limiter_stats()
            if not stats["in_use"]["loop"]:
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(pool.close)
    lines = [r["id"] for r in iter_results(out)]
    assert sorted(lines, key=int) == [
        str(i) for i in range(n)
    ]  # one line each: none lost, none twice
    assert all(r["ok"] for r in iter_results(out))
    assert (summary.ran, summary.failed) == (n, 0), (summary, pool.retried, pool.deaths)
    assert pool.deaths == 1 and 1 <= pool.retried <= 3  # at most its 3 in flight ran again
    calls = len(server.requests())
    assert 3 * n <= calls <= 3 * n + 3 * pool.retried
    assert pool.served["worker-3"] > 0  # the replacement took work
    assert stats["in_use"]["loop"] == 0 and stats["peak"]["loop"] == 4
    assert time.monotonic() - killed_at < 30


def test_the_cli_runs_on_the_cluster_and_resumes(cluster: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from moa.cli import app

    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"id": "{i}", "prompt": "p{i}"}}\n' for i in range(10)))
    out = tmp_path / "o.jsonl"
    args = ["batch", str(source), "-o", str(out), "-r", "fake", "--executor", "ray"]
    result = CliRunner().invoke(app, [*args, "--workers", "2", "--format", "mt_bench"])
    assert result.exit_code == 0, result.output
    assert "10 answered (0 failed)" in result.stderr and "Ray: items by worker" in result.stderr
    assert len(texts(out)) == 10 and (tmp_path / "o.mt_bench.jsonl").exists()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "10 already done" in again.stderr
    assert len(list(iter_results(out))) == 10


def broken() -> dict[str, Any]:
    raise RuntimeError("no backend on this node")


def test_a_worker_that_cannot_start_is_one_clear_error(cluster: None) -> None:
    from moa.errors import ConfigError

    with pytest.raises(ConfigError, match="a worker could not start") as caught:
        RayPool(FAKE, workers=1, setup=broken).start()
    assert str(caught.value).endswith("RuntimeError: no backend on this node")
    assert "\n" not in str(caught.value)


def test_workers_that_cannot_be_placed_are_one_clear_error(cluster: None) -> None:
    from moa.errors import ConfigError

    # the test cluster has 8 CPUs: two workers of 5 cannot both be placed
    pool = RayPool(FAKE, workers=2, setup=fakes, cpus_per_worker=5, start_timeout=3)
    with pytest.raises(ConfigError, match="2 workers did not start within 3s"):
        pool.start()
