"""Messages, generation settings and the results a backend returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moa.errors import ConfigError

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def system(content: str) -> Message:
    return Message("system", content)


def user(content: str) -> Message:
    return Message("user", content)


def assistant(content: str) -> Message:
    return Message("assistant", content)


MessagesLike = str | Message | Mapping[str, Any] | Iterable[Message | Mapping[str, Any]]


def to_messages(value: MessagesLike) -> tuple[Message, ...]:
    """Accept a prompt string, one message, or a list of messages or OpenAI-style dicts."""
    if isinstance(value, str):
        return (Message("user", value),)
    if isinstance(value, Message):
        return (value,)
    items: Iterable[Message | Mapping[str, Any]]
    items = [value] if isinstance(value, Mapping) else value
    out: list[Message] = []
    for i, item in enumerate(items):
        if isinstance(item, Message):
            out.append(item)
            continue
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise ConfigError(f"messages[{i}].role: expected one of {ROLES}, got {role!r}")
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        if not isinstance(content, str):
            raise ConfigError(f"messages[{i}].content: expected text, got {type(content).__name__}")
        out.append(Message(role, content))
    if not out:
        raise ConfigError("messages: at least one message is needed")
    if out[-1].role == "assistant":
        raise ConfigError("messages: the last message must not be the assistant's")
    return tuple(out)


class Settings(BaseModel):
    """Sampling settings for one call, defined once: recipes, agents, the CLI and the server all
    validate through these fields. None means "not set" (the backend's default).

    One merge rule, `Settings.merge(a, b, ...)`: each field from the last that sets it. In a
    run an agent's own settings win over the recipe's defaults for its role; a request's
    settings (`MoA.arun(..., temperature=...)`, the server's fields) reach only the
    aggregator, and only the fields its recipe does not pin: what the recipe's author pinned
    wins (`moa.plan.Plan.aggregator_with`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    logprobs: bool | None = None
    """Ask for the generated tokens' log-probabilities (confidence-weighted votes)."""

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value or None  # [] is "no stop"

    @classmethod
    def merge(cls, *layers: Settings | None) -> Settings:
        """The settings of `layers` in order, each field taken from the last layer that sets it."""
        merged: dict[str, Any] = {}
        for layer in layers:
            if layer is not None:
                merged.update(layer.to_dict())
        return cls.model_construct(**merged)

    def merged(self, other: Settings) -> Settings:
        """These settings, with every field that `other` sets taking its value."""
        return Settings.merge(self, other)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SETTINGS if getattr(self, k) is not None}

    def params(self) -> dict[str, Any]:
        """The fields that are set, as OpenAI-style keyword arguments (`stop` as a list)."""
        params = self.to_dict()
        if self.stop:
            params["stop"] = list(self.stop)
        return params


SETTINGS: tuple[str, ...] = tuple(Settings.model_fields)
"""The names of the sampling settings."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One call to one model: what a backend receives."""

    model: str
    messages: Sequence[Message]
    settings: Settings = field(default_factory=Settings)
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    """The log-probability of each generated token, when asked for and given."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    """A piece of a streamed answer. The last one of a stream carries usage and finish_reason."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    """The log-probabilities of this piece's tokens, when asked for and given."""
