"""One run answered over HTTP, streamed or not, cancelled when the client goes away.

The run happens inside the response, next to a task that waits for the client to
disconnect: whichever ends first cancels the other, so a client that leaves cancels every
backend call of its run.

A stream holds back its headers until the first thing it has to send (a token, or a progress
event when the client asked for them) or until `keepalive_s` passes, so that a run that fails
before answering gets a real status (502, 504) rather than an error inside a 200 stream.
After that, a comment line every `keepalive_s` keeps idle proxies from closing it.

What the answer looks like is the API's (`Format`): chat completions (`moa.server.chat`) or
the Responses API (`moa.server.responses`); the run, its cancellation and its errors are the
same for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from moa import depth
from moa.engine import AgentFinished, AgentStarted, Event, Finished, LayerFinished, MoA, Token
from moa.errors import MoAError
from moa.events import Reasoning, Result
from moa.redact import redact_urls
from moa.server.chat import ChatStream, Chunks, completion, new_id, progress_line
from moa.server.errors import ApiError, from_error
from moa.server.wire import ChatRequest, MoAOptions, json_response, sse
from moa.types import Act, Message

log = logging.getLogger("moa.server")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
KEEPALIVE = b": keep-alive\n\n"


class _Tick:
    """Nothing happened for a while."""


TICK = _Tick()
_END = object()


async def _next(events: AsyncIterator[Event]) -> Any:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return _END


async def ticking(
    events: AsyncIterator[Event], every: float
) -> AsyncGenerator[Event | _Tick, None]:
    """The events, with TICK whenever `every` seconds pass without one."""
    pending: asyncio.Task[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next(events))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield TICK
                continue
            task, pending = pending, None
            item = task.result()
            if item is _END:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, MoAError):
                await pending


def describe(event: Event) -> tuple[str, dict[str, Any]] | None:
    """A progress event as (SSE event name, payload); None for what is not progress."""
    if isinstance(event, AgentStarted):
        return "moa.agent", {
            "type": "agent.started",
            "layer": event.layer,
            "index": event.index,
            "agent": event.agent,
            "model": event.model,
            "role": event.role,
        }
    if isinstance(event, AgentFinished):
        c = event.call
        return "moa.agent", {
            "type": "agent.finished",
            "layer": c.layer,
            "index": c.index,
            "agent": c.agent,
            "model": c.model,
            "role": c.role,
            "ok": c.ok,
            "text": c.text if c.role != "aggregator" else None,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
            "latency_s": round(c.latency_s, 4),
            "error": c.error,
            "error_type": c.error_type,
        }
    if isinstance(event, LayerFinished):
        return "moa.layer", {
            "type": "layer.finished",
            "layer": event.layer,
            "answered": event.answered,
            "failed": event.failed,
            "stopped": event.stopped,
        }
    return None


def plan(moa: MoA) -> dict[str, Any]:
    """The shape of the run, sent first so that a page can lay out its columns."""
    return {
        "type": "run.started",
        "recipe": moa.recipe.name,
        "layers": [
            [{"agent": a.label, "model": a.model} for a in layer.agents]
            for layer in moa.plan.layers
        ],
        "aggregator": {"agent": moa.plan.aggregator.label, "model": moa.plan.aggregator.model},
    }


class RunRequest(Protocol):
    """What a run needs of a parsed request, whichever API it came by."""

    model: str
    stream: bool

    @property
    def options(self) -> MoAOptions: ...

    @property
    def act(self) -> Act | None: ...

    def conversation(self) -> Sequence[Message]: ...

    def settings(self) -> dict[str, Any]: ...


class Format(Protocol):
    """An API's answer: the whole body, or the stream's SSE lines as the run goes."""

    def body(self, result: Result, *, include_trace: bool) -> dict[str, Any]: ...

    def opening(self) -> list[bytes]: ...

    def text(self, text: str) -> list[bytes]: ...

    def thinking(self, text: str) -> list[bytes]: ...

    def progress(self, text: str) -> list[bytes]: ...

    def finish(self, result: Result) -> list[bytes]: ...

    def extension(self, payload: dict[str, Any], name: str) -> list[bytes]: ...

    def failure(self, error: ApiError) -> list[bytes]: ...


class ChatFormat:
    """Chat completions' answers (`moa.server.chat`)."""

    def __init__(self, request: ChatRequest) -> None:
        self.model = request.model
        self.stream = ChatStream(request.model, include_usage=request.include_usage)
        self.chunks: Chunks = self.stream.chunks

    def body(self, result: Result, *, include_trace: bool) -> dict[str, Any]:
        return completion(new_id(), self.model, result, include_trace=include_trace)

    def opening(self) -> list[bytes]:
        return []

    def text(self, text: str) -> list[bytes]:
        return self.stream.text(text)

    def thinking(self, text: str) -> list[bytes]:
        return self.stream.thinking(text)

    def progress(self, text: str) -> list[bytes]:
        return self.stream.thinking(text)  # shown as thinking by chat clients

    def finish(self, result: Result) -> list[bytes]:
        return [*self.stream.finish(result), sse("[DONE]")]

    def extension(self, payload: dict[str, Any], name: str) -> list[bytes]:
        return [sse(self.chunks.extension(payload), name)] if payload else []

    def failure(self, error: ApiError) -> list[bytes]:
        return [sse(error.body())]


class RunResponse(Response):
    """Runs `moa` on the request while the client is connected; answers JSON or SSE."""

    def __init__(
        self,
        moa: MoA,
        request: RunRequest,
        *,
        keepalive_s: float,
        release: Callable[[], None],
        format: Format | None = None,
        depth: int = 0,
    ) -> None:
        self.moa = moa
        self.req = request
        self.model = request.model
        self.keepalive_s = keepalive_s
        self._release = release
        if format is None:
            assert isinstance(request, ChatRequest)
            format = ChatFormat(request)
        self.format = format
        self.depth = depth
        self._opening: list[bytes] = []  # the stream's first lines, sent with its headers
        self._started = False
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        work = asyncio.ensure_future(self._serve(send))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done() and not work.done():
                log.info("client disconnected: run of %s cancelled", self.model)
        finally:
            work.cancel()
            gone.cancel()
            await asyncio.gather(work, gone, return_exceptions=True)
            self._release()

    async def _serve(self, send: Send) -> None:
        try:
            with depth.nested(self.depth):  # the run's own calls say how deep they are
                await self._answer(send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = from_error(exc, self.model)
            if isinstance(exc, MoAError):
                log.warning("run of %s failed: %s", self.model, redact_urls(str(exc)))
            elif not isinstance(exc, ApiError):
                log.exception("run of %s failed unexpectedly", self.model)
            await self._fail(send, error, getattr(exc, "trace", None))

    async def _answer(self, send: Send) -> None:
        if self.req.stream:
            await self._stream(send)
        else:
            await self._complete(send)

    async def _fail(self, send: Send, error: ApiError, trace: Any) -> None:
        if not self._started:
            start, body = json_response(error.status, error.body(), error.headers)
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        if trace is not None and self.req.options.include_trace:
            await self._writes(send, self.format.extension(_trace(trace), "moa.trace"))
        await self._writes(send, self.format.failure(error))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _run_args(self) -> dict[str, Any]:
        args = self.req.settings()
        if (act := self.req.act) is not None:
            args.update(act.to_dict())
        return args

    async def _complete(self, send: Send) -> None:
        result = await self.moa.arun(self.req.conversation(), **self._run_args())
        body = self.format.body(result, include_trace=self.req.options.include_trace)
        start, raw = json_response(200, body)
        await send(start)
        await send({"type": "http.response.body", "body": raw})

    async def _write(self, send: Send, data: bytes) -> None:
        if not self._started:
            self._started = True
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            for line in self._opening:
                await send({"type": "http.response.body", "body": line, "more_body": True})
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _writes(self, send: Send, lines: list[bytes]) -> None:
        for line in lines:
            await self._write(send, line)

    async def _stream(self, send: Send) -> None:
        req, fmt = self.req, self.format
        self._opening = fmt.opening()
        if req.options.events:
            await self._writes(send, fmt.extension(plan(self.moa), "moa.run"))
        result = None
        events = self.moa.astream(req.conversation(), **self._run_args())
        async with (
            contextlib.aclosing(events) as events,
            contextlib.aclosing(ticking(events, self.keepalive_s)) as items,
        ):
            async for item in items:
                if isinstance(item, _Tick):
                    await self._write(send, KEEPALIVE)
                elif isinstance(item, Token):
                    await self._writes(send, fmt.text(item.text))
                elif isinstance(item, Reasoning):
                    await self._writes(send, fmt.thinking(item.text))
                elif isinstance(item, Finished):
                    result = item.result
                else:
                    if (line := progress_line(item)) is not None:
                        await self._writes(send, fmt.progress(line))
                    if req.options.events and (progress := describe(item)) is not None:
                        name, payload = progress
                        await self._writes(send, fmt.extension(payload, name))
        assert result is not None
        finish = fmt.finish(result)
        if req.options.include_trace:
            payload = _trace(result.trace) | {"best_proposal": result.best_proposal}
            finish[-1:-1] = fmt.extension(payload, "moa.trace")
        await self._writes(send, finish)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _trace(trace: Any) -> dict[str, Any]:
    return {"type": "run.trace", "trace": trace.to_dict()}


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
