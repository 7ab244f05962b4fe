"""Time a short question through recipes, without the response cache (models loaded first).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/latency.py local benchmarks/recipes/mix.yaml

Run it when nothing else uses the CPU: it measures what a user waits for on this machine.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from moa.engine import MoA

QUESTION = "What is 17 * 23? Answer briefly."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    for recipe in args.recipes:
        with MoA.from_recipe(recipe) as moa:
            moa.prepare()
            moa.run("Say hi.", max_tokens=4)  # loads every model once
            for _ in range(args.repeat):
                start = time.monotonic()
                result = moa.run(args.question)
                took = time.monotonic() - start
                totals = result.trace.totals()
                text = " ".join(result.text.split())[:80]
                print(
                    f"{recipe}: {took:.1f} s, {totals.calls} calls, "
                    f"{totals.input_tokens}+{totals.output_tokens} tokens: {text!r}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
