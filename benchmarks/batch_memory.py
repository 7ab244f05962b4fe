"""The driver's peak memory on a million items: streamed, against reading them whole.

    .venv/bin/python benchmarks/batch_memory.py              # 1,000,000 items (a few minutes)
    .venv/bin/python benchmarks/batch_memory.py --items 100000

Each phase runs in a fresh process and reports its peak RSS (ru_maxrss): the imports alone; a
batch over a JSONL file of N items (trivial work, 64 in flight, lines fsync'ed), so only the
driver is measured; the resume of that batch (every item already done: the log is scanned);
and, for comparison, what reading the inputs and the log whole costs (`load_items` and
`read_results`, as `moa batch` did before). It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: str, source: Path, out: Path) -> None:
    import asyncio

    from moa.batch import load_items, read_results, run_batch

    async def work(item: dict[str, object]) -> dict[str, object]:
        return {"chars": len(str(item["prompt"]))}

    start = time.perf_counter()
    detail = ""
    if name in ("batch", "resume"):
        summary = asyncio.run(run_batch(source, work, out=out, concurrency=64, progress=False))
        detail = f"ran {summary.ran}, skipped {summary.skipped}"
    elif name == "whole":
        items, done = load_items(source), read_results(out)
        detail = f"{len(items)} items and {len(done)} results in memory"
    took = time.perf_counter() - start
    print(json.dumps({"phase": name, "peak_mib": peak_mib(), "seconds": took, "detail": detail}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, Path(args.source), Path(args.out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "items.jsonl", Path(tmp) / "results.jsonl"
        with source.open("w") as f:
            for i in range(args.items):
                f.write(
                    json.dumps({"id": f"q-{i:07d}", "prompt": f"Question {i}: what is {i} + 1?"})
                )
                f.write("\n")
        mib = source.stat().st_size / 2**20
        print(f"{args.items:,} items, {mib:.0f} MiB of JSONL")
        for name in ("imports", "batch", "resume", "whole"):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    name,
                    "--source",
                    str(source),
                    "--out",
                    str(out),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{row['phase']:<8} peak RSS {row['peak_mib']:7.1f} MiB  {row['seconds']:7.1f}s  "
                f"{row['detail']}",
                flush=True,
            )
        print(f"results log: {out.stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
