"""The OpenAI wire format: the chat request we accept, and how anything is encoded.

temperature, max_tokens, top_p, seed and stop apply to the aggregator unless the recipe pins
them; they are validated by `moa.types.Settings`, as everywhere else. `tools`, `tool_choice`,
`parallel_tool_calls` and `response_format` go to the call that acts (`moa.tools.make_act`
checks them: at most MAX_TOOLS tools, MAX_TOOLS_BYTES of them, schemas that can be read).
Messages may be tool calls and tool results, paired by id (`moa.types.to_messages`). Fields a
recipe cannot honour in another way (penalties, user, ...) are accepted and ignored; n > 1,
the legacy `functions`, and non-text content are refused, naming the field. A body must be
strict JSON (no NaN), nested at most MAX_DEPTH deep, and valid Unicode (no lone surrogate).

Whatever leaves the server goes through `dumps`: URLs outside answer texts lose their
credentials (`moa.redact.redact_data`), and text that is not valid Unicode is replaced, not a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from moa.errors import ConfigError
from moa.redact import redact_data
from moa.server.errors import ApiError, invalid
from moa.tools import make_act
from moa.types import Act, Message, Settings, to_messages

MAX_DEPTH = 64
"""The deepest nesting of a request body: a chat request needs about six levels."""
MAX_TOOLS_BYTES = 256 * 1024
"""The most JSON that a request's tools and response format may take together."""
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Open):
    type: Literal["text"]
    text: str


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class MoAOptions(_Closed):
    """Our extension: `"moa": {"include_trace": true, "events": true}`."""

    include_trace: bool = False
    events: bool = False


class ChatRequest(_Open):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    moa: MoAOptions | None = None
    _sampling: Settings = PrivateAttr(default_factory=Settings)
    _act: Act | None = PrivateAttr(default=None)
    _messages: tuple[Message, ...] = PrivateAttr(default=())

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only n=1 is supported: a recipe gives one answer per run")
        return value

    @field_validator("functions", "function_call")
    @classmethod
    def _no_functions(cls, value: Any) -> Any:
        if value:
            raise ValueError("the legacy function calling is not supported: use tools")
        return value

    @field_validator("messages")
    @classmethod
    def _ends_with_a_question(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if value and value[-1].role == "assistant":
            raise ValueError("the last message must not be the assistant's")
        return value

    @property
    def options(self) -> MoAOptions:
        return self.moa or MoAOptions()

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def answer_tokens(self) -> int | None:
        return self.max_tokens if self.max_completion_tokens is None else self.max_completion_tokens

    def conversation(self) -> list[Message]:
        return list(self._messages)

    @property
    def act(self) -> Act | None:
        return self._act

    def check_tools(self) -> None:
        """The messages (tool turns paired by id) and the act, checked, or 400 naming the
        field."""
        try:
            self._messages = to_messages([m.model_dump(exclude_none=True) for m in self.messages])
        except ConfigError as exc:
            raise invalid(str(exc), param=str(exc).partition(":")[0]) from None
        given = {
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            "response_format": self.response_format,
        }
        self._act = checked_act(given)

    def check_settings(self) -> None:
        """Validate the sampling fields through `Settings` (the one validation), or 400."""
        fields = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop")
        for name in fields:
            value = getattr(self, name)
            if value is None:
                continue
            setting = "max_tokens" if name == "max_completion_tokens" else name
            try:
                Settings.model_validate({setting: value})
            except ValidationError as exc:
                problem = exc.errors(include_url=False)[0]["msg"]
                raise invalid(f"{name}: {problem}", param=name) from None
        values = {
            "temperature": self.temperature,
            "max_tokens": self.answer_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop,
        }
        self._sampling = Settings.model_validate(values)

    def settings(self) -> dict[str, Any]:
        """The aggregator settings this request asks for, as MoA.arun's keyword arguments."""
        s = self._sampling
        return {
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
            "top_p": s.top_p,
            "seed": s.seed,
            "stop": list(s.stop) if s.stop else None,
        }


def checked_act(given: dict[str, Any]) -> Act | None:
    """The act of a request's fields, or 400 naming the field that is wrong or too large."""
    size = len(json.dumps([given.get("tools"), given.get("response_format")]))
    if size > MAX_TOOLS_BYTES:
        raise invalid(
            f"tools: the tools and response format take {size} bytes, over the limit of "
            f"{MAX_TOOLS_BYTES}",
            param="tools",
        )
    try:
        return make_act(**given)
    except ConfigError as exc:
        raise invalid(str(exc), param=str(exc).partition(":")[0]) from None


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[TextPart]", "none") or part.startswith(
            ("function-", "literal[")
        ):
            continue  # pydantic's names for union members, not fields
        else:
            out += f".{part}" if out else part
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_tree(data: Any) -> None:
    """400 for a body nested deeper than MAX_DEPTH or holding text that is not Unicode.

    Level by level, holding only references: a body of a million numbers costs 8 MB here."""
    level: list[Any] = [data]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise invalid(f"the body is nested more than {MAX_DEPTH} deep", code="invalid_json")
        below: list[Any] = []
        for item in level:
            kind = type(item)  # json.loads makes exactly these types
            if kind is dict:
                below.extend(item)  # the keys, checked as texts one level down
                below.extend(item.values())
            elif kind is list:
                below.extend(item)
            elif kind is str and not item.isascii() and _SURROGATE.search(item):
                raise invalid(
                    "the body holds a lone surrogate (such as \\ud800): not valid Unicode",
                    code="invalid_json",
                )
        level, depth = below, depth + 1


def load_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, strict, not too deep and valid Unicode, or 400."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise invalid("the body is nested too deeply", code="invalid_json") from None
    except ValueError as exc:  # bad JSON or UTF-8, NaN, an integer of over 4300 digits
        raise invalid(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object", code="invalid_json")
    _check_tree(data)
    return data


def field_error(exc: ValidationError) -> ApiError:
    """A pydantic error as a 400 that names the field."""
    err = exc.errors(include_url=False)[0]
    param = _param(err["loc"]) or None
    if err["type"] == "missing":
        problem = "this field is required"
    elif err["type"] == "extra_forbidden":
        problem = "unknown field"
    else:
        problem = err["msg"].removeprefix("Value error, ")
    if param and ".content" in param:  # one message for both members of the union
        param = param.split(".content", 1)[0] + ".content"
        problem = "expected a string or a list of text parts (only text is supported)"
    return invalid(f"{param}: {problem}" if param else problem, param=param)


def parse_request(raw: bytes) -> ChatRequest:
    """The validated request, or a 400 naming the first bad field."""
    data = load_body(raw)
    try:
        chat = ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc) from None
    chat.check_settings()
    chat.check_tools()
    return chat


def encode(text: str) -> bytes:
    """UTF-8; a lone surrogate (a model may answer one) becomes U+FFFD instead of an error."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode()


def dumps(data: Any) -> bytes:
    """The JSON of anything the server sends, scrubbed and safely encoded."""
    return encode(json.dumps(redact_data(data), ensure_ascii=False, default=str))


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """The ASGI start message and body of a JSON answer."""
    raw = dumps(body)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http.response.start", "status": status, "headers": head}, raw


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = data.encode() if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return head.encode() + b"data: " + text + b"\n\n"
