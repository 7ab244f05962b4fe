"""The `local` recipe against the greedy answer alone on GSM8K, and `moa ask` as a user runs it.

1. The first N GSM8K test problems (the evaluation's answer-line prompt), each put alternately
   to the greedy answer alone (benchmarks/recipes/qwen1.5b-greedy.yaml) and to the `local`
   recipe (four answers of the same model, decoded together, and a vote), without the response
   cache, the model loaded first. Wall time of each, their ratio, the answers' output tokens
   (the longest of the four sets the recipe's time) and the scores.
2. `moa ask "What is 17 * 23? Answer briefly."` on the `local` recipe, R times, a new process
   each time with the model file warm in the page cache: wall time and peak RSS.

    .venv/bin/python benchmarks/local_recipe.py [--problems 3] [--asks 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from moa.engine import MoA
from moa.evals.gsm8k import PROMPTS, load_problems, score

GREEDY = Path(__file__).parent / "recipes" / "qwen1.5b-greedy.yaml"
QUESTION = "What is 17 * 23? Answer briefly."


def timed(moa: MoA, prompt: str) -> tuple[float, str, list[int]]:
    start = time.monotonic()
    result = moa.run(prompt)
    took = time.monotonic() - start
    return took, result.text, [c.output_tokens for c in result.trace.calls]


def ask(moa_bin: Path) -> tuple[float, float, str]:
    """Seconds and peak RSS (GB) of one `moa ask`, and its answer."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(moa_bin), "ask", QUESTION], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode().strip()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"moa ask failed ({proc.returncode})")
    return took, usage.ru_maxrss / 1024**2, out  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=3)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--asks", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    greedy, local = MoA.from_recipe(GREEDY), MoA.from_recipe("local")
    for moa in (greedy, local):
        moa.prepare()
    greedy.run("Say hi.", max_tokens=4)  # loads the model (one instance serves both)
    ratios, sums = [], [0.0, 0.0]
    right = [0, 0]
    for problem in load_problems(limit=args.problems, offset=args.offset):
        prompt = PROMPTS["answer-line"].format(question=problem["question"])
        g_s, g_text, g_tokens = timed(greedy, prompt)
        l_s, l_text, l_tokens = timed(local, prompt)
        g_ok, l_ok = score(g_text, problem["gold"])[1], score(l_text, problem["gold"])[1]
        right[0] += g_ok
        right[1] += l_ok
        sums[0] += g_s
        sums[1] += l_s
        ratios.append(l_s / g_s)
        print(
            f"problem {problem['id']}: greedy {g_s:5.1f} s ({g_tokens[0]} tokens, "
            f"{'right' if g_ok else 'wrong'}), local {l_s:5.1f} s (answers of "
            f"{'/'.join(map(str, l_tokens))} tokens, {'right' if l_ok else 'wrong'}): "
            f"{l_s / g_s:.2f}x",
            flush=True,
        )
    if ratios:
        median = statistics.median(ratios)
        print(
            f"local / greedy alone: {sums[1] / sums[0]:.2f}x in all, median {median:.2f}x; "
            f"right: greedy {right[0]}, local {right[1]} of {len(ratios)}"
        )
    greedy.close()
    local.close()

    moa_bin = Path(sys.executable).with_name("moa")
    ask(moa_bin)  # the page cache warm
    for _ in range(args.asks):
        took, rss, out = ask(moa_bin)
        print(f"moa ask, warm: {took:.1f} s, peak RSS {rss:.2f} GB, answer {out[:40]!r}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
