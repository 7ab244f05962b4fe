"""One run answered over HTTP, streamed or not, cancelled when the client goes away.

The run happens inside the response, next to a task that waits for the client to
disconnect: whichever ends first cancels the other, so a client that leaves cancels every
backend call of its run.

A stream holds back its headers until the first thing it has to send (a token, or a progress
event when the client asked for them) or until `keepalive_s` passes, so that a run that fails
before answering gets a real status (502, 504) rather than an error inside a 200 stream.
After that, a comment line every `keepalive_s` keeps idle proxies from closing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from moa.engine import AgentFinished, AgentStarted, Event, Finished, LayerFinished, MoA, Token
from moa.errors import MoAError
from moa.redact import redact_urls
from moa.server.errors import ApiError, from_error
from moa.server.wire import (
    ChatRequest,
    Chunks,
    completion,
    finish_reason,
    json_response,
    new_id,
    sse,
)

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


class RunResponse(Response):
    """Runs `moa` on the request while the client is connected; answers JSON or SSE."""

    def __init__(
        self,
        moa: MoA,
        request: ChatRequest,
        *,
        keepalive_s: float,
        release: Callable[[], None],
    ) -> None:
        self.moa = moa
        self.req = request
        self.model = request.model
        self.keepalive_s = keepalive_s
        self._release = release
        self._chunks = Chunks(request.model, include_usage=request.include_usage)
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
            if self.req.stream:
                await self._stream(send)
            else:
                await self._complete(send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = from_error(exc, self.model)
            if isinstance(exc, MoAError):
                log.warning("run of %s failed: %s", self.model, redact_urls(str(exc)))
            elif not isinstance(exc, ApiError):
                log.exception("run of %s failed unexpectedly", self.model)
            await self._fail(send, error, getattr(exc, "trace", None))

    async def _fail(self, send: Send, error: ApiError, trace: Any) -> None:
        if not self._started:
            start, body = json_response(error.status, error.body(), error.headers)
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        if trace is not None and self.req.options.include_trace:
            await self._write(send, sse(self._chunks.extension(_trace(trace)), "moa.trace"))
        await self._write(send, sse(error.body()))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _complete(self, send: Send) -> None:
        result = await self.moa.arun(self.req.conversation(), **self.req.settings())
        body = completion(
            new_id(), self.model, result, include_trace=self.req.options.include_trace
        )
        start, raw = json_response(200, body)
        await send(start)
        await send({"type": "http.response.body", "body": raw})

    async def _write(self, send: Send, data: bytes) -> None:
        if not self._started:
            self._started = True
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _stream(self, send: Send) -> None:
        req, chunks = self.req, self._chunks
        if req.options.events:
            await self._write(send, sse(chunks.extension(plan(self.moa)), "moa.run"))
        role_sent = False
        result = None
        events = self.moa.astream(req.conversation(), **req.settings())
        async with (
            contextlib.aclosing(events) as events,
            contextlib.aclosing(ticking(events, self.keepalive_s)) as items,
        ):
            async for item in items:
                if isinstance(item, _Tick):
                    await self._write(send, KEEPALIVE)
                elif isinstance(item, Token):
                    if not role_sent:
                        role_sent = True
                        role = {"role": "assistant", "content": ""}
                        await self._write(send, sse(chunks.delta(role)))
                    await self._write(send, sse(chunks.delta({"content": item.text})))
                elif isinstance(item, Finished):
                    result = item.result
                elif req.options.events and (progress := describe(item)) is not None:
                    name, payload = progress
                    await self._write(send, sse(chunks.extension(payload), name))
        assert result is not None
        if not role_sent:
            await self._write(send, sse(chunks.delta({"role": "assistant", "content": ""})))
        await self._write(send, sse(chunks.delta({}, finish_reason(result))))
        if req.include_usage:
            await self._write(send, sse(chunks.usage(result)))
        if req.options.include_trace:
            payload = _trace(result.trace) | {"best_proposal": result.best_proposal}
            await self._write(send, sse(chunks.extension(payload), "moa.trace"))
        await self._write(send, sse("[DONE]"))
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _trace(trace: Any) -> dict[str, Any]:
    return {"type": "run.trace", "trace": trace.to_dict()}


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
