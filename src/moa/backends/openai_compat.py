"""Any OpenAI-compatible endpoint, through the official `openai` SDK.

A request that acts sends its tools, tool choice, parallel_tool_calls and response format as
they are; the answer's structured tool calls and its reasoning (`reasoning_content`, or
OpenRouter's `reasoning`) come back apart from its text. Every request says how deep in a
chain of MoA servers it is made (`moa.depth`).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai

from moa import depth
from moa.backends.base import Backend
from moa.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeout,
    BadResponse,
    ContextLengthError,
    RateLimited,
)
from moa.redact import redact_url, redact_urls
from moa.types import Completion, Delta, Request, ToolCall, ToolCallDelta, Usage

"""Retried statuses; every other 5xx is retried too."""
_CONTEXT_HINTS = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|"
    r"exceeds? the (?:max|context|available context)|available context size|"
    r"exceed_context_size|prompt is too long|n_ctx",
    re.IGNORECASE,
)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    for name in ("retry-after-ms", "retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            try:  # an HTTP date
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                continue
            return max(when.timestamp() - time.time(), 0.0)
        return value / 1000 if name.endswith("-ms") else value
    return None


def _body_text(body: object) -> str | None:
    if body is None:
        return None
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text[:2000]


def _redact(text: str, secret: str | None) -> str:
    """`text` without the key, nor credentials in any URL it shows."""
    text = redact_urls(text)
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def map_error(exc: Exception, model: str, *, secret: str | None = None) -> BackendError:
    """Translate the SDK's exceptions into ours, in this one place.

    `secret` (the API key) is blanked out of messages and bodies: some servers echo it; so are
    the user info and query of any URL shown."""
    if isinstance(exc, BackendError):
        return exc
    error = _map(exc, model)
    error.message = _redact(error.message, secret)
    error.body = _redact(error.body, secret) if error.body else error.body
    error.args = tuple(_redact(str(a), secret) for a in error.args)
    return error


def _map(exc: Exception, model: str) -> BackendError:
    if isinstance(exc, openai.APITimeoutError):
        return BackendTimeout("timed out waiting for the endpoint", model=model)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        detail = str(cause) or type(cause).__name__
        return BackendConnectionError(f"connection failed: {detail}", model=model)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = _body_text(exc.body)
        message = getattr(exc, "message", str(exc))
        retry_after = _retry_after(exc.response.headers)
        if status == 429:
            return RateLimited(
                f"rate limited (429): {message}",
                model=model,
                body=body,
                retry_after=retry_after,
            )
        if status in (400, 413, 422) and _CONTEXT_HINTS.search(f"{message} {body or ''}"):
            return ContextLengthError(
                f"prompt too long ({status}): {message}", model=model, status=status, body=body
            )
        error = BackendError(f"HTTP {status}: {message}", model=model, status=status, body=body)
        error.retry_after = retry_after
        return error
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
        return BadResponse(f"malformed response: {exc}", model=model)
    if isinstance(exc, openai.APIError):
        return BackendConnectionError(f"{type(exc).__name__}: {exc}", model=model)
    return BadResponse(f"{type(exc).__name__}: {exc}", model=model)


def _logprobs(choice: Any) -> tuple[float, ...] | None:
    """The generated tokens' log-probabilities of a choice (or a streamed piece), if given."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    values = [getattr(t, "logprob", None) for t in content]
    return tuple(float(v) for v in values if isinstance(v, int | float))


def _reasoning(item: Any) -> str | None:
    """A message's or a delta's reasoning, in the fields providers put it."""
    extra = getattr(item, "model_extra", None) or {}
    for name in ("reasoning_content", "reasoning"):
        value = getattr(item, name, None) or extra.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _calls(message: Any) -> tuple[ToolCall, ...]:
    out: list[ToolCall] = []
    for call in getattr(message, "tool_calls", None) or ():
        function = getattr(call, "function", None)
        if function is None:
            continue
        out.append(ToolCall(call.id or "", function.name or "", function.arguments or ""))
    return tuple(out)


def _call_deltas(delta: Any) -> tuple[ToolCallDelta, ...]:
    out: list[ToolCallDelta] = []
    for piece in getattr(delta, "tool_calls", None) or ():
        function = piece.function
        out.append(
            ToolCallDelta(
                piece.index,
                piece.id,
                function.name if function else None,
                (function.arguments if function else None) or "",
            )
        )
    return tuple(out)


def _cause(exc: Exception, secret: str | None) -> Exception | None:
    """The SDK's exception to chain ours to, unless it shows the key (tracebacks print it)."""
    if secret and len(secret) >= 4:
        body = getattr(exc, "body", None)
        if secret in str(exc) or (body is not None and secret in json.dumps(body, default=str)):
            return None
    return exc


class OpenAICompatBackend(Backend):
    """Chat completions against one base URL with one key, shared by every agent that uses it.

    Retries are the engine's (so the trace sees every attempt); `max_retries` turns on the
    SDK's own as well. `context_windows` maps model names to their context size, when known.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        name: str = "openai",
        max_retries: int = 0,
        timeout: float = 600.0,
        context_windows: Mapping[str, int] | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: Any = None,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self._windows = dict(context_windows or {})
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=max_retries,
            timeout=timeout,
            default_headers=dict(default_headers or {}),
            http_client=http_client,
        )
        self._stream_usage = True

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatBackend(name={self.name!r}, base_url={redact_url(self.base_url)!r})"

    def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [m.to_dict() for m in request.messages],
            **request.settings.params(),
        }
        if request.act is not None:
            params.update(request.act.to_dict())
        if request.timeout is not None:
            params["timeout"] = request.timeout
        params["extra_headers"] = {depth.HEADER: str(depth.current() + 1)}
        return params

    async def complete(self, request: Request) -> Completion:
        try:
            response = await self._client.chat.completions.create(**self._params(request))
        except Exception as exc:  # mapped in one place
            raise self._error(exc, request.model) from _cause(exc, self._client.api_key)
        if not getattr(response, "choices", None):
            raise BadResponse("the response has no choices", model=request.model)
        choice = response.choices[0]
        text = choice.message.content if choice.message else None
        calls = _calls(choice.message)
        if text is None and not calls:
            raise BadResponse("the response has no message content", model=request.model)
        usage = Usage()
        if response.usage is not None:
            usage = Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
        return Completion(
            text=text or "",
            usage=usage,
            finish_reason=choice.finish_reason,
            logprobs=_logprobs(choice),
            tool_calls=calls,
            reasoning=_reasoning(choice.message),
        )

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        params = self._params(request)
        params["stream"] = True
        if self._stream_usage:
            params["stream_options"] = {"include_usage": True}
        usage: Usage | None = None
        finish: str | None = None
        try:
            stream = await self._open_stream(params)
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = Usage(
                            chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0
                        )
                    for choice in chunk.choices or ():
                        if choice.index != 0:
                            continue
                        delta = choice.delta
                        if delta is not None and (delta.content or delta.tool_calls):
                            yield Delta(
                                text=delta.content or "",
                                logprobs=_logprobs(choice),
                                tool_calls=_call_deltas(delta),
                            )
                        if delta is not None and (thought := _reasoning(delta)):
                            yield Delta(reasoning=thought)
                        finish = choice.finish_reason or finish
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, request.model) from _cause(exc, self._client.api_key)
        if finish is None:
            raise BadResponse("the stream ended before the answer finished", model=request.model)
        yield Delta(usage=usage or Usage(), finish_reason=finish)

    async def _open_stream(self, params: dict[str, Any]) -> Any:
        """Start a stream; a server that refuses `stream_options` is asked again without it."""
        try:
            return await self._client.chat.completions.create(**params)
        except openai.BadRequestError as exc:
            if (
                "stream_options" not in params
                or "stream_options" not in f"{exc.message} {exc.body}"
            ):
                raise
        self._stream_usage = False  # remembered for this endpoint
        params = {k: v for k, v in params.items() if k != "stream_options"}
        return await self._client.chat.completions.create(**params)

    def _error(self, exc: Exception, model: str) -> BackendError:
        return map_error(exc, model, secret=self._client.api_key)

    def context_window(self, model: str) -> int | None:
        return self._windows.get(model)

    async def aclose(self) -> None:
        await self._client.close()
