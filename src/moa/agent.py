"""An agent: one LLM with its sampling settings, its own system prompt, fallbacks and limits."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from moa.providers import check_ref
from moa.types import SETTINGS, Settings

__all__ = ["Agent"]


class Agent(Settings):
    """One LLM with its settings (the fields of `Settings`). `n` > 1 makes n samples of it
    (distinct seeds)."""

    model: str
    name: str | None = None
    system: str | None = None
    fallbacks: tuple[str, ...] = ()
    timeout: float | None = Field(default=None, gt=0)
    context_window: int | None = Field(default=None, gt=0)
    n: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"model": data} if isinstance(data, str) else data

    @field_validator("model", "fallbacks")
    @classmethod
    def _valid_ref(cls, value: Any) -> Any:
        for ref in (value,) if isinstance(value, str) else value:
            check_ref(ref)
        return value

    @property
    def label(self) -> str:
        return self.name or self.model

    def settings(self) -> Settings:
        return Settings.model_construct(**{k: getattr(self, k) for k in SETTINGS})

    def with_defaults(self, defaults: Settings) -> Agent:
        """Fill the settings this agent leaves open from `defaults`."""
        merged = defaults.merged(self.settings())
        return self.model_copy(update=merged.to_dict())
