"""What the sandbox costs, and that HumanEval's checking and the code selection work at scale.

    .venv/bin/python benchmarks/sandbox.py

Prints: the time of one sandboxed run against a bare `python -c pass` (the ratio, in one run);
the official tests of all 164 HumanEval problems on their canonical solutions (every one must
pass) and on a wrong answer (none may), with seconds per problem; and the time to choose among
four candidates by behaviour.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from moa.evals.humaneval import load_problems, score
from moa.sandbox import isolation, run_python
from moa.strategies.behaviour import select_by_behaviour


def timed(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    print(f"isolation here: {isolation()}")
    bare = timed(lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"]), 20)
    boxed = timed(lambda: run_python("pass"), 20)
    print(
        f"one run: sandboxed {1000 * boxed:.0f} ms, bare {1000 * bare:.0f} ms ({boxed / bare:.1f}x)"
    )

    problems = load_problems()
    start = time.perf_counter()
    right = [score(p, f"```python\n{p['prompt']}{p['canonical_solution']}```") for p in problems]
    per = (time.perf_counter() - start) / len(problems)
    wrong = [score(p, f"```python\n{p['prompt']}    return None\n```") for p in problems]
    print(
        f"HumanEval canonical solutions: {right.count('ok')}/{len(problems)} pass "
        f"({per:.2f} s a problem); 'return None': {wrong.count('ok')}/{len(problems)} pass"
    )

    chosen = 0
    start = time.perf_counter()
    for p in problems:
        good = f"```python\n{p['prompt']}{p['canonical_solution']}```"
        bad = f"```python\n{p['prompt']}    return None\n```"
        texts = [bad, good, bad.replace("None", "0"), good]
        chosen += select_by_behaviour(
            texts, prompt=p["prompt"], entry_point=p["entry_point"]
        ).index in (1, 3)
    per = (time.perf_counter() - start) / len(problems)
    print(
        f"behaviour selection, 2 right of 4 candidates: a right one chosen on {chosen}/"
        f"{len(problems)} problems ({per:.2f} s a problem)"
    )


if __name__ == "__main__":
    main()
