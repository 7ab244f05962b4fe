"""Messages, generation settings and the results a backend returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Sampling settings for one call. None means the backend's default."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    def merged(self, other: Settings) -> Settings:
        """These settings, with every field that `other` sets taking its value."""
        changes = {k: v for k, v in asdict(other).items() if v is not None}
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def params(self) -> dict[str, Any]:
        """The fields that are set, as OpenAI-style keyword arguments (`stop` as a list)."""
        params = self.to_dict()
        if self.stop:
            params["stop"] = list(self.stop)
        else:
            params.pop("stop", None)
        return params


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
