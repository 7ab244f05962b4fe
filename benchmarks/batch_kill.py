"""Kill tests as a user would run them, with figures: `moa batch` killed with SIGKILL and
resumed (local executor), and a Ray worker killed mid-batch on a cluster started with
`ray start --head` (the batch joins it with `--address`).

    .venv/bin/python benchmarks/batch_kill.py                  # 300 items, 5 kills, then Ray
    .venv/bin/python benchmarks/batch_kill.py --no-ray

The recipe (2 proposers and an aggregator, 0.05 s each) calls a scripted server on loopback
(tests/faultserver.py, in this process). It prints, for each: items, kills, lines at the end,
duplicates, and the calls made against the ideal (3 an item). It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import contextlib

from faultserver import FaultServer, ok

from moa.batch import iter_results

MOA = [sys.executable, "-c", "from moa.cli import main; main()"]
RAY = str(Path(sys.executable).parent / "ray")


def lines(out: Path) -> int:
    return sum(1 for _ in iter_results(out))


def report(label: str, n: int, kills: int, out: Path, calls: int, extra: str = "") -> None:
    ids = Counter(r["id"] for r in iter_results(out) if r["ok"])
    failed = sum(1 for r in iter_results(out) if not r["ok"])
    dupes = sum(c - 1 for c in ids.values())
    print(
        f"{label}: {n} items, {kills} kill(s); {len(ids)} successful lines "
        f"({'all' if len(ids) == n else 'NOT all'} items), {dupes} duplicates, {failed} failed "
        f"lines; {calls} calls against an ideal {3 * n} (+{calls - 3 * n}){extra}",
        flush=True,
    )


def setup(tmp: Path, server: FaultServer, n: int) -> tuple[Path, Path]:
    source = tmp / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": str(i), "prompt": f"q{i}"}) + "\n" for i in range(n))
    )
    recipe = tmp / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "providers": {"loop": {"base_url": server.base_url}},
                "layers": [["loop:a", "loop:b"]],
                "aggregator": "loop:agg",
            }
        )
    )
    return source, recipe


def local(n: int, kills: int, bound: int) -> None:
    with tempfile.TemporaryDirectory() as t, FaultServer() as server:
        for model in ("a", "b", "agg"):
            server.respond(model, ok(delay=0.05))
        source, recipe = setup(Path(t), server, n)
        out = Path(t) / "out.jsonl"
        args = [*MOA, "batch", str(source), "-o", str(out), "-r", str(recipe)]
        args += ["--concurrency", str(bound), "--no-trace"]
        for k in range(kills):
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            target = (k + 1) * n // (kills + 1)
            while lines(out) < target:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        subprocess.run(args, check=True, capture_output=True)
        report(f"local (concurrency {bound})", n, kills, out, len(server.requests()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[tuple[int, str]]:
    rows = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    found = []
    for row in rows.splitlines()[1:]:
        child, parent, cmd = row.split(None, 2)
        if int(parent) == pid:
            found.append((int(child), cmd))
    return found


def on_ray(n: int, workers: int, bound: int) -> None:
    temp = tempfile.mkdtemp(prefix="moa-ray-")
    port = free_port()
    # a fresh cluster and its driver on one machine: no token to share (Ray 2.5x+ enables
    # token auth by default; a user joining a cluster that has it needs its token)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    started = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=4",
            f"--temp-dir={temp}",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    address = re.search(r"--address='([^']+)'", started.stdout + started.stderr)
    assert address, started.stdout
    try:
        with tempfile.TemporaryDirectory() as t, FaultServer() as server:
            for model in ("a", "b", "agg"):
                server.respond(model, ok(delay=0.05))
            source, recipe = setup(Path(t), server, n)
            out = Path(t) / "out.jsonl"
            args = [
                *MOA,
                "batch",
                str(source),
                "-o",
                str(out),
                "-r",
                str(recipe),
                "--no-trace",
                "--executor",
                "ray",
                "--address",
                address.group(1),
                "--workers",
                str(workers),
                "--concurrency",
                str(bound),
            ]
            proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            while lines(out) < n // 3:
                if proc.poll() is not None:
                    raise SystemExit(f"moa batch ended early: {proc.stderr.read()[-2000:]}")
                time.sleep(0.01)
            raylets = [p for p in ours(temp) if "raylet/raylet" in p[1]]
            victims = [pid for r, _ in raylets for pid, cmd in children(r) if "_Worker" in cmd]
            os.kill(victims[0], signal.SIGKILL)
            _, stderr = proc.communicate(timeout=300)
            notes = [line.strip() for line in stderr.splitlines() if line.startswith("Ray:")]
            report(
                f"ray ({workers} workers, concurrency {bound})",
                n,
                1,
                out,
                len(server.requests()),
                "; " + "; ".join(notes),
            )
    finally:
        stop(temp)


def ours(temp: str) -> list[tuple[int, str]]:
    """The processes of the cluster started here (their command lines name its temp dir)."""
    rows = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [
        (int(r.split(None, 1)[0]), r.split(None, 1)[1])
        for r in rows.splitlines()[1:]
        if temp in r and "ps -eo" not in r
    ]


def stop(temp: str) -> None:
    """Stop the cluster started here, by process id (not `ray stop`: that stops every one)."""
    procs = ours(temp)
    pids = [pid for pid, _ in procs] + [c for pid, _ in procs for c, _ in children(pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-local", action="store_true")
    args = parser.parse_args()
    if not args.no_local:
        local(args.items, args.kills, 8)
    if not args.no_ray:
        on_ray(args.items, 2, 8)


if __name__ == "__main__":
    main()
