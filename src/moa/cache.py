"""A caching Backend wrapper: deterministic answers are kept on disk and reused.

    store = ResponseCache()                               # <moa cache dir>/responses.sqlite3
    resolver = Resolver(wrap=lambda provider, b: CachedBackend(b, store, namespace=provider))

The key is the provider, the model (a GGUF path counts by its file name), the messages (tool
calls and results included), the settings and what the call may do (tools, tool choice,
response format), so a proposer's answer is reused by every recipe and run that asks the same thing.
Only deterministic requests are cached: temperature 0, or an explicit seed. Anything else goes
to the backend every time.

A cached backend is a metered one (`moa.meter`): each call, hit or miss, notes its cost in the
ledger of the current context (`recording()`), a hit with the seconds it took when it was
generated, so an evaluation can report what a question costs without a cache even when it was
served from one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from moa.backends.base import Backend
from moa.meter import CallCost, MeteredBackend, note, recording
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
        logprobs=tuple(value["logprobs"]) if value.get("logprobs") is not None else None,
    )


class CachedBackend(MeteredBackend):
    """Wraps any backend: deterministic answers come from the store when it has them, and are
    kept when it does not. Every call is metered (`moa.meter.MeteredBackend`)."""

    def __init__(
        self,
        inner: Backend,
        store: ResponseCache,
        *,
        namespace: str = "",
        concurrency: int | None = None,
    ) -> None:
        super().__init__(inner, concurrency=concurrency)
        self.store = store
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"CachedBackend({self.inner!r}, namespace={self.namespace!r})"

    def _hit(self, request: Request) -> Completion | None:
        if not cacheable(request):
            return None
        value = self.store.get(request_key(self.namespace, request))
        if value is None:
            return None
        completion = _completion(value)
        usage = completion.usage
        seconds = float(value.get("seconds", 0.0))
        note(CallCost(request.model, usage.input_tokens, usage.output_tokens, seconds, True))
        return completion

    def _metered(self, request: Request, done: Completion, seconds: float) -> None:
        super()._metered(request, done, seconds)
        if cacheable(request):
            value = {
                "text": done.text,
                "input_tokens": done.usage.input_tokens,
                "output_tokens": done.usage.output_tokens,
                "finish_reason": done.finish_reason,
                "seconds": round(seconds, 3),
                # kept so that a vote weighted by confidence reads a cached answer as a fresh one
                "logprobs": list(done.logprobs) if done.logprobs is not None else None,
            }
            if done.tool_calls:
                value["tool_calls"] = [[c.id, c.name, c.arguments] for c in done.tool_calls]
            if done.reasoning:
                value["reasoning"] = done.reasoning
            self.store.put(request_key(self.namespace, request), model_id(request.model), value)

    async def complete(self, request: Request) -> Completion:
        hit = self._hit(request)
        return hit if hit is not None else await super().complete(request)

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        hit = self._hit(request)
        if hit is not None:
            calls = tuple(
                ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(hit.tool_calls)
            )
            yield Delta(
                text=hit.text,
                reasoning=hit.reasoning or "",
                tool_calls=calls,
                logprobs=hit.logprobs,
            )
            yield Delta(usage=hit.usage, finish_reason=hit.finish_reason)
            return
        async for delta in super().stream(request):
            yield delta
