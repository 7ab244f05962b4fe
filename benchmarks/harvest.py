"""A recipe's answers to a benchmark's items, kept with their traces, through the evaluation
harness (response cache on, resumable), without scoring them: the material that the post-hoc
chooser (`benchmarks/choose_local.py`) scores every rule on. With the harvest recipe
(benchmarks/recipes/local-harvest.yaml: local's four answers, each decoded to its end, with
log-probabilities), a later run of `local` on the same items is answered from the cache.

    nice -n 10 .venv/bin/python benchmarks/harvest.py ifeval --split dev --limit 50 \
        -r benchmarks/recipes/local-harvest.yaml --out benchmarks/results/ifeval-dev

The results land where `moa eval` puts its own (`OUT/runs/<recipe>-<key>.jsonl`), one line an
item; each item is put to the recipe as the benchmark puts it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moa.evals.harness import Harness, answer_fields
from moa.evals.registry import benchmark_class
from moa.evals.runner import load_items
from moa.evals.variants import Variant
from moa.recipe import load_recipe


async def harvest(args: argparse.Namespace) -> None:
    bench = benchmark_class(args.bench)()
    items = load_items(bench, split=args.split, limit=args.limit, offset=args.offset).items
    recipe = load_recipe(args.recipe)
    h = Harness(out_dir=args.out, concurrency=args.concurrency, progress=False)

    async def work(moa: Any, item: dict[str, Any]) -> dict[str, Any]:
        result, cost, wall = await h.answer(moa, bench.prompt(item), **bench.request(item))
        return answer_fields(result, cost, wall)

    try:
        records, summary = await h.run(Variant(recipe.name, recipe, "recipe"), items, work)
    finally:
        await h.aclose()
    print(f"{len(records)} of {len(items)} answered ({summary.failed} failed) -> {args.out}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", help="a registered benchmark: gsm8k, humaneval, ifeval, ...")
    parser.add_argument("-r", "--recipe", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default=None, help="dev, held-out (default: the first)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    asyncio.run(harvest(args))


if __name__ == "__main__":
    sys.exit(main())
