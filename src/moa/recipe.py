"""Recipes: which agents sit in which layer, who aggregates, and the rules of the run.

The simplest recipe file stays this simple:

    layers:
      - [together:meta-llama/Llama-3.3-70B-Instruct-Turbo, together:deepseek-ai/DeepSeek-V3]
    aggregator: together:Qwen/Qwen2.5-72B-Instruct-Turbo

An agent may instead be a mapping (`{model: ..., temperature: 0.7}`), a layer a mapping
(`{agents: [...], quorum: 2}`). `layers: []` is the aggregator alone.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)

from moa.agent import Agent
from moa.cost import Price
from moa.errors import RecipeError
from moa.providers import Provider, custom_providers
from moa.strategies.config import Strategy
from moa.types import Settings

AGGREGATE_PROMPT = (
    "You have been provided with a set of responses from various open-source models to the "
    "latest user query. Your task is to synthesize these responses into a single, high-quality "
    "response. It is crucial to critically evaluate the information provided in these "
    "responses, recognizing that some of it may be biased or incorrect. Your response should "
    "not simply replicate the given answers but should offer a refined, accurate, and "
    "comprehensive reply to the instruction. Ensure your response is well-structured, coherent, "
    "and adheres to the highest standards of accuracy and reliability.\n\n"
    "Responses from models:"
)
"""The paper's Aggregate-and-Synthesize prompt (Table 1); the answers follow it, numbered."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Layer(_Strict):
    """Agents that answer concurrently. The layer succeeds once `quorum` of them answered;
    `grace` seconds after that, stragglers are cancelled (None: wait for all)."""

    agents: tuple[Agent, ...] = Field(min_length=1)
    quorum: int | None = Field(default=None, ge=1)
    grace: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple, str)):
            return {"agents": [data] if isinstance(data, str) else data}
        return data

    @model_validator(mode="after")
    def _quorum_fits(self) -> Layer:
        if self.quorum is not None and self.quorum > self.size:
            raise ValueError(f"quorum {self.quorum} is more than the layer's {self.size} agents")
        return self

    @property
    def size(self) -> int:
        return sum(a.n for a in self.agents)


class Retry(_Strict):
    """Retries of one call: exponential backoff with jitter, honouring Retry-After."""

    attempts: int = Field(default=3, ge=1, le=20)
    backoff: float = Field(default=0.5, ge=0)
    max_backoff: float = Field(default=20.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    max_retry_after: float = Field(default=60.0, ge=0)


class ProviderSpec(_Strict):
    """A provider added by configuration, or limits for an existing one.

    The key of a built-in provider (OPENAI_API_KEY, ...) is only ever sent to that provider's
    own URL; `send_key_to_base_url: true` says that this recipe means to send it to another
    URL (its `base_url`, or an `@URL` in a model reference), such as a proxy you trust."""

    base_url: str | None = None
    api_key_env: str | None = None
    key_required: bool | None = None
    send_key_to_base_url: bool = False
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    context_windows: dict[str, int] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    """Per model (as named at this provider): price per million input and output tokens."""


class ToolTurns(_Strict):
    """How a recipe runs an agent's tool loop (docs/tools.md).

    `references`: on a request that continues a tool loop (the conversation ends in tool
    results), `per_turn` reuses the advice the references gave for this user turn (run once
    per user turn, as Hermes Agent does), `per_request` runs them again with the results
    shown. Agents that act (the last layer under a choosing final rule) run on every request.
    `repeat_limit`: after this many rounds in a row of the same calls, the final call
    answers without tools (the trace says so)."""

    references: Literal["per_turn", "per_request"] = "per_turn"
    repeat_limit: int = Field(default=3, ge=1)


class Recipe(_Strict):
    """A whole MoA configuration. Validated on construction; see `load_recipe`."""

    name: str = "custom"
    description: str = ""
    layers: tuple[Layer, ...] = ()
    aggregator: Agent
    prompt: str = AGGREGATE_PROMPT
    proposer_defaults: Settings = Field(default_factory=lambda: Settings(temperature=0.7))
    aggregator_defaults: Settings = Field(default_factory=Settings)
    timeout: float | None = Field(default=300.0, gt=0)
    deadline: float | None = Field(default=None, gt=0)
    retry: Retry = Field(default_factory=Retry)
    on_aggregator_failure: Literal["error", "best_proposal"] = "error"
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    strategy: Strategy = Field(default_factory=Strategy)
    tools: ToolTurns = Field(default_factory=ToolTurns)

    @model_validator(mode="wrap")
    @classmethod
    def _providers_first(cls, data: Any, handler: ModelWrapValidatorHandler[Recipe]) -> Recipe:
        """Custom providers are known while this recipe's model references are checked, and
        only then: a reference to `mine:` elsewhere is still an unknown provider."""
        names = data.get("providers") if isinstance(data, Mapping) else None
        known = {str(k): Provider(name=str(k)) for k in names} if isinstance(names, Mapping) else {}
        token = custom_providers.set(known)
        try:
            return handler(data)
        finally:
            custom_providers.reset(token)

    @field_validator("strategy", mode="before")
    @classmethod
    def _no_strategy(cls, value: Any) -> Any:
        return {} if value is None else value

    def defaults(self, role: Literal["proposer", "aggregator"]) -> Settings:
        return self.proposer_defaults if role == "proposer" else self.aggregator_defaults

    def dry_run(self) -> Recipe:
        """The same recipe with every model (judges included) replaced by a fake one that spends
        no tokens."""

        def fake(agent: Agent) -> dict[str, Any]:
            data = agent.model_dump(exclude_defaults=True)
            data["model"] = "fake:" + agent.model
            data["fallbacks"] = ["fake:" + f for f in agent.fallbacks]
            return data

        data = self.model_dump(exclude_defaults=True)
        data["layers"] = [
            {**layer.model_dump(exclude_defaults=True), "agents": [fake(a) for a in layer.agents]}
            for layer in self.layers
        ]
        data["aggregator"] = fake(self.aggregator)
        data["strategy"] = self.strategy.with_judges(lambda ref: "fake:" + ref)
        return Recipe.model_validate(data)


# loading ------------------------------------------------------------------------------------
SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def builtin_names() -> list[str]:
    folder = resources.files("moa") / "recipes"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _parse(text: str, source: str, suffix: str) -> Any:
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError) as exc:  # JSON's included
        raise RecipeError(f"not valid {suffix.lstrip('.').upper()}: {exc}", source=source) from None
    except RecursionError:
        raise RecipeError("nested too deeply to be a recipe", source=source) from None


def _yaml_line(text: str, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, where it can be found."""
    try:
        node: Any = yaml.compose(text)
    except (yaml.YAMLError, RecursionError):
        return None
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode):
            if key == "agents":  # the shorthand layer: a plain list of agents
                continue
            node = node.value[key] if isinstance(key, int) and key < len(node.value) else None
        elif key == "model":  # the shorthand agent: a plain string
            continue
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _first_error(exc: ValidationError, source: str, text: str | None) -> RecipeError:
    err = exc.errors(include_url=False)[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    field = ".".join(str(p) for p in loc) or "recipe"
    problem = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        problem = "this field is required"
    elif err["type"] == "extra_forbidden":
        problem = "unknown field"
    elif "input" in err and not isinstance(err["input"], (dict, list)):
        problem += f" (got {err['input']!r})"
    if text is not None and (line := _yaml_line(text, loc)) is not None:
        problem += f" [line {line}]"
    more = exc.error_count() - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return RecipeError(problem, source=source, field=field)


def recipe_from_dict(data: Any, *, source: str = "<dict>", text: str | None = None) -> Recipe:
    if not isinstance(data, Mapping):
        raise RecipeError(
            "a recipe must be a mapping with 'layers' and 'aggregator'", source=source
        )
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, source, text) from None
    if "name" not in data and source not in ("<dict>", "<recipe>"):
        recipe = recipe.model_copy(update={"name": Path(source).stem})
    return recipe


def load_recipe(source: str | Path | Mapping[str, Any] | Recipe) -> Recipe:
    """A recipe from a built-in name, a YAML/TOML/JSON file, a mapping, or a Recipe."""
    if isinstance(source, Recipe):
        return source
    if isinstance(source, Mapping):
        return recipe_from_dict(source)
    text_source = str(source)
    path = Path(text_source).expanduser()
    if isinstance(source, str) and source in builtin_names() and not path.exists():
        resource = resources.files("moa") / "recipes" / f"{source}.yaml"
        text = resource.read_text(encoding="utf-8")
        return recipe_from_dict(_parse(text, source, ".yaml"), source=f"{source}.yaml", text=text)
    if not path.is_file():
        names = ", ".join(builtin_names())
        raise RecipeError(
            f"no built-in recipe and no file by this name (built-in: {names})", source=text_source
        )
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise RecipeError(
            f"unknown recipe format {suffix!r}; use {', '.join(SUFFIXES)}", source=text_source
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read: {exc}", source=text_source) from None
    data = _parse(text, text_source, suffix)
    return recipe_from_dict(data, source=text_source, text=text if suffix != ".json" else None)


__all__ = [
    "AGGREGATE_PROMPT",
    "Agent",
    "Layer",
    "ProviderSpec",
    "Recipe",
    "Retry",
    "builtin_names",
    "load_recipe",
    "recipe_from_dict",
]
