"""The rows a recipe brings to a report: each proposer of its first layer alone, a majority vote
of those proposals, the LLM ranker over them, the recipe itself and its Self-MoA twin (as many
samples of its aggregator model as it has proposers, aggregated the same way). With the
response cache, the proposals are generated once and every row reuses them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moa.plan import compile_recipe
from moa.recipe import Agent, Layer, Recipe
from moa.strategies import Strategy
from moa.strategies.finals.rank import Rank
from moa.strategies.finals.vote import Vote
from moa.types import Settings

__all__ = [
    "ORDER",
    "RecipeLike",
    "Variant",
    "agent_label",
    "dedupe",
    "proposers",
    "recipe_key",
    "single",
    "slug",
    "variants_for",
]

RecipeLike = str | Path | Recipe | Mapping[str, Any]
"""What `moa.recipe.load_recipe` accepts: a built-in name, a file, a mapping, a Recipe."""

ORDER = ("alone", "vote", "rank", "recipe", "self", "select")
"""The kinds of row, in the order a report lists them; `select` is chosen after the fact among
the `alone` rows' answers (`moa.evals.posthoc`)."""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:60] or "run"


def recipe_key(recipe: Recipe) -> str:
    """A short hash of what a recipe does (name and description aside). Settings left at their
    defaults are not part of it, so a new setting does not orphan results made before it."""
    data = recipe.model_dump(mode="json", exclude={"name", "description"}, exclude_defaults=True)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Variant:
    """One row of a report: a recipe under a name, and what kind of baseline it is."""

    name: str
    recipe: Recipe
    kind: str = "recipe"

    @property
    def key(self) -> str:
        return recipe_key(self.recipe)

    @property
    def file(self) -> str:
        return f"{slug(self.name)}-{self.key}.jsonl"


def agent_label(agent: Agent) -> str:
    """'model (T=0.7, seed 1)': enough to tell two samples of a model apart."""
    bits = []
    if agent.temperature is not None:
        bits.append(f"T={agent.temperature:g}")
    if agent.seed is not None:
        bits.append(f"seed {agent.seed}")
    named = agent.name is not None and not agent.name.startswith(agent.model)  # not "model#2"
    name = agent.name if named and agent.name else agent.model.split(":", 1)[-1]
    return f"{name} ({', '.join(bits)})" if bits else name


def proposers(recipe: Recipe, layer: int = 0) -> list[Agent]:
    """The agents of a layer as the engine runs them: samples unrolled, defaults filled."""
    layers = compile_recipe(recipe).layers
    return list(layers[layer].agents) if layers else []


def single(recipe: Recipe, agent: Agent, name: str) -> Recipe:
    """`agent` alone (no layers), with every other rule of `recipe`."""
    solo = agent.model_copy(update={"name": None, "n": 1})
    return recipe.model_copy(
        update={
            "name": name,
            "layers": (),
            "aggregator": solo,
            "aggregator_defaults": Settings(),
            "strategy": Strategy(),
        }
    )


def _twin(recipe: Recipe) -> Recipe | None:
    """R's Self-MoA twin: n samples of R's aggregator model, or None if R already is one."""
    first = proposers(recipe)
    agg = recipe.aggregator
    if not first or all(a.model == agg.model for a in first):
        return None
    template = first[0]
    sample = Agent(
        model=agg.model,
        n=len(first),
        temperature=template.temperature if template.temperature else 0.7,
        max_tokens=template.max_tokens,
        seed=template.seed if template.seed is not None else 0,
        system=template.system,
    )
    return recipe.model_copy(
        update={"name": f"{recipe.name}: Self-MoA twin", "layers": (Layer(agents=(sample,)),)}
    )


def variants_for(recipe: Recipe, kinds: Sequence[str] = ORDER) -> list[Variant]:
    """The rows of `kinds` that a recipe brings to a report (see the module docstring)."""
    out: list[Variant] = []
    first = proposers(recipe)
    base = recipe.model_copy(update={"layers": recipe.layers[:1]})
    if "alone" in kinds:
        agents = first or [compile_recipe(recipe).aggregator]
        for agent in agents:
            label = f"{agent_label(agent)} alone"
            out.append(Variant(label, single(recipe, agent, label), "alone"))
    if "vote" in kinds and len(first) > 1:
        strategy = Strategy(final=Vote(), answer=recipe.strategy.answer)
        name = f"{recipe.name}: majority vote"
        out.append(
            Variant(name, base.model_copy(update={"name": name, "strategy": strategy}), "vote")
        )
    if "rank" in kinds and len(first) > 1:
        judge = next(iter(recipe.strategy.final.judges()), None)
        strategy = Strategy(final=Rank(judge=judge))
        name = f"{recipe.name}: LLM ranker"
        out.append(
            Variant(name, base.model_copy(update={"name": name, "strategy": strategy}), "rank")
        )
    if "recipe" in kinds:
        out.append(Variant(recipe.name, recipe, "recipe"))
    if "self" in kinds and (twin := _twin(recipe)) is not None:
        out.append(Variant(twin.name, twin, "self"))
    return out


def dedupe(variants: Sequence[Variant]) -> list[Variant]:
    """One row per distinct recipe (the first name wins)."""
    seen: set[str] = set()
    out = []
    for v in variants:
        if v.key not in seen:
            seen.add(v.key)
            out.append(v)
    return out
