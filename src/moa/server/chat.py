"""Chat completions' answers: the completion object, and the chunks of a streamed one.

A streamed answer opens with the assistant's role, shows the references' progress (and the
final's own thinking) as `reasoning_content` deltas while they run, then the answer: text as
`content` deltas, or tool calls as deltas keyed by `index` (the first of each with its id and
name, then its arguments), then the finish chunk (`tool_calls` after calls, never `stop`),
usage when asked, and `[DONE]`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from moa.events import AgentFinished, Event, LayerFinished, Result
from moa.server.wire import sse

__all__ = ["ChatStream", "Chunks", "completion", "finish_reason", "new_id", "progress_line"]


def message(result: Result) -> dict[str, Any]:
    """The assistant's message of a run: its text, or its tool calls (with null content)."""
    out: dict[str, Any] = {"role": "assistant", "content": result.text, "refusal": None}
    if result.tool_calls:
        out["content"] = None
        out["tool_calls"] = [c.to_dict() for c in result.tool_calls]
    if result.reasoning:
        out["reasoning_content"] = result.reasoning
    return out


def progress_line(event: Event) -> str | None:
    """What the references are doing, as a line of thinking (None: nothing to say). Only
    answers: a run whose agents all fail has sent nothing, and so still gets a real status."""
    if isinstance(event, AgentFinished) and event.call.role != "aggregator" and event.call.ok:
        c = event.call
        return (
            f"layer {c.layer}: {c.agent} answered ({c.output_tokens} tokens, {c.latency_s:.1f} s)\n"
        )
    if isinstance(event, LayerFinished) and event.answered:
        stopped = f", {event.stopped} stopped" if event.stopped else ""
        return f"layer {event.layer}: {event.answered} answers{stopped}\n"
    return None


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
    """'tool_calls' for an answer that calls tools; else the aggregator's own finish reason;
    else 'length' when it used all its tokens."""
    if result.tool_calls:
        return "tool_calls"
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
                "message": message(result),
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


class ChatStream:
    """The SSE lines of one streamed chat completion, in order (see the module docstring)."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.chunks = Chunks(model, include_usage=include_usage)
        self._opened = False

    def _open(self) -> list[bytes]:
        if self._opened:
            return []
        self._opened = True
        return [sse(self.chunks.delta({"role": "assistant", "content": ""}))]

    def text(self, text: str) -> list[bytes]:
        return [*self._open(), sse(self.chunks.delta({"content": text}))]

    def thinking(self, text: str) -> list[bytes]:
        return [*self._open(), sse(self.chunks.delta({"reasoning_content": text}))]

    def finish(self, result: Result) -> list[bytes]:
        out = self._open()
        for i, call in enumerate(result.tool_calls):
            head = {"name": call.name, "arguments": ""}
            first = {"index": i, "id": call.id, "type": "function", "function": head}
            out.append(sse(self.chunks.delta({"tool_calls": [first]})))
            more = {"index": i, "function": {"arguments": call.arguments}}
            out.append(sse(self.chunks.delta({"tool_calls": [more]})))
        out.append(sse(self.chunks.delta({}, finish_reason(result))))
        if self.chunks.include_usage:
            out.append(sse(self.chunks.usage(result)))
        return out
