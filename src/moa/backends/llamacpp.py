"""Local GGUF models, in-process, through llama-cpp-python.

`Request.model` is the path of a GGUF file. Each file is loaded once per process (per context
size) and shared by every backend instance, agent and layer. With `parallel` > 1 (the default)
requests to one model are decoded together by continuous batching (moa.backends.llamacpp_batch):
several agents or Self-MoA samples of one model cost little more than one. With `parallel=1`,
or for a model without a chat template, generation runs in a worker thread, one request at a
time per model, and at most `max_concurrency` generations in the whole process. Either way
tokens are handed to the event loop as they come, and cancelling the consumer stops the
generation at its next token.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moa.backends.base import Backend, collect
from moa.backends.llamacpp_batch import Batcher, Job
from moa.errors import (
    BackendError,
    BackendTimeout,
    ConfigError,
    ContextLengthError,
    MoAError,
    ModelNotAvailable,
)
from moa.types import Completion, Delta, Request, Usage

__all__ = ["LlamaCppBackend", "load_stats", "loaded_models", "unload_all"]

DEFAULT_N_CTX = 4096
DEFAULT_PARALLEL = 4  # sequences of one model decoded together
_POLL = 0.05  # seconds between checks of the cancel flag while waiting for the model


@dataclass
class _Loaded:
    llm: Any
    lock: threading.Lock
    n_ctx: int
    formatter: Any | None  # the GGUF's chat template, to count prompt tokens as llama-cpp does
    batcher: Batcher | None = None


_models: dict[tuple[str, int, int], _Loaded] = {}  # (real path, n_ctx, parallel)
_loading: dict[tuple[str, int, int], threading.Lock] = {}
_registry = threading.Lock()
_loads: Counter[str] = Counter()
_slots: dict[int, threading.Semaphore] = {}
# one model constructed at a time: llama-cpp-python silences a load by pointing the process's
# file descriptors 1 and 2 at /dev/null and back, and two loads in threads at once can leave
# them pointing there for good (the CLI then printed nothing at all)
_constructing = threading.Lock()


def load_stats() -> dict[str, int]:
    """How many times each file (real path) was loaded in this process."""
    with _registry:
        return dict(_loads)


def loaded_models() -> list[tuple[str, int]]:
    """(real path, n_ctx) of every model now held in memory."""
    with _registry:
        return [(path, n_ctx) for path, n_ctx, _ in _models]


def unload_all() -> None:
    """Free every loaded model, waiting for generations in progress to end."""
    with _registry:
        held = list(_models.values())
        _models.clear()
    for loaded in held:
        if loaded.batcher is not None:
            loaded.batcher.close()
        with loaded.lock:
            close = getattr(loaded.llm, "close", None)
            if close is not None:
                close()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(
            "local models need llama-cpp-python: pip install 'mixture-of-agents[local]'"
        ) from exc
    return llama_cpp


def _slot(max_concurrency: int) -> threading.Semaphore:
    """The process-wide semaphore shared by every backend with this concurrency."""
    with _registry:
        return _slots.setdefault(max_concurrency, threading.Semaphore(max_concurrency))


def _acquire(lock: threading.Lock | threading.Semaphore, cancel: threading.Event) -> bool:
    """Wait for `lock` unless cancelled first."""
    while not lock.acquire(timeout=_POLL):
        if cancel.is_set():
            return False
    if cancel.is_set():
        lock.release()
        return False
    return True


def _formatter(llm: Any) -> Any | None:
    """The formatter llama-cpp uses for this model, when it is the GGUF's own template."""
    if llm.chat_handler is not None or llm.chat_format != "chat_template.default":
        return None
    from llama_cpp import llama_chat_format

    def text(token: int) -> str:
        return str(llm._model.token_get_text(token)) if token != -1 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=text(llm.token_eos()),
        bos_token=text(llm.token_bos()),
        stop_token_ids=[llm.token_eos()],
    )


def _map_error(exc: BaseException, model: str) -> BaseException:
    if isinstance(exc, MoAError):
        return exc
    text = str(exc)
    if isinstance(exc, ValueError) and "context window" in text:
        return ContextLengthError(text, model=model)
    return BackendError(f"{type(exc).__name__}: {text}", model=model)


class LlamaCppBackend(Backend):
    """GGUF files run in this process. Options are keyword-only; see the module docstring.

    `n_ctx` is the context size a file is loaded with; `n_ctx_by_model` overrides it per path.
    `n_threads` defaults to `default_threads()`; `parallel` (default 4, or $MOA_PARALLEL) is how
    many requests to one model are decoded together. Models stay loaded after `aclose` (use
    `unload_all`).
    """

    def __init__(
        self,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_ctx_by_model: Mapping[str, int] | None = None,
        n_threads: int | None = None,
        n_batch: int = 512,
        verbose: bool = False,
        max_concurrency: int = 1,
        parallel: int | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigError("max_concurrency: must be at least 1")
        parallel = parallel or int(os.environ.get("MOA_PARALLEL", DEFAULT_PARALLEL))
        if parallel < 1:
            raise ConfigError("parallel: must be at least 1")
        self._parallel = parallel
        _import_llama_cpp()  # say now, not at the first call, that the extra is missing
        self._n_ctx = n_ctx
        self._n_ctx_by_model = {os.path.realpath(k): v for k, v in (n_ctx_by_model or {}).items()}
        self._n_threads = n_threads or default_threads()
        self._n_batch = n_batch
        self._verbose = verbose
        self._max_concurrency = max_concurrency

    def __repr__(self) -> str:
        return f"LlamaCppBackend(n_ctx={self._n_ctx}, parallel={self._parallel})"

    def configure_model(self, model: str, *, n_ctx: int) -> None:
        """Load `model` (a path) with this context size from now on."""
        self._n_ctx_by_model[os.path.realpath(model)] = n_ctx

    def _key(self, model: str) -> tuple[str, int, int]:
        path = os.path.realpath(os.path.expanduser(model))
        return path, self._n_ctx_by_model.get(path, self._n_ctx), self._parallel

    def _load(self, model: str) -> _Loaded:
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
            # batched, this context only serves the template and the tokenizer: keep it small
            llm = self._llama(model, path, min(n_ctx, 512) if parallel > 1 else n_ctx)
            formatter = _formatter(llm)
            batcher = None
            if parallel > 1 and formatter is not None:
                batcher = Batcher(
                    llm,
                    parallel=parallel,
                    n_ctx=n_ctx,
                    n_threads=self._n_threads,
                    n_batch=self._n_batch,
                )
            elif parallel > 1:  # no chat template: the plain path, with a full context
                llm.close()
                llm = self._llama(model, path, n_ctx)
            n_loaded = n_ctx if batcher is not None else int(llm.n_ctx())
            loaded = _Loaded(llm, threading.Lock(), n_loaded, formatter, batcher)
            with _registry:
                _models[key] = loaded
                _loads[path] += 1
            return loaded

    def _llama(self, model: str, path: str, n_ctx: int) -> Any:
        try:
            with _constructing:
                return _import_llama_cpp().Llama(
                    model_path=path,
                    n_ctx=n_ctx,
                    n_threads=self._n_threads,
                    n_threads_batch=self._n_threads,
                    n_batch=self._n_batch,
                    verbose=self._verbose,
                )
        except ValueError as exc:  # llama-cpp's way of saying the file did not load
            raise ModelNotAvailable(f"{model}: could not load the GGUF file: {exc}") from exc

    def _held(self, model: str) -> _Loaded | None:
        path = self._key(model)[0]
        with _registry:
            return next((v for (p, _, _), v in _models.items() if p == path), None)

    # the Backend protocol -------------------------------------------------------------------
    async def complete(self, request: Request) -> Completion:
        return await collect(self.stream(request))

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening
                cancel.set()

        try:
            batched = await asyncio.to_thread(self._submit, request, emit, cancel)
        except Exception as exc:
            raise _map_error(exc, request.model) from exc
        if not batched:
            worker = threading.Thread(
                target=self._work, args=(request, emit, cancel), name="moa-llamacpp", daemon=True
            )
            worker.start()
        deadline = None if request.timeout is None else loop.time() + request.timeout
        try:
            while True:
                wait = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    kind, value = await asyncio.wait_for(queue.get(), wait)
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
            cancel.set()  # stops the worker at its next token if it is still going

    def _submit(
        self,
        request: Request,
        emit: Callable[[tuple[str, Any]], None],
        cancel: threading.Event,
    ) -> bool:
        """Hand the request to the model's batcher; False when the model has none."""
        loaded = self._load(request.model)
        if loaded.batcher is None or loaded.formatter is None:
            return False
        formatted = loaded.formatter(messages=[m.to_dict() for m in request.messages])
        tokens = loaded.llm.tokenize(
            formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
        )
        stops = [*(request.settings.stop or ()), *_as_list(formatted.stop)]
        job = Job(
            tokens=list(tokens),
            settings=request.settings,
            stop=tuple(s for s in stops if s),
            emit=emit,
            cancel=cancel,
            model=request.model,
        )
        loaded.batcher.submit(job)
        return True

    def _work(
        self,
        request: Request,
        emit: Callable[[tuple[str, Any]], None],
        cancel: threading.Event,
    ) -> None:
        """The worker thread: wait for the model and a slot, generate, hand over each piece."""
        try:
            loaded = self._load(request.model)
            if not _acquire(loaded.lock, cancel):
                return
            try:
                slot = _slot(self._max_concurrency)
                if not _acquire(slot, cancel):
                    return
                try:
                    self._generate(loaded, request, emit, cancel)
                finally:
                    slot.release()
            finally:
                loaded.lock.release()
        except Exception as exc:  # raised on the event loop's side
            emit(("error", _map_error(exc, request.model)))

    def _generate(
        self,
        loaded: _Loaded,
        request: Request,
        emit: Callable[[tuple[str, Any]], None],
        cancel: threading.Event,
    ) -> None:
        llm = loaded.llm
        messages = [m.to_dict() for m in request.messages]
        prompt_tokens = self._prompt_tokens(loaded, messages)
        if prompt_tokens >= loaded.n_ctx:
            raise ContextLengthError(
                f"the prompt is {prompt_tokens} tokens; the context window is {loaded.n_ctx}",
                model=request.model,
            )
        if request.settings.seed is not None:
            # reusing a cached prompt prefix changes the logits slightly, and with them what
            # a seeded sampler picks: evaluate the whole prompt afresh to be reproducible
            llm.reset()
        chunks = llm.create_chat_completion(
            messages=messages, stream=True, **request.settings.params()
        )
        parts: list[str] = []
        finish: str | None = None
        try:
            for chunk in chunks:
                if cancel.is_set():
                    return
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    parts.append(text)
                    emit(("delta", Delta(text=text)))
                finish = choice.get("finish_reason") or finish
        finally:
            chunks.close()
        text = "".join(parts)
        output_tokens = len(llm.tokenize(text.encode(), add_bos=False, special=True)) if text else 0
        usage = Usage(prompt_tokens, output_tokens)
        emit(("done", Delta(usage=usage, finish_reason=finish or "stop")))

    @staticmethod
    def _prompt_tokens(loaded: _Loaded, messages: list[dict[str, str]]) -> int:
        """The prompt's length as llama-cpp will build it (an estimate without a template)."""
        llm = loaded.llm
        if loaded.formatter is not None:
            result = loaded.formatter(messages=messages)
            tokens = llm.tokenize(
                result.prompt.encode(), add_bos=not result.added_special, special=True
            )
            return len(tokens)
        text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        return len(llm.tokenize(text.encode(), add_bos=True, special=False)) + 4 * len(messages)

    def context_window(self, model: str) -> int | None:
        """The context size the file is (or would be) loaded with."""
        key = self._key(model)
        with _registry:
            loaded = _models.get(key)
        return loaded.n_ctx if loaded is not None else key[1]

    def count_tokens(self, model: str, text: str) -> int | None:
        """Tokens by the model's own tokenizer, if it is loaded (never loads it to count)."""
        loaded = self._held(model)
        if loaded is None:
            return None
        return len(loaded.llm.tokenize(text.encode(), add_bos=False, special=False))

    async def aclose(self) -> None:
        """Nothing to close: the models stay loaded for other users (see `unload_all`)."""


def default_threads() -> int:
    """$MOA_THREADS, else every core of a small machine, else half (the physical cores)."""
    if env := os.environ.get("MOA_THREADS"):
        return max(1, int(env))
    cores = os.cpu_count() or 1
    return cores if cores <= 2 else cores // 2


def _as_list(stop: Any) -> list[str]:
    if not stop:
        return []
    return [stop] if isinstance(stop, str) else [str(s) for s in stop]
