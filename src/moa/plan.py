"""A recipe compiled once into what a run needs: a pure step, no I/O, no process state.

    plan = compile_recipe(recipe)
    plan.layers[0].agents    # samples unrolled (distinct seeds), proposer defaults filled
    plan.aggregator          # aggregator defaults filled
    plan.models              # every model a run may call: agents, fallbacks, judges
    plan.providers           # providers the recipe adds or changes
    plan.limits              # rate and concurrency limits the recipe sets, per provider

The engine, the evaluation runner, `--dry-run` and the server all read the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moa.agent import Agent
from moa.cost import Price, merge_prices
from moa.limits import LimitSpec
from moa.providers import Provider
from moa.recipe import Layer, Recipe, load_recipe
from moa.strategies import Step, build
from moa.types import Settings

__all__ = ["LayerPlan", "Plan", "compile_recipe", "expand"]


@dataclass(frozen=True)
class LayerPlan:
    """One layer as it runs: its agents, and when it may go on without stragglers."""

    number: int
    agents: tuple[Agent, ...]
    quorum: int
    grace: float | None
    start: int | None = None
    """How many agents start at once; the others start only if the strategy has not decided
    the outcome when those have finished (decide_early's `start`). None: all of them."""
    tool_start: int | None = None
    """The same for a run whose request gives tools (the final rule's `tool_start`)."""


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    layers: tuple[LayerPlan, ...]
    aggregator: Agent
    models: tuple[str, ...]
    providers: Mapping[str, Provider]
    limits: Mapping[str, LimitSpec]
    prices: Mapping[str, Price]
    """Token prices from the recipe's `providers:` section (moa.cost)."""
    strategy: Step

    def aggregator_with(self, overrides: Settings) -> Agent:
        """The aggregator with a request's settings, except those the recipe pins."""
        pinned = self.recipe.aggregator.settings().to_dict()
        free = {k: v for k, v in overrides.to_dict().items() if k not in pinned}
        return self.aggregator.model_copy(update=free) if free else self.aggregator


def expand(layer: Layer, defaults: Settings) -> tuple[Agent, ...]:
    """The layer's agents with every `n` unrolled into samples that differ by seed (seed, seed+1,
    ...; from 0 when unset), named `label#1`, `label#2`..., and `defaults` filled in."""
    out: list[Agent] = []
    for agent in layer.agents:
        if agent.n == 1:
            out.append(agent)
            continue
        base = agent.seed if agent.seed is not None else 0
        for i in range(agent.n):
            update = {"n": 1, "seed": base + i, "name": f"{agent.label}#{i + 1}"}
            out.append(agent.model_copy(update=update))
    return tuple(a.with_defaults(defaults) for a in out)


def _provider(name: str, recipe: Recipe) -> Provider | None:
    spec = recipe.providers[name]
    if not (spec.base_url or spec.api_key_env or spec.context_windows or spec.send_key_to_base_url):
        return None
    required = bool(spec.api_key_env) if spec.key_required is None else spec.key_required
    return Provider(
        name=name,
        base_url=spec.base_url,
        api_key_env=spec.api_key_env,
        key_required=required,
        context_windows=spec.context_windows,
        send_key_to_base_url=spec.send_key_to_base_url,
    )


def compile_recipe(source: Plan | Recipe | str | Path | Mapping[str, Any]) -> Plan:
    """The plan of a recipe (a Recipe, a built-in name, a file path or a mapping); a plan is
    its own."""
    if isinstance(source, Plan):
        return source
    recipe = load_recipe(source)
    proposer = recipe.defaults("proposer")
    layers = tuple(
        LayerPlan(number, agents, layer.quorum or 1, layer.grace)
        for number, layer in enumerate(recipe.layers, 1)
        for agents in (expand(layer, proposer),)
    )
    aggregator = recipe.aggregator.with_defaults(recipe.defaults("aggregator"))
    strategy = recipe.strategy
    final = strategy.final
    if layers and (final.logprobs or final.start is not None or final.tool_start is not None):
        last = layers[-1]
        asked = last.agents
        if final.logprobs:  # the votes need each answer's logprobs
            asked = tuple(a.with_defaults(Settings(logprobs=True)) for a in asked)
        started = replace(last, agents=asked, start=final.start, tool_start=final.tool_start)
        layers = (*layers[:-1], started)
    judges = [Agent(model=ref) for ref in strategy.judges()]
    called = [*(a for layer in layers for a in layer.agents), aggregator, *judges]
    models = tuple(dict.fromkeys(ref for a in called for ref in (a.model, *a.fallbacks)))
    providers = {name: p for name in recipe.providers if (p := _provider(name, recipe))}
    limits = {
        name: LimitSpec(rpm=spec.rpm, tpm=spec.tpm, concurrency=spec.concurrency)
        for name, spec in recipe.providers.items()
        if spec.rpm or spec.tpm or spec.concurrency
    }
    return Plan(
        recipe=recipe,
        layers=layers,
        aggregator=aggregator,
        models=models,
        providers=providers,
        limits=limits,
        prices=merge_prices(recipe.providers),
        strategy=build(strategy),
    )
