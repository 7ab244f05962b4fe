"""A scripted backend for dry runs and tests: yours and ours.

    fake = FakeBackend()
    fake.enqueue("a", "first answer", "second answer")   # answers in order, then the default
    fake.respond("b", lambda req: req.messages[-1].content.upper())
    fake.fail("c", BackendTimeout("slow"), times=2)        # the first two calls fail
    fake.latency("a", 0.5)
    fake.confidence("a", -0.1)                             # logprob of each token, if asked
    fake.enqueue("a", Reply(tool_calls=[call("lookup", {"key": "x"})]))   # a tool call
    fake.enqueue("a", Reply("4", reasoning="2 + 2"))      # an answer with its thinking
    moa = MoA.from_recipe(recipe, backends={"fake": fake})

Unscripted models answer deterministically, so any recipe can be dry-run with `fake:NAME`.
A `Reply` streams its reasoning first, then its text, then its tool calls in pieces keyed by
index (id and name first, the arguments in two halves), ending with `finish_reason`
'tool_calls'; usage counts the words of all of it.
The last `record` requests (1000 by default; 0 keeps none) are kept in `fake.calls` as
(model, request), and the models of cancelled calls in `fake.cancelled`: memory stays bounded
however long a fake serves (the server's own keeps none).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import zlib
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from moa.backends.base import Backend
from moa.types import Delta, Request, ToolCall, ToolCallDelta, Usage


@dataclass(frozen=True)
class Reply:
    """A scripted answer beyond plain text: tool calls, thinking."""

    text: str = ""
    tool_calls: Sequence[ToolCall] = field(default_factory=tuple)
    reasoning: str = ""


def call(name: str, arguments: Mapping[str, Any] | str, id: str | None = None) -> ToolCall:
    """A tool call to script (`Reply(tool_calls=[call("lookup", {"key": "x"})])`)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(
        id if id is not None else f"call_{name}_{zlib.crc32(args.encode()):08x}", name, args
    )


Answer = str | Reply
Responder = Callable[[Request], Answer | Awaitable[Answer]]
Scripted = Answer | BaseException | Responder
T = TypeVar("T")


class Recent(list[T]):
    """A list that keeps only its last `limit` items (a ring buffer that still slices)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def append(self, item: T) -> None:
        if self.limit <= 0:
            return
        super().append(item)
        if len(self) > self.limit:
            del self[0]


def example(schema: Any) -> Any:
    """The plainest value of a JSON schema: required fields only, zeros, empty texts, the
    first of an enum (what an unscripted fake answers when a schema is asked for)."""
    if not isinstance(schema, Mapping):
        return {}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example(schema[key][0])
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: example(props.get(k, {})) for k in schema.get("required") or ()}
    plain: dict[str, Any] = {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}
    return plain.get(str(kind))


def default_answer(request: Request) -> str:
    form = request.act.response_format if request.act is not None else None
    if form is not None:  # a dry run asked for JSON: the plainest valid answer
        return json.dumps(example(form.schema) if form.schema is not None else {})
    last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    refs = 0
    if request.messages and request.messages[0].role == "system":
        refs = len(re.findall(r"^\d+\. ", request.messages[0].content, flags=re.MULTILINE))
    head = " ".join(last.split())[:120]
    if refs:
        return f"[{request.model}] synthesis of {refs} responses to: {head}"
    return f"[{request.model}] answer to: {head}"


def count_words(text: str) -> int:
    return len(text.split())


@dataclass
class _Script:
    queue: deque[Scripted]
    fallback: Scripted | None = None
    latency: float = 0.0
    logprob: float = -0.5
    token_delay: float = 0.0


_UNSCRIPTED = _Script(deque())


class FakeBackend(Backend):
    """A backend whose answers, latencies and failures are scripted per model."""

    def __init__(
        self,
        *,
        default: Responder = default_answer,
        latency: float = 0.0,
        token_delay: float = 0.0,
        window: int | None = None,
        record: int = 1000,
    ) -> None:
        self._default = default
        self._latency = latency
        self._token_delay = token_delay
        self._window = window
        self._scripts: dict[str, _Script] = defaultdict(lambda: _Script(deque()))
        self.calls: Recent[tuple[str, Request]] = Recent(record)
        self.cancelled: Recent[str] = Recent(record)
        self.closed = False

    # scripting -----------------------------------------------------------------------------
    def enqueue(self, model: str, *answers: Scripted) -> FakeBackend:
        """Queue answers (texts, exceptions to raise, or functions) used once each, in order."""
        self._scripts[model].queue.extend(answers)
        return self

    def respond(self, model: str, responder: Scripted) -> FakeBackend:
        """What `model` answers whenever its queue is empty."""
        self._scripts[model].fallback = responder
        return self

    def fail(self, model: str, error: BaseException, *, times: int | None = None) -> FakeBackend:
        """Make `model` raise `error`: `times` times, then answer; always when times is None."""
        if times is None:
            return self.respond(model, error)
        return self.enqueue(model, *([error] * times))

    def confidence(self, model: str, logprob: float) -> FakeBackend:
        """The log-probability `model` gives each of its tokens, when asked (default -0.5)."""
        self._scripts[model].logprob = logprob
        return self

    def latency(self, model: str, seconds: float, *, per_token: float = 0.0) -> FakeBackend:
        script = self._scripts[model]
        script.latency = seconds
        script.token_delay = per_token
        return self

    def requests(self, model: str | None = None) -> list[Request]:
        return [r for m, r in self.calls if model is None or m == model]

    # the Backend protocol -------------------------------------------------------------------
    async def _answer(self, request: Request) -> tuple[Answer, _Script]:
        self.calls.append((request.model, request))
        script = self._scripts.get(request.model) or _UNSCRIPTED  # no entry per model seen
        delay = script.latency or self._latency
        item: Scripted = (
            script.queue.popleft()
            if script.queue
            else (script.fallback if script.fallback is not None else self._default)
        )
        try:
            if delay:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled.append(request.model)
            raise
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, (str, Reply)):
            return item, script
        result = item(request)
        text = await result if inspect.isawaitable(result) else result
        if isinstance(text, BaseException):
            raise text
        return text if isinstance(text, Reply) else str(text), script

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        answer, script = await self._answer(request)
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        text = reply.text
        finish = "tool_calls" if reply.tool_calls else "stop"
        if request.settings.max_tokens is not None:
            words = text.split(" ")
            if len(words) > request.settings.max_tokens:
                text = " ".join(words[: request.settings.max_tokens])
                finish = "length"
        if reply.reasoning:
            yield Delta(reasoning=reply.reasoning)
        pieces = re.findall(r"\S+\s*|\s+", text) or ([] if reply.tool_calls else [""])
        per_token = script.token_delay or self._token_delay
        for piece in pieces:
            if per_token:
                try:
                    await asyncio.sleep(per_token)
                except asyncio.CancelledError:
                    self.cancelled.append(request.model)
                    raise
            logprobs = (script.logprob,) if request.settings.logprobs else None
            yield Delta(text=piece, logprobs=logprobs)
        for index, tool_call in enumerate(reply.tool_calls):
            half = len(tool_call.arguments) // 2
            yield Delta(tool_calls=(ToolCallDelta(index, tool_call.id, tool_call.name),))
            for part in (tool_call.arguments[:half], tool_call.arguments[half:]):
                yield Delta(tool_calls=(ToolCallDelta(index, arguments=part),))
        prompt_tokens = sum(count_words(m.content) for m in request.messages)
        written = [text, reply.reasoning, *(f"{c.name} {c.arguments}" for c in reply.tool_calls)]
        used = sum(count_words(w) for w in written)
        yield Delta(usage=Usage(prompt_tokens, used), finish_reason=finish)

    def context_window(self, model: str) -> int | None:
        return self._window

    def count_tokens(self, model: str, text: str) -> int | None:
        return count_words(text)

    async def aclose(self) -> None:
        self.closed = True
