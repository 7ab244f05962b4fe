"""Batch throughput against a scripted OpenAI-compatible server with fixed latencies.

    .venv/bin/python benchmarks/batch_throughput.py                 # local executor
    .venv/bin/python benchmarks/batch_throughput.py --ray 1,2,4     # and Ray, 1, 2, 4 workers
    .venv/bin/python benchmarks/batch_throughput.py --profile       # where the driver's time goes

The recipe: a layer of 2 agents (0.2 s each) and an aggregator (0.15 s): a critical path of
0.35 s, so `concurrency` items in flight can at best finish concurrency / 0.35 items a second.
The server (tests/faultserver.py) runs in a process of its own, on loopback; the batch is the
real one (`moa.batch.run_recipe`, traces kept, lines fsync'ed), through the real
OpenAICompatBackend. Figures are ratios to that ideal, measured in one run. It is a benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"
LATENCY = {"a": 0.2, "b": 0.2, "agg": 0.15}
CRITICAL = LATENCY["a"] + LATENCY["agg"]


def serve() -> None:
    """The scripted server: prints `PORT n`, serves until stdin closes."""
    sys.path.insert(0, str(TESTS))
    from faultserver import FaultServer, ok

    with FaultServer() as server:
        for model, delay in LATENCY.items():
            server.respond(model, ok(delay=delay))
        print(f"PORT {server.port}", flush=True)
        sys.stdin.read()
    print(f"CPU {time.process_time():.3f}", flush=True)


def recipe(port: int) -> dict[str, Any]:
    return {
        "name": "bench",
        "providers": {"loop": {"base_url": f"http://127.0.0.1:{port}/v1"}},
        "layers": [["loop:a", "loop:b"]],
        "aggregator": "loop:agg",
        "timeout": 30,
    }


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "prompt": f"question {i}: say something"} for i in range(n)]


FSYNC = {"calls": 0, "seconds": 0.0}


def counting_fsync() -> None:
    """Count the log's fsyncs and the time they take (the thread that calls them waits)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        start = time.perf_counter()
        real(fd)
        FSYNC["calls"] += 1
        FSYNC["seconds"] += time.perf_counter() - start

    os.fsync = fsync


async def local(port: int, n: int, concurrency: int, *, fsync: bool, trace: bool) -> float:
    from moa import MoA
    from moa.batch import run_recipe

    moa = MoA(recipe(port), env={})
    before = dict(FSYNC)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = await run_recipe(
            None,
            items(n),
            out=Path(tmp) / "o.jsonl",
            moa=moa,
            concurrency=concurrency,
            progress=False,
            fsync=fsync,
            keep_trace=trace,
        )
        took = time.perf_counter() - start
    await moa.aclose()
    assert summary.ran == n and not summary.failed, summary.errors[:3]
    if fsync:
        calls, spent = FSYNC["calls"] - before["calls"], FSYNC["seconds"] - before["seconds"]
        print(
            f"{'':34} fsync: {calls} calls for {n} items ({n / max(calls, 1):.1f} lines each), "
            f"{spent * 1000 / max(calls, 1):.2f} ms a call, {spent * 1000 / n:.3f} ms an item"
        )
    return took


async def on_ray(port: int, n: int, workers: int, per_worker: int) -> float:
    from moa.batch.ray import RayPool, run_recipe_ray

    pool = RayPool(recipe(port), workers=workers, per_worker=per_worker)
    await asyncio.to_thread(pool.start)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = await run_recipe_ray(
                None,
                items(n),
                out=Path(tmp) / "o.jsonl",
                pool=pool,
                concurrency=workers * per_worker,
                progress=False,
            )
            took = time.perf_counter() - start
    finally:
        await asyncio.to_thread(pool.close)
    assert summary.ran == n and not summary.failed, summary.errors[:3]
    return took


def line(label: str, n: int, concurrency: int, run: Any) -> float:
    """Run `run` (a coroutine), print its figures, return its seconds."""
    cpu = time.process_time()
    took: float = asyncio.run(run)
    cpu = time.process_time() - cpu
    ideal = n * CRITICAL / concurrency
    print(
        f"{label:<34} {n / took:7.1f} items/s  {took:6.2f}s  ideal {ideal:5.2f}s  "
        f"ratio {ideal / took:.2f}  driver CPU {cpu / n * 1000:5.1f} ms/item",
        flush=True,
    )
    return took


PARTS = (
    "moa/engine",
    "moa/trace",
    "moa/batch",
    "moa/backends",
    "moa/",
    "openai",
    "httpx",
    "httpcore",
    "anyio",
    "h11",
    "pydantic",
    "asyncio",
    "typing",
    "json",
    "rich",
    "~",  # built-ins: sockets, isinstance, ...
)


def profile(port: int, n: int, concurrency: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    took = asyncio.run(local(port, n, concurrency, fsync=True, trace=True))
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    buckets: dict[str, float] = {}
    for (file, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        name = file.replace("\\", "/")
        key = "other"
        for part in PARTS:
            if part in name:
                key = part
                break
        buckets[key] = buckets.get(key, 0.0) + row[2]  # own time
    print(
        f"profile: {n} items in {took:.2f}s, driver CPU (own time) {total:.2f}s, "
        f"{total / n * 1000:.2f} ms an item"
    )
    for key, own in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<14} {own:6.2f}s  {own / n * 1000:6.2f} ms/item  {own / total:5.1%}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ray", default="", help="worker counts, e.g. 1,2,4")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline().split()[1])
    n, c = args.items, args.concurrency
    counting_fsync()
    try:
        if args.profile:
            profile(port, n, c)
            return
        print(f"{n} items, critical path {CRITICAL:.2f}s; server in its own process")
        small = max(1, n // 4)
        runs = [
            (f"local, concurrency {c}", n, c, dict(fsync=True, trace=True)),
            (f"local, concurrency {c}, no fsync", n, c, dict(fsync=False, trace=True)),
            (f"local, concurrency {c}, no trace", n, c, dict(fsync=True, trace=False)),
            ("local, concurrency 8", small, 8, dict(fsync=True, trace=True)),
        ]
        for label, count, bound, options in runs:
            line(label, count, bound, local(port, count, bound, **options))
        if args.ray:
            import ray

            ray.init(address="local", include_dashboard=False, log_to_driver=False)
            one = None
            for workers in [int(w) for w in args.ray.split(",")]:
                took = line(
                    f"ray, {workers} worker(s) x {c}", n, workers * c, on_ray(port, n, workers, c)
                )
                one = one or n / took
                print(
                    f"{'':34} {n / took / one:.2f} x one worker's (target >= {0.8 * workers:.1f})"
                )
            ray.shutdown()
    finally:
        server.stdin.close()
        cpu = float(server.stdout.readline().split()[1])
        server.wait(timeout=10)
    print(f"the server's CPU over all runs: {cpu:.1f}s")


if __name__ == "__main__":
    main()
