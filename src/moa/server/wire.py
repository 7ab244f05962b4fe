"""The OpenAI wire format: the request we accept and the objects we answer with.

temperature, max_tokens, top_p, seed and stop apply to the aggregator unless the recipe pins
them; they are validated by `moa.types.Settings`, as everywhere else. Fields a recipe cannot
honour (penalties, user, ...) are accepted and ignored; tools, n > 1 and non-text content are
refused. A body must be strict JSON (no NaN), nested at most MAX_DEPTH deep, and valid Unicode
(no lone surrogate).

Whatever leaves the server goes through `dumps`: URLs outside answer texts lose their
credentials (`moa.redact.redact_data`), and text that is not valid Unicode is replaced, not a crash.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from moa.engine import Result
from moa.redact import redact_data
from moa.server.errors import invalid
from moa.types import Message, Settings

MAX_DEPTH = 64
"""The deepest nesting of a request body: a chat request needs about six levels."""
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Open):
    type: Literal["text"]
    text: str


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def to_message(self) -> Message:
        text = (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )
        return Message("system" if self.role == "developer" else self.role, text)


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
    functions: list[Any] | None = None
    moa: MoAOptions | None = None
    _sampling: Settings = PrivateAttr(default_factory=Settings)

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only n=1 is supported: a recipe gives one answer per run")
        return value

    @field_validator("tools", "functions")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("tool and function calling are not supported by MoA recipes")
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
        return [m.to_message() for m in self.messages]

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


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[TextPart]") or part.startswith(("function-", "literal[")):
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


def parse_request(raw: bytes) -> ChatRequest:
    """The validated request, or a 400 naming the first bad field."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise invalid("the body is nested too deeply", code="invalid_json") from None
    except ValueError as exc:  # bad JSON or UTF-8, NaN, an integer of over 4300 digits
        raise invalid(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object", code="invalid_json")
    _check_tree(data)
    try:
        chat = ChatRequest.model_validate(data)
    except ValidationError as exc:
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
        raise invalid(f"{param}: {problem}" if param else problem, param=param) from None
    chat.check_settings()
    return chat


# responses ----------------------------------------------------------------------------------
def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage_dict(result: Result) -> dict[str, Any]:
    """OpenAI's usage of every call of the run; `cost` (our extension, as OpenRouter's) when
    the recipe's prices cover every call."""
    prompt, completion = result.usage.input_tokens, result.usage.output_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if (cost := result.trace.totals().cost) is not None:
        usage["cost"] = cost
    return usage


def finish_reason(result: Result) -> str:
    """The aggregator's own finish reason; else 'length' when it used all its tokens."""
    last = next((c for c in reversed(result.trace.calls) if c.role == "aggregator"), None)
    if last and last.finish_reason in ("stop", "length") and not result.best_proposal:
        return last.finish_reason
    limit = last.settings.get("max_tokens") if last else None
    if last and limit and not result.best_proposal and last.output_tokens >= limit:
        return "length"
    return "stop"


def completion(cid: str, model: str, result: Result, *, include_trace: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage_dict(result),
        "system_fingerprint": None,
    }
    if include_trace:
        body["moa"] = {"best_proposal": result.best_proposal, "trace": result.trace.to_dict()}
    return body


class Chunks:
    """Builds the `chat.completion.chunk` objects of one streamed answer."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.id = new_id()
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage

    def _base(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._base([choice])

    def usage(self, result: Result) -> dict[str, Any]:
        chunk = self._base([])
        chunk["usage"] = usage_dict(result)
        return chunk

    def extension(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A chunk with no choices that carries MoA progress: OpenAI clients parse it as a
        chunk like the usage chunk, and skip it when they check `choices`."""
        chunk = self._base([])
        chunk["moa"] = payload
        return chunk


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
