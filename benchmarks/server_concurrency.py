"""How many concurrent streaming requests the server holds, on fake backends with latency.

    .venv/bin/python benchmarks/server_concurrency.py [--levels 50,100,200,400,800]

The server runs in a child process (this script with --serve) on a recipe of three fake
proposers that answer after `--latency` seconds and a fake aggregator that streams its tokens
`--token-delay` apart. For each level N, N streaming requests are opened at once with the
async openai client; it prints, per N, how many completed, how many failed, and the p50/p95
of the whole request and of the time to first token. It stops at the first level with errors
or when the p95 latency passes `--degraded` times the unloaded latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import openai

PROMPT = "Explain, in one sentence, why the sky is blue."


def serve(port: int, latency: float, token_delay: float) -> None:
    """The child process: the app on a recipe of fake agents with latency."""
    import uvicorn

    from moa import FakeBackend
    from moa.server import create_app

    fake = FakeBackend()
    for name in ("p1", "p2", "p3"):
        fake.latency(name, latency)
    fake.latency("agg", 0.0, per_token=token_delay)
    recipe = {"layers": [["fake:p1", "fake:p2", "fake:p3"]], "aggregator": "fake:agg"}
    app = create_app(
        api_key="",
        recipes={"bench": recipe},
        backends={"fake": fake},
        max_concurrent_runs=100_000,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


@dataclass
class Outcome:
    ok: bool
    latency: float
    first_token: float | None
    error: str = ""


async def one(client: openai.AsyncOpenAI) -> Outcome:
    t0 = time.perf_counter()
    first = None
    try:
        stream = await client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter() - t0
                text += chunk.choices[0].delta.content
        if not text:
            return Outcome(False, time.perf_counter() - t0, first, "empty answer")
        return Outcome(True, time.perf_counter() - t0, first)
    except Exception as exc:
        return Outcome(False, time.perf_counter() - t0, first, f"{type(exc).__name__}: {exc}")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def level(url: str, n: int) -> tuple[list[Outcome], float]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    http = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, connect=60))
    async with openai.AsyncOpenAI(
        base_url=url, api_key="unused", max_retries=0, http_client=http
    ) as client:
        t0 = time.perf_counter()
        outcomes = await asyncio.gather(*(one(client) for _ in range(n)))
        return list(outcomes), time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, child: subprocess.Popen[bytes]) -> None:
    until = time.monotonic() + 60
    while time.monotonic() < until:
        if child.poll() is not None:
            raise SystemExit("the server exited")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="50,100,200,400,800,1600")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per proposer")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds per token")
    parser.add_argument("--degraded", type=float, default=10.0, help="stop at p95 > x * base")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.latency, args.token_delay)
        return

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port)]
    command += ["--latency", str(args.latency), "--token-delay", str(args.token_delay)]
    child = subprocess.Popen(command, env={**os.environ, "MOA_API_KEY": ""})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, child)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(
            f"recipe: 3 fake proposers x {args.latency} s, aggregator streaming "
            f"{args.token_delay} s per token; every request streams"
        )
        single, _ = asyncio.run(level(base + "/v1", 1))
        baseline = single[0].latency
        print(f"unloaded: one request takes {baseline:.3f} s\n")
        head = f"{'N':>6} {'done':>6} {'errors':>6} {'p50 s':>7} {'p95 s':>7}"
        head += f" {'ttft p50':>9} {'ttft p95':>9} {'wall s':>7} {'cpu srv':>8} {'cpu cli':>8}"
        print(head)
        for n in (int(x) for x in args.levels.split(",")):
            server_cpu, client_cpu = cpu_seconds(child.pid), time.process_time()
            outcomes, wall = asyncio.run(level(base + "/v1", n))
            server_cpu = cpu_seconds(child.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
            ok = [o for o in outcomes if o.ok]
            errors = [o for o in outcomes if not o.ok]
            lat = [o.latency for o in ok]
            ttft = [o.first_token for o in ok if o.first_token is not None]
            p95 = pct(lat, 95)
            print(
                f"{n:>6} {len(ok):>6} {len(errors):>6} {pct(lat, 50):>7.3f} {p95:>7.3f}"
                f" {pct(ttft, 50):>9.3f} {pct(ttft, 95):>9.3f} {wall:>7.2f}"
                f" {server_cpu:>8.2f} {client_cpu:>8.2f}",
                flush=True,
            )
            if errors:
                kinds = statistics.multimode(e.error.split(":")[0] for e in errors)
                print(f"stopped: {len(errors)} errors at N={n}, e.g. {kinds[0]}: {errors[0].error}")
                break
            if p95 > args.degraded * baseline:
                print(f"stopped: p95 {p95:.2f} s is over {args.degraded}x the unloaded latency")
                break
    finally:
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
