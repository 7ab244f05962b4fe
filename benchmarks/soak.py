"""Soak: many MoA runs against the fault-injecting server, with a share of calls failing.

    .venv/bin/python benchmarks/soak.py                       # 1000 runs, 30% faults, 50 at once
    .venv/bin/python benchmarks/soak.py --runs 200 --fault-rate 0.5

The recipe: two proposer layers of 4 agents (quorum 2, grace 0.5 s) and an aggregator with one
fallback, on the real OpenAICompatBackend over loopback HTTP. The fault server runs in a process
of its own (tests/faultserver.py), so client and server do not share a GIL. Each request fails
with probability --fault-rate, in one of the ways the server knows (429 with and without
Retry-After, 500, 503, 400, 401, 404, a slow answer past the timeout, a connection reset,
malformed JSON, empty choices, a stream cut short, a context-length error), drawn from a seeded
generator. The same soak is run first with no faults, as the baseline for latency.

It prints: runs that succeeded, runs that ended with a clear error (a moa.errors.MoAError, by
type), runs that raised anything else (must be 0; the first few are printed with tracebacks),
latency p50/p95 against the baseline, and attempts per call. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa import MoA
from moa.errors import MoAError
from moa.limits import Limits
from moa.trace import Trace

FAULTSERVER = Path(__file__).resolve().parent.parent / "tests" / "faultserver.py"


def recipe(base_url: str, timeout: float) -> dict[str, Any]:
    def layer(prefix: str) -> dict[str, Any]:
        return {"agents": [f"faulty:{prefix}{i}" for i in range(1, 5)], "quorum": 2, "grace": 0.5}

    return {
        "name": "soak",
        "providers": {"faulty": {"base_url": base_url}},
        "layers": [layer("p"), layer("q")],
        "aggregator": {"model": "faulty:agg", "fallbacks": ["faulty:agg-backup"]},
        "timeout": timeout,
        "retry": {
            "attempts": 3,
            "backoff": 0.05,
            "max_backoff": 0.5,
            "jitter": 0.25,
            "max_retry_after": 1.0,
        },
    }


@dataclass
class Soak:
    fault_rate: float
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    clear: collections.Counter[str] = field(default_factory=collections.Counter)
    other: list[str] = field(default_factory=list)
    attempts: collections.Counter[int] = field(default_factory=collections.Counter)
    left_running: int = 0
    wall: float = 0.0
    served: dict[str, int] = field(default_factory=dict)

    def record_trace(self, trace: Trace | None) -> None:
        if trace is None:
            return
        for call in trace.calls:
            if call.attempts:
                self.attempts[len(call.attempts)] += 1


def start_server(rate: float, seed: int, latency: float, slow: float) -> tuple[Any, int]:
    args = [sys.executable, str(FAULTSERVER), "--rate", str(rate), "--seed", str(seed)]
    args += ["--latency", str(latency), "--slow", str(slow)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"the fault server did not start: {line!r}")
    return proc, int(line.split()[1])


def stop_server(proc: Any) -> dict[str, int]:
    out, _ = proc.communicate(input="", timeout=30)
    lines = [x for x in out.splitlines() if x.startswith("{")]
    return dict(json.loads(lines[-1])) if lines else {}


async def soak(args: argparse.Namespace, fault_rate: float) -> Soak:
    proc, port = start_server(fault_rate, args.seed, args.latency, args.slow)
    result = Soak(fault_rate)
    gate = asyncio.Semaphore(args.concurrency)
    moa = MoA(recipe(f"http://127.0.0.1:{port}/v1", args.timeout), limits=Limits(), env={})

    async def one(number: int) -> None:
        async with gate:
            start = time.monotonic()
            try:
                answer = await moa.arun(f"question {number}: what is {number} * 7?")
            except MoAError as exc:
                result.clear[type(exc).__name__] += 1
                result.record_trace(getattr(exc, "trace", None))
            except Exception:
                result.other.append(traceback.format_exc())
            else:
                result.ok += 1
                result.record_trace(answer.trace)
            result.latencies.append(time.monotonic() - start)

    started = time.monotonic()
    try:
        await asyncio.gather(*(one(i) for i in range(args.runs)))
    finally:
        await moa.aclose()
        result.wall = time.monotonic() - started
        result.served = stop_server(proc)
    await asyncio.sleep(0.05)
    result.left_running = len(asyncio.all_tasks()) - 1
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(base: Soak, faulty: Soak, runs: int) -> None:
    def line(s: Soak) -> str:
        p50, p95 = pct(s.latencies, 0.5) * 1000, pct(s.latencies, 0.95) * 1000
        return (
            f"p50 {p50:7.0f} ms   p95 {p95:7.0f} ms   max {max(s.latencies) * 1000:7.0f} ms"
            f"   wall {s.wall:6.1f} s"
        )

    print(f"\n== {runs} runs, {faulty.fault_rate:.0%} of calls failing ==")
    print(f"succeeded:            {faulty.ok}")
    clear = ", ".join(f"{k} {v}" for k, v in faulty.clear.most_common()) or "none"
    print(f"clear errors (MoAError): {sum(faulty.clear.values())}  ({clear})")
    print(f"anything else:        {len(faulty.other)}")
    for text in faulty.other[:3]:
        print(text)
    print(f"tasks left running:   {faulty.left_running}")
    served = sum(faulty.served.values())
    failed = served - faulty.served.get("ok", 0)
    print(f"requests served:      {served}, failed on purpose {failed} ({failed / served:.1%})")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(faulty.served.items()) if k != "ok")
    print(f"  by kind:            {kinds}")
    calls = sum(faulty.attempts.values())
    mean = sum(k * v for k, v in faulty.attempts.items()) / calls
    spread = ", ".join(f"{k}: {v}" for k, v in sorted(faulty.attempts.items()))
    print(f"attempts per call:    mean {mean:.2f} over {calls} calls  ({spread})")
    base_calls = sum(base.attempts.values())
    base_mean = sum(k * v for k, v in base.attempts.items()) / base_calls
    print(f"  baseline:           mean {base_mean:.2f} over {base_calls} calls")
    print("latency")
    print(f"  no faults:          {line(base)}")
    print(f"  {faulty.fault_rate:.0%} faults:         {line(faulty)}")
    p50 = pct(faulty.latencies, 0.5) - pct(base.latencies, 0.5)
    p95 = pct(faulty.latencies, 0.95) - pct(base.latencies, 0.95)
    print(f"  added:              p50 {p50 * 1000:+7.0f} ms   p95 {p95 * 1000:+7.0f} ms")
    print(f"baseline: {base.ok} of {runs} succeeded, {len(base.other)} other errors")
    mean_base = statistics.mean(base.latencies)
    print(f"mean latency: {mean_base * 1000:.0f} ms without faults")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="runs at a time")
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per answer")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-call timeout")
    parser.add_argument("--slow", type=float, default=5.0, help="a slow answer's seconds")
    args = parser.parse_args()
    base = asyncio.run(soak(args, 0.0))
    faulty = asyncio.run(soak(args, args.fault_rate))
    report(base, faulty, args.runs)
    if faulty.other or base.other:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
