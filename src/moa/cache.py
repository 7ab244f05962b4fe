"""A caching Backend wrapper: deterministic answers are kept on disk and reused.

    store = ResponseCache()                               # <moa cache dir>/responses.sqlite3
    resolver = Resolver(wrap=lambda provider, b: CachedBackend(b, store, namespace=provider))

The key is the provider, the model (a GGUF path counts by its file name), the messages (tool
calls and results included), the settings and what the call may do (tools, tool choice,
response format), so a proposer's answer is reused by every recipe and run that asks the same thing.
Only deterministic requests are cached: temperature 0, or an explicit seed. Anything else goes
to the backend every time.

Each call also notes its cost (tokens, and the seconds it took when it was generated) in the
ledger of the current context (`recording()`), so an evaluation can report what a question
costs without a cache even when it was served from one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moa.backends.base import Backend, Fold
from moa.types import Completion, Delta, Message, Request, ToolCall, ToolCallDelta, Usage

__all__ = [
    "CachedBackend",
    "CallCost",
    "ResponseCache",
    "cacheable",
    "default_path",
    "recording",
    "request_key",
]

KEY_VERSION = 1


@dataclass(frozen=True, slots=True)
class CallCost:
    """What one backend call cost: tokens, and seconds when it was generated."""

    model: str
    input_tokens: int
    output_tokens: int
    seconds: float
    cached: bool


_ledger: ContextVar[list[CallCost] | None] = ContextVar("moa_cache_ledger", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[CallCost]]:
    """Collect the cost of every call made through a CachedBackend in this context (and the
    tasks it starts)."""
    ledger: list[CallCost] = []
    token = _ledger.set(ledger)
    try:
        yield ledger
    finally:
        _ledger.reset(token)


def _note(cost: CallCost) -> None:
    ledger = _ledger.get()
    if ledger is not None:
        ledger.append(cost)


def default_path() -> Path:
    from moa.catalog import cache_dir

    return cache_dir() / "responses.sqlite3"


def model_id(model: str) -> str:
    """A GGUF path counts by its file name, so moving the model cache keeps the answers."""
    if model.endswith(".gguf") or ("/" in model and Path(model).is_absolute()):
        return Path(model).name
    return model


def cacheable(request: Request) -> bool:
    """Deterministic requests only: temperature 0 or an explicit seed."""
    return request.settings.temperature == 0 or request.settings.seed is not None


def _message_key(m: Message) -> list[Any]:
    """A message as the key holds it: [role, content], and its tool fields where it has any
    (so the keys of plain conversations are those of before tools)."""
    if not (m.tool_calls or m.tool_call_id or m.name):
        return [m.role, m.content]
    calls = [[c.id, c.name, c.arguments] for c in m.tool_calls]
    return [m.role, m.content, calls, m.tool_call_id, m.name]


def request_key(namespace: str, request: Request) -> str:
    payload: dict[str, Any] = {
        "v": KEY_VERSION,
        "ns": namespace,
        "model": model_id(request.model),
        "messages": [_message_key(m) for m in request.messages],
        # temperature 0 and 0.0 are one request: integral floats are written as integers
        "settings": {
            k: int(v) if isinstance(v, float) and v.is_integer() else v
            for k, v in request.settings.to_dict().items()
        },
    }
    if request.act is not None:
        payload["act"] = request.act.to_dict()
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """Answers in one SQLite file, shared safely by threads and processes."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses "
                "(key TEXT PRIMARY KEY, model TEXT, value TEXT, created REAL)"
            )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, model, json.dumps(value, ensure_ascii=False), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _completion(value: dict[str, Any]) -> Completion:
    return Completion(
        text=value["text"],
        usage=Usage(value.get("input_tokens", 0), value.get("output_tokens", 0)),
        finish_reason=value.get("finish_reason"),
        tool_calls=tuple(ToolCall(*c) for c in value.get("tool_calls") or ()),
        reasoning=value.get("reasoning"),
    )


class CachedBackend(Backend):
    """Wraps any backend. `concurrency` bounds the calls in flight through this wrapper, so the
    time noted for each is its own (for local models, that run one at a time anyway)."""

    def __init__(
        self,
        inner: Backend,
        store: ResponseCache,
        *,
        namespace: str = "",
        concurrency: int | None = None,
        read: bool = True,
        write: bool = True,
    ) -> None:
        self.inner = inner
        self.store = store
        self.namespace = namespace
        self.read = read
        self.write = write
        self._gate = asyncio.Semaphore(concurrency) if concurrency else None

    def __repr__(self) -> str:
        return f"CachedBackend({self.inner!r}, namespace={self.namespace!r})"

    def _lookup(self, request: Request) -> tuple[str | None, dict[str, Any] | None]:
        if not cacheable(request):
            return None, None
        key = request_key(self.namespace, request)
        return key, self.store.get(key) if self.read else None

    def _hit(self, request: Request, value: dict[str, Any]) -> Completion:
        completion = _completion(value)
        _note(
            CallCost(
                request.model,
                completion.usage.input_tokens,
                completion.usage.output_tokens,
                float(value.get("seconds", 0.0)),
                True,
            )
        )
        return completion

    def _done(self, key: str | None, request: Request, done: Completion, seconds: float) -> None:
        usage = done.usage
        _note(CallCost(request.model, usage.input_tokens, usage.output_tokens, seconds, False))
        if key is not None and self.write:
            value = {
                "text": done.text,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "finish_reason": done.finish_reason,
                "seconds": round(seconds, 3),
            }
            if done.tool_calls:
                value["tool_calls"] = [[c.id, c.name, c.arguments] for c in done.tool_calls]
            if done.reasoning:
                value["reasoning"] = done.reasoning
            self.store.put(key, model_id(request.model), value)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._gate is None:
            yield
        else:
            async with self._gate:
                yield

    async def complete(self, request: Request) -> Completion:
        key, value = self._lookup(request)
        if value is not None:
            return self._hit(request, value)
        async with self._slot():
            start = time.monotonic()
            done = await self.inner.complete(request)
            self._done(key, request, done, time.monotonic() - start)
        return done

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        key, value = self._lookup(request)
        if value is not None:
            done = self._hit(request, value)
            calls = tuple(
                ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(done.tool_calls)
            )
            yield Delta(text=done.text, reasoning=done.reasoning or "", tool_calls=calls)
            yield Delta(usage=done.usage, finish_reason=done.finish_reason)
            return
        async with self._slot():
            start = time.monotonic()
            fold = Fold()
            async for delta in self.inner.stream(request):
                fold.add(delta)
                yield delta
            self._done(key, request, fold.completion(), time.monotonic() - start)

    def context_window(self, model: str) -> int | None:
        return self.inner.context_window(model)

    def count_tokens(self, model: str, text: str) -> int | None:
        return self.inner.count_tokens(model, text)

    def configure_model(self, model: str, *, n_ctx: int) -> None:
        self.inner.configure_model(model, n_ctx=n_ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()
