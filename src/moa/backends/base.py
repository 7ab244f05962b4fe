"""The one base every backend extends: `stream` is the only method a backend must write.

    class MyBackend(Backend):
        async def stream(self, request: Request) -> AsyncIterator[Delta]:
            yield Delta(text="hello")
            yield Delta(usage=Usage(3, 1), finish_reason="stop")

`complete` collects the stream; `context_window` and `count_tokens` default to unknown (the
engine then estimates); `configure_model` is for backends that load files with a context size;
`aclose` does nothing. Backends raise `moa.errors.BackendError` subclasses, never foreign
exceptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from moa.types import Completion, Delta, Request, ToolCall, Usage

__all__ = ["Backend", "Fold", "collect"]


class Backend(ABC):
    """An async source of completions. Subclasses write `stream`; the rest has defaults."""

    @abstractmethod
    def stream(self, request: Request) -> AsyncIterator[Delta]:
        """Pieces of the answer; the last one carries usage and finish_reason."""

    async def complete(self, request: Request) -> Completion:
        """The whole answer: the stream, collected."""
        return await collect(self.stream(request))

    def context_window(self, model: str) -> int | None:
        """Tokens the model can hold, prompt and answer together; None when unknown."""
        return None

    def count_tokens(self, model: str, text: str) -> int | None:
        """The model's own count of `text`'s tokens; None when unknown."""
        return None

    def configure_model(self, model: str, *, n_ctx: int) -> None:
        """Load `model` with `n_ctx` tokens of context when it is first used (local files)."""
        return None

    async def aclose(self) -> None:
        """Release connections or models; the backend is not used afterwards."""
        return None


@dataclass
class _Pieces:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Fold:
    """A stream folded into one completion, delta by delta: text, usage, finish reason, the
    generated tokens' log-probabilities when the backend gave them, reasoning, and tool calls
    reassembled by their `index`."""

    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    logprobs: list[float] | None = None
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _Pieces] = field(default_factory=dict)

    def add(self, delta: Delta) -> None:
        if delta.text:
            self.parts.append(delta.text)
        if delta.reasoning:
            self.reasoning.append(delta.reasoning)
        for piece in delta.tool_calls:
            call = self.calls.setdefault(piece.index, _Pieces())
            call.id = piece.id or call.id
            call.name = piece.name or call.name
            call.arguments.append(piece.arguments)
        self.usage = delta.usage or self.usage
        self.finish_reason = delta.finish_reason or self.finish_reason
        if delta.logprobs:
            self.logprobs = [*(self.logprobs or []), *delta.logprobs]

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def completion(self) -> Completion:
        calls = tuple(
            ToolCall(c.id, c.name, "".join(c.arguments)) for _, c in sorted(self.calls.items())
        )
        return Completion(
            text=self.text,
            usage=self.usage or Usage(),
            finish_reason=self.finish_reason,
            logprobs=tuple(self.logprobs) if self.logprobs is not None else None,
            tool_calls=calls,
            reasoning="".join(self.reasoning) or None,
        )


async def collect(stream: AsyncIterator[Delta]) -> Completion:
    """Turn a stream into one completion."""
    fold = Fold()
    async for delta in stream:
        fold.add(delta)
    return fold.completion()
