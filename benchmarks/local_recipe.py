"""The `local` recipe against the greedy answer alone, and `moa ask` as a user runs it.

1. N problems of a benchmark (`--bench`: GSM8K from problem 1000 on, the held-out split of
   any other registered benchmark, each put as the evaluation puts it), each put alternately to the
   greedy answer alone (benchmarks/recipes/qwen1.5b-greedy.yaml) and to the `local` recipe
   (four answers of the same model, decoded together, one rule per kind of answer), without the
   response cache, the model loaded first. Wall time of each, their ratio, the answers' output
   tokens (the longest of those that ran to their end sets the recipe's time) and the scores.
2. `moa ask "What is 17 * 23? Answer briefly."` on the `local` recipe, R times, a new process
   each time with the model file warm in the page cache: wall time and peak RSS.

    .venv/bin/python benchmarks/local_recipe.py [--bench gsm8k] [--problems 3] [--asks 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moa.engine import MoA
from moa.evals.registry import benchmark_class
from moa.evals.runner import load_items
from moa.types import MessagesLike, ToolCall

GREEDY = Path(__file__).parent / "recipes" / "qwen1.5b-greedy.yaml"
QUESTION = "What is 17 * 23? Answer briefly."


def timed(moa: MoA, problem: Problem) -> tuple[float, str, list[int]]:
    """Seconds, the answer as its benchmark scores it, and each call's output tokens."""
    start = time.monotonic()
    result = moa.run(problem.prompt, **problem.request)
    took = time.monotonic() - start
    text = problem.text(result.text, result.tool_calls) or ""
    return took, text, [c.output_tokens for c in result.trace.calls]


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


@dataclass
class Problem:
    id: str
    prompt: MessagesLike
    request: dict[str, Any]  # tools, for BFCL
    text: Callable[[str | None, Sequence[ToolCall]], str | None]  # the answer as scored
    right: Callable[[str], bool]


def problems(bench: str, count: int, offset: int) -> list[Problem]:
    """The held-out items of a registered benchmark (GSM8K: from problem 1000 on), each put as
    its evaluation puts it, with its scorer."""
    b = benchmark_class(bench)()
    if b.splits:
        items = load_items(b, split="held-out", limit=count, offset=offset).items
    else:
        items = load_items(b, limit=count, offset=1000 + offset).items
    out: list[Problem] = []
    for item in items:

        def right(text: str, item: dict[str, Any] = item) -> bool:
            return b.correct({**b.score(item, text), "text": text})

        out.append(Problem(str(item["id"]), b.prompt(item), b.request(item), b.answer_text, right))
    return out


def _word(ok: bool) -> str:
    return "right" if ok else "wrong"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", default="gsm8k", help="gsm8k, humaneval, ifeval, bfcl, ...")
    parser.add_argument("--problems", type=int, default=3)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--asks", type=int, default=2)
    parser.add_argument(
        "--recipe", action="append", help="a recipe timed against greedy (default: local); repeat"
    )
    args = parser.parse_args()
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    names = args.recipe or ["local"]
    greedy = MoA.from_recipe(GREEDY)
    others = [MoA.from_recipe(name) for name in names]
    for moa in (greedy, *others):
        moa.prepare()
    greedy.run("Say hi.", max_tokens=4)  # loads the model (one instance serves all)
    count = len(others)
    ratios: list[list[float]] = [[] for _ in others]
    sums = [0.0] * (count + 1)
    right = [0] * (count + 1)
    for problem in problems(args.bench, args.problems, args.offset):
        key, right_answer = problem.id, problem.right
        g_s, g_text, g_tokens = timed(greedy, problem)
        g_ok = right_answer(g_text)
        sums[0] += g_s
        right[0] += g_ok
        line = f"{args.bench} {key}: greedy {g_s:5.1f} s ({g_tokens[0]} tokens, {_word(g_ok)})"
        for k, moa in enumerate(others, 1):
            l_s, l_text, l_tokens = timed(moa, problem)
            l_ok = right_answer(l_text)
            sums[k] += l_s
            right[k] += l_ok
            ratios[k - 1].append(l_s / g_s)
            line += (
                f"; {names[k - 1]} {l_s:5.1f} s (answers of {'/'.join(map(str, l_tokens))} "
                f"tokens, {_word(l_ok)}): {l_s / g_s:.2f}x"
            )
        print(line, flush=True)
    for k, name in enumerate(names, 1):
        if ratios[k - 1]:
            median = statistics.median(ratios[k - 1])
            print(
                f"{name} / greedy alone: {sums[k] / sums[0]:.2f}x in all, median {median:.2f}x; "
                f"right: greedy {right[0]}, {name} {right[k]} of {len(ratios[k - 1])}"
            )
    for moa in (greedy, *others):
        moa.close()

    moa_bin = Path(sys.executable).with_name("moa")
    if args.asks:
        ask(moa_bin)  # the page cache warm
    for _ in range(args.asks):
        took, rss, out = ask(moa_bin)
        print(f"moa ask, warm: {took:.1f} s, peak RSS {rss:.2f} GB, answer {out[:40]!r}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
