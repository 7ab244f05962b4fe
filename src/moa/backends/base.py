"""The one protocol every backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from moa.types import Completion, Delta, Request


@runtime_checkable
class Backend(Protocol):
    """An async source of completions.

    `complete` returns a whole answer; `stream` yields pieces of it, the last of which carries
    usage and finish_reason. Both raise `moa.errors.BackendError` subclasses, never foreign
    exceptions. `context_window` and `count_tokens` return None when unknown: the engine
    then estimates.
    """

    async def complete(self, request: Request) -> Completion: ...

    def stream(self, request: Request) -> AsyncIterator[Delta]: ...

    def context_window(self, model: str) -> int | None: ...

    def count_tokens(self, model: str, text: str) -> int | None: ...

    async def aclose(self) -> None: ...


async def collect(stream: AsyncIterator[Delta]) -> Completion:
    """Turn a stream into one completion."""
    from moa.types import Usage

    parts: list[str] = []
    usage: Usage | None = None
    finish: str | None = None
    async for delta in stream:
        parts.append(delta.text)
        usage = delta.usage or usage
        finish = delta.finish_reason or finish
    return Completion(text="".join(parts), usage=usage or Usage(), finish_reason=finish)
