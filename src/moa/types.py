"""Messages, generation settings, tools and the results a backend returns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moa.errors import ConfigError

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What a tool's name may be (OpenAI's rule)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of a declared tool: its id (unique in its answer), the tool's name, and the
    arguments as a JSON object's text."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. An assistant turn may carry `tool_calls` (its content may then be empty); a
    `tool` turn answers the call whose id is `tool_call_id`."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's chat form (a plain turn is just role and content)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
            if not self.content:
                out["content"] = None
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name:
            out["name"] = self.name
        return out


def system(content: str) -> Message:
    return Message("system", content)


def user(content: str) -> Message:
    return Message("user", content)


def assistant(content: str) -> Message:
    return Message("assistant", content)


MessagesLike = str | Message | Mapping[str, Any] | Iterable[Message | Mapping[str, Any]]


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts: keep the text parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    if not isinstance(content, str):
        raise ConfigError(f"{where}.content: expected text, got {type(content).__name__}")
    return content


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    """An assistant turn's `tool_calls` in OpenAI's form (or ToolCall objects)."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}.tool_calls: expected a list")
    calls: list[ToolCall] = []
    for j, raw in enumerate(value):
        at = f"{where}.tool_calls[{j}]"
        if isinstance(raw, ToolCall):
            calls.append(raw)
            continue
        function = raw.get("function") if isinstance(raw, Mapping) else None
        if not isinstance(raw, Mapping) or not isinstance(function, Mapping):
            raise ConfigError(
                f"{at}: expected {{id, type: function, function: {{name, arguments}}}}"
            )
        cid, name, args = raw.get("id"), function.get("name"), function.get("arguments", "{}")
        if not isinstance(cid, str) or not cid:
            raise ConfigError(f"{at}.id: a tool call needs an id")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at}.function.name: a tool call needs a name")
        if not isinstance(args, str):
            raise ConfigError(f"{at}.function.arguments: expected a JSON text")
        calls.append(ToolCall(cid, name, args))
    return tuple(calls)


def _message(item: Mapping[str, Any], i: int) -> Message:
    where = f"messages[{i}]"
    role = item.get("role")
    if role == "developer":
        role = "system"
    if role not in ROLES:
        raise ConfigError(f"{where}.role: expected one of {ROLES}, got {role!r}")
    calls = _tool_calls(item.get("tool_calls"), where) if role == "assistant" else ()
    call_id = item.get("tool_call_id")
    if role == "tool" and (not isinstance(call_id, str) or not call_id):
        raise ConfigError(
            f"{where}.tool_call_id: a tool message needs the id of the call it answers"
        )
    content = item.get("content")
    if content is None and not calls and role != "tool":
        raise ConfigError(f"{where}.content: expected text, got None")
    name = item.get("name")
    return Message(
        role,
        _text(content, where),
        calls,
        call_id if role == "tool" else None,
        name if isinstance(name, str) and name else None,
    )


def check_pairs(messages: Sequence[Message]) -> None:
    """Every tool call's id is unique, and every tool result answers an earlier call of the
    conversation that no other result answered (results are paired by `tool_call_id`)."""
    open_ids: dict[str, int] = {}
    seen: set[str] = set()
    for i, m in enumerate(messages):
        for j, call in enumerate(m.tool_calls):
            if call.id in seen:
                raise ConfigError(
                    f"messages[{i}].tool_calls[{j}].id: {call.id!r} is used by another tool call"
                )
            seen.add(call.id)
            open_ids[call.id] = i
        if m.role == "tool":
            if m.tool_call_id not in open_ids:
                raise ConfigError(
                    f"messages[{i}].tool_call_id: {m.tool_call_id!r} answers no earlier tool "
                    "call of the conversation (or one already answered)"
                )
            del open_ids[m.tool_call_id]


def to_messages(value: MessagesLike) -> tuple[Message, ...]:
    """Accept a prompt string, one message, or a list of messages or OpenAI-style dicts
    (tool calls and tool results included; see `check_pairs`)."""
    if isinstance(value, str):
        return (Message("user", value),)
    if isinstance(value, Message):
        return (value,)
    items: Iterable[Message | Mapping[str, Any]]
    items = [value] if isinstance(value, Mapping) else value
    out: list[Message] = []
    for i, item in enumerate(items):
        out.append(item if isinstance(item, Message) else _message(item, i))
    if not out:
        raise ConfigError("messages: at least one message is needed")
    if out[-1].role == "assistant":
        raise ConfigError("messages: the last message must not be the assistant's")
    check_pairs(out)
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
class Tool:
    """A function the acting call may call: its name, what it does, and its arguments' JSON
    schema (an object)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    strict: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": dict(self.parameters)}
        if self.description:
            function["description"] = self.description
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFormat:
    """`json_object` (any JSON object) or `json_schema` (an answer valid against `schema`)."""

    type: Literal["json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.type == "json_object":
            return {"type": "json_object"}
        spec: dict[str, Any] = {"name": self.name, "schema": dict(self.schema or {})}
        if self.strict is not None:
            spec["strict"] = self.strict
        return {"type": "json_schema", "json_schema": spec}


@dataclass(frozen=True, slots=True, kw_only=True)
class Act:
    """What the acting call may do besides writing text: call `tools` (`tool_choice`: auto,
    none, required, or a declared tool's name), and answer in a `response_format`. Only the
    calls that act get it; references never do (`moa.tools.reference_view`)."""

    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None

    @property
    def calls_tools(self) -> bool:
        """Whether an answer may be tool calls."""
        return bool(self.tools) and self.tool_choice != "none"

    @property
    def held(self) -> bool:
        """Whether an answer must be checked before any of it is shown (no token streaming)."""
        return self.calls_tools or self.response_format is not None

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def without_tools(self) -> Act:
        """The same, but the answer must be text (a loop of calls stopped)."""
        return Act(tools=self.tools, tool_choice="none", response_format=self.response_format)

    def to_dict(self) -> dict[str, Any]:
        """The fields as OpenAI's request has them (only those that are set)."""
        out: dict[str, Any] = {}
        if self.tools:
            out["tools"] = [t.to_dict() for t in self.tools]
            choice = self.tool_choice
            named = {"type": "function", "function": {"name": choice}}
            out["tool_choice"] = choice if choice in ("auto", "none", "required") else named
            if self.parallel_tool_calls is not None:
                out["parallel_tool_calls"] = self.parallel_tool_calls
        if self.response_format is not None:
            out["response_format"] = self.response_format.to_dict()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One call to one model: what a backend receives."""

    model: str
    messages: Sequence[Message]
    settings: Settings = field(default_factory=Settings)
    timeout: float | None = None
    act: Act | None = None
    """Tools and a response format, for a call that acts; None for every other call."""


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
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    """A reasoning model's thinking, apart from the answer."""


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call; the pieces of one call share its `index`: the first
    brings its id and name, the others more of its arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    """A piece of a streamed answer. The last one of a stream carries usage and finish_reason."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    logprobs: tuple[float, ...] | None = None
    """The log-probabilities of this piece's tokens, when asked for and given."""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    reasoning: str = ""
