"""Do two versions of the engine give the same answers? A digest of every run, to compare.

Runs every built-in recipe and every recipe under benchmarks/recipes, each with the rows a
GSM8K report makes of it (alone, vote, ranker, the recipe, its Self-MoA twin), on the first N
GSM8K questions, on a deterministic fake backend whose answers depend on the whole request
(model, messages, seed, temperature): a change in what any agent is shown, or in which
calls are made, changes the digest.

    .venv/bin/python benchmarks/equivalence.py > new.txt
    PYTHONPATH=/old/src .venv/bin/python benchmarks/equivalence.py \
        --recipes /old/benchmarks/recipes > old.txt
    diff old.txt new.txt && echo same

`--style prose` and `--style code` make the fake answers prose or code, so that the rules for
those kinds (agreement, the first answer, behaviour in the sandbox) run too.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moa import FakeBackend, MoA
from moa.evals.gsm8k import load_problems, variants_for
from moa.recipe import builtin_names, load_recipe

HERE = Path(__file__).parent


STYLES = ("number", "prose", "code")
"""What the fake answers look like, so each kind of answer (and its final rule) is exercised."""


def answerer(style: str) -> Callable[[Any], str]:
    def answer(request: Any) -> str:
        s = request.settings
        text = json.dumps(
            [request.model, [(m.role, m.content) for m in request.messages], s.seed, s.temperature]
        )
        h = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        if style == "prose":
            return f"Comparing them, the {'best' if h % 2 else 'first'} is right; seen {h % 7}."
        if style == "code":
            return f"```python\ndef f(x):\n    return x + {h % 3}\n```"
        return f"Comparing them, {h % 3 + 1} is best (seen {h % 10**8}).\nAnswer: {h % 4 + 10}"

    return answer


async def digest(name: str, recipe: Any, question: str, style: str) -> str:
    fake = FakeBackend(default=answerer(style))
    async with MoA(recipe, backends={"fake": fake}) as moa:
        try:
            result = await moa.arun(question)
        except Exception as exc:
            return f"{name}: error {type(exc).__name__}: {exc}"
    calls = [(c.layer, c.index, c.role, c.model, c.text, c.error_type) for c in result.trace.calls]
    record = [result.text, result.trace.outcome, result.trace.notes, sorted(calls, key=str)]
    return f"{name}: {hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]} {result.text!r}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--style", choices=STYLES, default="number", help="the fake answers")
    parser.add_argument(
        "--recipes", type=Path, default=HERE / "recipes", help="the benchmark recipes' folder"
    )
    args = parser.parse_args()
    recipes = [load_recipe(n) for n in builtin_names()]
    recipes += [load_recipe(str(p)) for p in sorted(args.recipes.glob("*.yaml"))]
    questions = [item["question"] for item in load_problems(limit=args.questions)]
    for recipe in recipes:
        dry = recipe.dry_run()
        for variant in variants_for(dry):
            for i, question in enumerate(questions):
                name = f"{recipe.name} / {variant.name} / q{i}"
                print(await digest(name, variant.recipe, question, args.style))


if __name__ == "__main__":
    asyncio.run(main())
