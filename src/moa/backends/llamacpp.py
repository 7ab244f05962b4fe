"""Local GGUF models, in-process, on llama.cpp's own server built into a Python module
(xllamacpp: prebuilt wheels, nothing compiles).

`Request.model` is the path of a GGUF file. Each file is loaded once per process (per context
size and slot count) and shared by every backend instance, agent and layer. The engine decodes
up to `parallel` requests to one model together (continuous batching), each in its own slot
with its own sampler and seed and its own KV cache, so that a greedy answer decoded beside
others is the greedy answer decoded alone.

Requests that arrive together with one prompt and one set of settings, differing only in
consecutive seeds (a recipe's `n:` samples), become one engine request with `n` choices: the
prompt is processed once and copied into the other slots, and choice i is sampled with seed
`first + i`, the answer a lone request with that seed gets.

A request that acts shows its tools to the model through the file's chat template. How a call
comes back is `tool_mode`: `text` (the default) lets the model write it as it likes (the
Qwen2.5-Coder models write fenced JSON), read by `moa.toolcalls`; `schema` holds every answer
to a JSON schema of the declared calls (or `{answer: text}` where text is allowed) through the
engine's grammar. A forced choice (`required`, a named tool) always uses the schema. A
`json_schema` response format is the engine's constrained decoding (`benchmarks/tool_calls.py`
measured both, docs/tools.md).

Tokens reach the event loop through the engine's callback as they are decoded. A consumer that
stops (closes the stream, is cancelled, times out) stops its slot at the next token: the
callback returns True. Samples merged into one engine request stop when all their consumers
have stopped; until then a stopped sample's tokens are dropped.

llama.cpp prints nothing unless $MOA_DEBUG is set. The engine's HTTP side, used here only to
count tokens, listens on a unix socket in a private directory (on loopback with a random key
where there are no unix sockets).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Mapping

from moa.backends.base import Backend
from moa.backends.llamacpp_engine import (
    Engine,
    Member,
    flush,
    import_engine,
    launch,
    merge_key,
    start,
    unwrap,
    uses_call_schema,
)
from moa.errors import BackendError, BackendTimeout, ConfigError, MoAError, ModelNotAvailable
from moa.types import Delta, Request

TOOL_MODES = ("text", "schema")

__all__ = [
    "LlamaCppBackend",
    "default_threads",
    "engine_metrics",
    "load_stats",
    "loaded_models",
    "unload_all",
]

DEFAULT_N_CTX = 4096  # tokens per request (per slot)
DEFAULT_PARALLEL = 4  # slots: requests to one model decoded together
DEFAULT_CACHE_MIB = 256  # the engine's host-memory prompt cache (its own default is 8 GiB)
MERGE_WINDOW = 0.005  # seconds a request waits for siblings with the same prompt

_models: dict[tuple[str, int, int], Engine] = {}  # (real path, n_ctx, parallel)
_loading: dict[tuple[str, int, int], threading.Lock] = {}
_registry = threading.Lock()
_loads: Counter[str] = Counter()


def load_stats() -> dict[str, int]:
    """How many times each file (real path) was loaded in this process."""
    with _registry:
        return dict(_loads)


def loaded_models() -> list[tuple[str, int]]:
    """(real path, n_ctx) of every model now held in memory."""
    with _registry:
        return [(path, n_ctx) for path, n_ctx, _ in _models]


def engine_metrics(model: str) -> dict[str, float]:
    """llama.cpp's counters for the file `model` (a path), summed over its loaded instances:
    `prompt_tokens_total` (prompt tokens evaluated), `tokens_predicted_total`, ... ({} when
    it is not loaded)."""
    path = os.path.realpath(os.path.expanduser(model))
    with _registry:
        engines = [m.server for (p, _, _), m in _models.items() if p == path and m.server]
    totals: dict[str, float] = {}
    for engine in engines:
        for line in engine.handle_metrics().splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("llamacpp:"):
                key = name.removeprefix("llamacpp:")
                totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def unload_all() -> None:
    """Free every loaded model; generations in progress are stopped first."""
    with _registry:
        held = list(_models.values())
        _models.clear()
    for model in held:
        model.close()


atexit.register(unload_all)  # stop the engines' threads before the interpreter goes


def default_threads() -> int:
    """$MOA_THREADS, else every core of a small machine, else half (the physical cores)."""
    if env := os.environ.get("MOA_THREADS"):
        return max(1, int(env))
    cores = os.cpu_count() or 1
    return cores if cores <= 2 else cores // 2


class LlamaCppBackend(Backend):
    """GGUF files run in this process. Options are keyword-only; see the module docstring.

    `n_ctx` is the context each request gets (its slot's size); `n_ctx_by_model` overrides it
    per path, as does `configure_model`. `n_threads` defaults to `default_threads()`;
    `parallel` (default 4, or $MOA_PARALLEL) is the number of slots of each model;
    `share_prompts` merges requests that differ only by seed into one engine request;
    `prompt_cache_mib` bounds the engine's host-memory prompt cache. Models stay loaded
    after `aclose` (see `unload_all`).
    """

    def __init__(
        self,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_ctx_by_model: Mapping[str, int] | None = None,
        n_threads: int | None = None,
        parallel: int | None = None,
        share_prompts: bool = True,
        prompt_cache_mib: int = DEFAULT_CACHE_MIB,
        tool_mode: str = "text",
    ) -> None:
        parallel = parallel or int(os.environ.get("MOA_PARALLEL", DEFAULT_PARALLEL))
        if parallel < 1:
            raise ConfigError("parallel: must be at least 1")
        if n_ctx < 16:
            raise ConfigError("n_ctx: must be at least 16")
        if tool_mode not in TOOL_MODES:
            raise ConfigError(f"tool_mode: expected one of {TOOL_MODES}, got {tool_mode!r}")
        import_engine()  # say now, not at the first call, that the extra is missing
        self._tool_mode = tool_mode
        self._n_ctx = n_ctx
        self._n_ctx_by_model = {os.path.realpath(k): v for k, v in (n_ctx_by_model or {}).items()}
        self._n_threads = n_threads or default_threads()
        self._parallel = parallel
        self._share = share_prompts
        self._cache_mib = max(0, prompt_cache_mib)

    def __repr__(self) -> str:
        return f"LlamaCppBackend(n_ctx={self._n_ctx}, parallel={self._parallel})"

    def configure_model(self, model: str, *, n_ctx: int) -> None:
        """Load `model` (a path) with this context per request from now on."""
        self._n_ctx_by_model[os.path.realpath(os.path.expanduser(model))] = n_ctx

    def _key(self, model: str) -> tuple[str, int, int]:
        path = os.path.realpath(os.path.expanduser(model))
        return path, self._n_ctx_by_model.get(path, self._n_ctx), self._parallel

    def _load(self, model: str) -> Engine:
        """The shared loaded model; the first caller loads it while later ones wait."""
        key = self._key(model)
        with _registry:
            if key in _models:
                return _models[key]
            gate = _loading.setdefault(key, threading.Lock())
        with gate:
            with _registry:
                if key in _models:
                    return _models[key]
            path, n_ctx, parallel = key
            if not os.path.isfile(path):
                raise ModelNotAvailable(f"{model}: no such GGUF file")
            loaded = start(
                model,
                path,
                n_ctx=n_ctx,
                parallel=parallel,
                threads=self._n_threads,
                cache=self._cache_mib,
            )
            with _registry:
                _models[key] = loaded
                _loads[path] += 1
            return loaded

    def _held(self, model: str) -> Engine | None:
        with _registry:
            return _models.get(self._key(model))

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        if not uses_call_schema(request.act, self._tool_mode):
            async for delta in self._stream(request):
                yield delta
            return
        held: list[str] = []  # JSON held to the call schema: unwrapped once whole
        async for delta in self._stream(request):
            held.append(delta.text)
            if delta.finish_reason is not None:
                yield Delta(text=unwrap("".join(held)))
                yield Delta(usage=delta.usage, finish_reason=delta.finish_reason)
            elif delta.reasoning or delta.tool_calls:
                yield Delta(reasoning=delta.reasoning, tool_calls=delta.tool_calls)

    async def _stream(self, request: Request) -> AsyncIterator[Delta]:
        try:
            model = self._held(request.model)
            if model is None:
                model = await asyncio.to_thread(self._load, request.model)
        except MoAError:
            raise
        except Exception as exc:
            raise BackendError(f"{exc!r}", model=request.model) from exc
        loop = asyncio.get_running_loop()
        member = Member(request, loop, asyncio.Queue())
        self._submit(model, member, loop)
        deadline = None if request.timeout is None else loop.time() + request.timeout
        try:
            while True:
                wait = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    kind, value = await asyncio.wait_for(member.queue.get(), wait)
                except TimeoutError:
                    raise BackendTimeout(
                        f"no answer within {request.timeout} s", model=request.model
                    ) from None
                if kind == "error":
                    raise value
                yield value
                if kind == "done":
                    return
        finally:
            member.cancel.set()  # the engine stops this slot at its next token

    def _submit(self, model: Engine, member: Member, loop: asyncio.AbstractEventLoop) -> None:
        """Start the request now, or after a moment in which siblings may join it."""
        seed = member.request.settings.seed
        if not self._share or seed is None or not 0 <= seed < 2**31:
            launch([member], model, self._tool_mode)
            return
        key = merge_key(member.request)
        with model.lock:
            first = key not in model.pending
            model.pending.setdefault(key, []).append(member)
        if first:
            loop.call_later(MERGE_WINDOW, flush, model, key, self._tool_mode)

    def context_window(self, model: str) -> int | None:
        """The context each request to the file gets."""
        return self._key(model)[1]

    def count_tokens(self, model: str, text: str) -> int | None:
        """Tokens by the model's own tokenizer, if it is loaded (never loads it to count)."""
        loaded = self._held(model)
        if loaded is None or loaded.server is None:
            return None
        return loaded.count(text)

    async def aclose(self) -> None:
        """Nothing to close: the models stay loaded for other users (see `unload_all`)."""
