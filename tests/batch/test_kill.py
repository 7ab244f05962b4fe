"""kill -9 during `moa batch` through a real server on loopback, then resume: exactly one
successful line per item, none twice, and only the items in flight at each kill asked again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from faultserver import FaultServer, ok

from moa.batch import iter_results

MOA = [sys.executable, "-c", "from moa.cli import main; main()"]


def test_kill_nine_then_resume(tmp_path: Path) -> None:
    n, bound, kills = 60, 8, 3
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": str(i), "prompt": f"q{i}"}) + "\n" for i in range(n))
    )
    out = tmp_path / "out.jsonl"
    with FaultServer() as server:
        server.respond("a", ok(delay=0.05))
        server.respond("b", ok(delay=0.05))
        server.respond("agg", ok(delay=0.05))
        recipe = tmp_path / "r.yaml"
        recipe.write_text(
            yaml.safe_dump(
                {
                    "providers": {"loop": {"base_url": server.base_url}},
                    "layers": [["loop:a", "loop:b"]],
                    "aggregator": "loop:agg",
                }
            )
        )
        args = [
            *MOA,
            "batch",
            str(source),
            "-o",
            str(out),
            "-r",
            str(recipe),
            "--concurrency",
            str(bound),
            "--no-trace",
        ]
        env = {**os.environ, "MOA_DEBUG": ""}
        done_at_kill = []
        for k in range(kills):
            proc = subprocess.Popen(
                args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            target = (k + 1) * n // (kills + 1)
            deadline = time.monotonic() + 60
            while sum(1 for _ in iter_results(out)) < target and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            done_at_kill.append(sum(1 for _ in iter_results(out)))
        assert all(0 < d < n for d in done_at_kill)
        final = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        calls = len(server.requests())
    ids = Counter(r["id"] for r in iter_results(out))
    assert sorted(ids, key=int) == [str(i) for i in range(n)]
    assert set(ids.values()) == {1}  # no duplicates
    assert all(r["ok"] for r in iter_results(out))
    # the ideal is 3 calls an item; each kill may waste at most the items in flight
    assert 3 * n <= calls <= 3 * n + 3 * bound * kills
