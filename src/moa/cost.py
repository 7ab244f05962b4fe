"""What a run cost: token prices per model, applied to a finished trace.

No price is built in: prices change and differ by account, so they come from the user, in a
recipe's `providers:` section or a prices file (YAML or JSON), in US dollars (or any one
currency) per million tokens:

    providers:
      openai:
        prices:
          gpt-4o: {input: 2.5, output: 10}

    # prices.yaml, for `--prices prices.yaml`: keyed by model reference
    openai:gpt-4o: {input: 2.5, output: 10}

`price_trace(trace, prices)` sets each call's `cost` (from the model that answered it) and
returns the run's total; the total is None when a call that used tokens has no price.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moa.errors import ConfigError
from moa.trace import Call, Trace

__all__ = ["Price", "Prices", "call_cost", "load_prices", "merge_prices", "price_trace"]


class Price(BaseModel):
    """The price of a model's tokens, per million."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)

    def of(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


Prices = Mapping[str, Price]
"""Prices by model reference (`provider:model`) or bare model name."""


def load_prices(path: str | Path) -> dict[str, Price]:
    """A prices file: `{ref: {input, output}}`, in YAML or JSON."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read prices: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of model to {{input, output}}")
    prices = {}
    for ref, value in data.items():
        try:
            prices[str(ref)] = Price.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"{path}: {ref}{'.' + where if where else ''}: {first['msg']}"
            ) from None
    return prices


class PricedProvider(Protocol):
    """A provider of a recipe's `providers:` section, as far as prices go."""

    @property
    def prices(self) -> Mapping[str, Price]: ...


def merge_prices(
    providers: Mapping[str, PricedProvider] | None = None, *more: Prices | None
) -> dict[str, Price]:
    """The prices of a recipe's `providers:` section (as `provider:model`), then of `more`
    (later wins)."""
    prices: dict[str, Price] = {}
    for name, spec in (providers or {}).items():
        for model, price in spec.prices.items():
            prices[f"{name}:{model}"] = price
    for extra in more:
        prices.update(extra or {})
    return prices


def _lookup(prices: Prices, ref: str) -> Price | None:
    if ref in prices:
        return prices[ref]
    return prices.get(ref.split(":", 1)[-1]) if ":" in ref else None


def call_cost(call: Call, prices: Prices) -> float | None:
    """A call's cost from the model that answered it (the last attempt's, after fallbacks);
    0 for a call that used no tokens, None when its model has no price."""
    if not call.input_tokens and not call.output_tokens:
        return 0.0
    ref = call.attempts[-1].model if call.attempts else call.model
    price = _lookup(prices, ref) or _lookup(prices, call.model)
    return None if price is None else price.of(call.input_tokens, call.output_tokens)


def price_trace(trace: Trace, prices: Prices) -> float | None:
    """Set every call's `cost`; return the total (None if any call's is unknown)."""
    for call in trace.calls:
        call.cost = call_cost(call, prices)
    return trace.totals().cost
