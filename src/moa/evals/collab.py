"""Collaborativeness (the paper's Figure 1) on your own models, scored on GSM8K.

For each model M: M alone, and M given the answers of the other models (M aggregating them,
with the recipe's prompt). The paper found every model improved with the others' answers,
even weaker ones; this measures whether yours do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moa.errors import ConfigError
from moa.evals.gsm8k import GSM8K, load_problems
from moa.evals.harness import Harness
from moa.evals.report import Report, write_report
from moa.evals.runner import scored_row
from moa.evals.variants import RecipeLike, Variant, proposers
from moa.recipe import Agent, Layer, Recipe, load_recipe

__all__ = ["evaluate", "variants_for"]


def variants_for(recipe: Recipe, models: Sequence[str] = ()) -> list[tuple[str, Variant, Variant]]:
    """(model, alone, with the others' answers) for each model of the recipe's first layer,
    or for `models` (then proposing with the recipe's proposer settings)."""
    defaults = recipe.defaults("proposer")
    if models:
        agents = [Agent(model=m).with_defaults(defaults) for m in models]
    else:
        agents = list({a.model: a for a in reversed(proposers(recipe))}.values())[::-1]
    judge_settings = recipe.defaults("aggregator")
    out = []
    for agent in agents:
        others = [a for a in agents if a.model != agent.model]
        if not others:
            continue
        own = Agent(model=agent.model, system=agent.system).with_defaults(judge_settings)
        name = agent.model.split(":", 1)[-1]
        alone = recipe.model_copy(update={"name": f"{name} alone", "layers": (), "aggregator": own})
        helped = recipe.model_copy(
            update={
                "name": f"{name} with the others' answers",
                "layers": (Layer(agents=tuple(others)),),
                "aggregator": own,
            }
        )
        out.append(
            (name, Variant(alone.name, alone, "alone"), Variant(helped.name, helped, "recipe"))
        )
    return out


async def evaluate(
    recipe: RecipeLike,
    harness: Harness,
    *,
    models: Sequence[str] = (),
    data: str | Path | None = None,
    limit: int | None = 50,
    offset: int = 0,
    prompt: str = "answer-line",
) -> Report:
    loaded = load_recipe(recipe)
    variants = variants_for(loaded, models)
    if not variants:
        compared = sorted(set(models)) or sorted({a.model for a in proposers(loaded)})
        source = "--model" if models else f"the first layer of recipe {loaded.name!r}"
        raise ConfigError(
            f"collaborativeness compares two or more models, and {source} has "
            f"{len(compared)}{': ' if compared else ''}{', '.join(compared)}; give several "
            "with --model, or a recipe whose first layer has several (e.g. moa-local)"
        )
    bench = GSM8K(prompt_style=prompt)
    bench.check()
    problems = load_problems(data, limit=limit, offset=offset)
    rows: list[dict[str, Any]] = []
    for name, alone, helped in variants:
        a = await scored_row(harness, bench, alone, problems)
        h = await scored_row(harness, bench, helped, problems)
        rows.append(
            {
                "name": name,
                "kind": "collab",
                "n": len(problems),
                "alone": a["accuracy"],
                "alone_ci": [a["ci_low"], a["ci_high"]],
                "with_others": h["accuracy"],
                "with_others_ci": [h["ci_low"], h["ci_high"]],
                "alone_tokens": a["tokens"],
                "with_others_tokens": h["tokens"],
                "files": [a["file"], h["file"]],
            }
        )
        harness.log(f"{name}: alone {a['accuracy']:.1%}, with the others {h['accuracy']:.1%}")
    meta = {"benchmark": "collaborativeness on gsm8k", "problems": len(problems), "offset": offset}
    title = (
        f"Collaborativeness on GSM8K ({len(problems)} problems): "
        "each model alone vs given the others' answers"
    )
    return write_report(harness.out_dir, Report(title=title, rows=rows, meta=meta, kind="collab"))
