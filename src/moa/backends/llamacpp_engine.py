"""The engine under `LlamaCppBackend`: one loaded GGUF file in llama.cpp's server (xllamacpp),
its slots, and the worker threads that run requests on it.

A request becomes a `Member`; members that differ only by consecutive seeds run as one engine
request with `n` choices (`seed_runs`). `run_group` waits for a slot per member, hands each
streamed chunk to its member's event loop, and gives the slots back; the engine's callback
returns True once no member listens, which stops the generation at the next token.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from moa.errors import BackendError, ConfigError, ContextLengthError, ModelNotAvailable
from moa.types import Act, Delta, Request, ToolCallDelta, Usage

DEFAULT_TEMPERATURE = 0.2  # where a request sets none (what the project's answers assume)
POLL = 0.05  # seconds between checks of the cancel flags while waiting for slots

Item = tuple[str, Any]  # ("delta" | "done", Delta) or ("error", BackendError)
_constructing = threading.Lock()  # one engine starts at a time (its init is process-global)


@dataclass(eq=False)
class Member:
    """One request on its way: where its pieces go, and whether its consumer still listens."""

    request: Request
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Item]
    cancel: threading.Event = field(default_factory=threading.Event)
    finish: str | None = None
    done: bool = False

    def emit(self, item: Item) -> None:
        if self.cancel.is_set():
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening
            self.cancel.set()


class Engine:
    """One loaded file: the engine, its slots, and the requests waiting for siblings."""

    def __init__(self, server: Any, path: str, n_ctx: int, parallel: int, home: str, key: str):
        self.server = server
        self.path = path
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.home = home  # the private directory of the socket
        self.key = key
        self.free = parallel
        self.slots = threading.Condition()
        self.running: set[Member] = set()
        self.pending: dict[Any, list[Member]] = {}
        self.lock = threading.Lock()

    def take(self, members: list[Member]) -> bool:
        """Wait for a slot for each member, unless all of them stop listening first."""
        with self.slots:
            while self.free < len(members):
                if all(m.cancel.is_set() for m in members):
                    return False
                self.slots.wait(POLL)
            self.free -= len(members)
            self.running.update(members)
            return True

    def give(self, members: list[Member]) -> None:
        with self.slots:
            self.free += len(members)
            self.running.difference_update(members)
            self.slots.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Stop what runs, wait for the slots to come back, free the engine."""
        with self.slots:
            for member in self.running:
                member.cancel.set()
            self.slots.wait_for(lambda: self.free == self.parallel, timeout)
        self.server = None  # the engine stops and frees its memory when the last reference goes
        shutil.rmtree(self.home, ignore_errors=True)

    def count(self, text: str) -> int:
        """`text`'s tokens by the model's own tokenizer, from the engine's /tokenize."""
        address = self.server.listening_address
        if address.startswith("unix://"):
            conn: http.client.HTTPConnection = UnixConnection(address[len("unix://") :])
        else:
            host, _, port = address.removeprefix("http://").rpartition(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
        body = json.dumps({"content": text, "add_special": False})
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        try:
            conn.request("POST", "/tokenize", body, headers)
            reply = conn.getresponse()
            data = json.loads(reply.read())
        finally:
            conn.close()
        if reply.status != 200:
            raise BackendError(f"the engine could not count tokens: {data}", status=reply.status)
        return len(data["tokens"])


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def import_engine() -> Any:
    """xllamacpp, or a ConfigError that names the extra to install."""
    try:
        import xllamacpp
    except ImportError as exc:
        raise ConfigError(
            "local models need llama.cpp (xllamacpp): pip install 'mixture-of-agents[local]'"
        ) from exc
    return xllamacpp


def start(model: str, path: str, *, n_ctx: int, parallel: int, threads: int, cache: int) -> Engine:
    """Load `path` with `parallel` slots of `n_ctx` tokens; a file that does not load is
    ModelNotAvailable."""
    xllamacpp = import_engine()
    home = tempfile.mkdtemp(prefix="moa-llama-")
    key = secrets.token_urlsafe(24)
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = n_ctx * parallel  # split evenly: each slot holds n_ctx tokens
    params.n_parallel = parallel
    params.kv_unified = False  # a cache per slot: a sequence's arithmetic ignores its company
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cache_ram_mib = cache
    params.n_threads_http = 1
    params.endpoint_metrics = True
    # warmup and fit_params stay at their defaults: warmup off with fit on hung the load
    # (xllamacpp 2026.10.11549)
    params.verbosity = 3 if os.environ.get("MOA_DEBUG") else -1
    params.api_keys = [key]
    if hasattr(socket, "AF_UNIX"):  # else the default: loopback, a free port, behind the key
        params.hostnames = [os.path.join(home, "engine.sock")]
    try:
        with _constructing:
            server = xllamacpp.Server(params)
    except RuntimeError as exc:
        shutil.rmtree(home, ignore_errors=True)
        raise ModelNotAvailable(
            f"{model}: llama.cpp could not load the file (not a complete GGUF model?); "
            "MOA_DEBUG=1 shows its log"
        ) from exc
    return Engine(server, path, n_ctx, parallel, home, key)


def engine_error(error: Any, model: str) -> BackendError:
    if not isinstance(error, dict):
        return BackendError(f"the engine failed: {error}", model=model)
    status = error.get("code") if isinstance(error.get("code"), int) else None
    if error.get("type") == "exceed_context_size_error":
        return ContextLengthError(
            f"the prompt is {error.get('n_prompt_tokens')} tokens; "
            f"the context window is {error.get('n_ctx')}",
            model=model,
            status=status,
        )
    return BackendError(str(error.get("message") or error), model=model, status=status)


def call_schema(act: Act) -> dict[str, Any]:
    """The JSON schema of an answer that is a call of one of the act's tools ({name,
    arguments}), parallel calls ({tool_calls: [...]}) unless they are turned off, or, where
    the model may also answer in text (tool_choice auto), {answer: text}."""
    forced = act.tool_choice not in ("auto", "required")
    tools = [t for t in act.tools if not forced or t.name == act.tool_choice]
    one: dict[str, Any] = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": dict(t.parameters)},
                "required": ["name", "arguments"],
            }
            for t in tools
        ]
    }
    options = [one]
    if act.parallel_tool_calls is not False:
        many = {"type": "array", "items": one, "minItems": 1}
        options.append(
            {"type": "object", "properties": {"tool_calls": many}, "required": ["tool_calls"]}
        )
    if act.tool_choice == "auto":
        text = {"type": "string", "minLength": 1}
        options.append({"type": "object", "properties": {"answer": text}, "required": ["answer"]})
    return {"anyOf": options}


def uses_call_schema(act: Act | None, tool_mode: str) -> bool:
    """Whether the engine holds the answer to `call_schema`."""
    if act is None or not act.calls_tools:
        return False
    return tool_mode == "schema" or act.tool_choice != "auto"


def unwrap(text: str) -> str:
    """An answer held to `call_schema`: the text of {answer: text}, else the JSON as it is
    (calls, read by `moa.toolcalls`)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and isinstance(value.get("answer"), str) and len(value) == 1:
        return str(value["answer"])
    return text


def act_fields(act: Act | None, tool_mode: str) -> dict[str, Any]:
    """The request fields that carry `act` to the engine. Tools go to the chat template, which
    shows them to the model; the engine's own forcing of a call (tool_choice required or
    named) is never asked for: with the Qwen2.5 templates it wrote the call, then blank lines
    up to max_tokens (xllamacpp 2026.10.11549). Instead a call is read from the text (`text`
    mode, the checks in `moa.toolcalls`), or the answer is held to `call_schema` by the
    engine's grammar (`schema` mode, and any forced choice)."""
    if act is None:
        return {}
    body: dict[str, Any] = {}
    if act.tools:
        body["tools"] = [t.to_dict() for t in act.tools]
        body["tool_choice"] = "auto" if act.calls_tools else "none"
        if act.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = act.parallel_tool_calls
    if uses_call_schema(act, tool_mode):
        spec = {"name": "answer", "schema": call_schema(act)}
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif act.response_format is not None and not act.calls_tools:
        body["response_format"] = act.response_format.to_dict()
    return body


def request_body(members: list[Member], tool_mode: str = "text") -> dict[str, Any]:
    """The engine request (OpenAI's chat format) for `members`, which differ only by seed."""
    first = members[0].request
    s = first.settings
    body: dict[str, Any] = {
        "messages": [m.to_dict() for m in first.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": DEFAULT_TEMPERATURE if s.temperature is None else s.temperature,
    }
    if s.max_tokens is not None:
        body["max_tokens"] = s.max_tokens
    if s.top_p is not None:
        body["top_p"] = s.top_p
    if s.stop:
        body["stop"] = list(s.stop)
    if s.seed is not None:
        body["seed"] = s.seed & 0xFFFFFFFF
    if s.logprobs and not (first.act and first.act.tools):
        # the engine refuses logprobs beside tools ("not supported with tools + stream"):
        # an answer that may call tools goes without them (its vote weighs 1)
        body["logprobs"], body["top_logprobs"] = True, 1
    if len(members) > 1:
        body["n"] = len(members)  # choice i has seed + i and shares the prompt's evaluation
    body.update(act_fields(first.act, tool_mode))
    return body


def _delta(choice: dict[str, Any]) -> Delta | None:
    """A streamed choice's piece: text, log-probabilities, reasoning, tool-call pieces."""
    delta = choice.get("delta") or {}
    text = delta.get("content") or ""
    probs = (choice.get("logprobs") or {}).get("content") or None
    thought = delta.get("reasoning_content") or ""
    calls = tuple(
        ToolCallDelta(
            int(c.get("index", 0)),
            c.get("id") or None,
            (c.get("function") or {}).get("name") or None,
            (c.get("function") or {}).get("arguments") or "",
        )
        for c in delta.get("tool_calls") or ()
    )
    if not (text or probs or thought or calls):
        return None
    logprobs = tuple(float(p["logprob"]) for p in probs) if probs else None
    return Delta(text=text, logprobs=logprobs, reasoning=thought, tool_calls=calls)


def generate(engine: Engine, members: list[Member], tool_mode: str = "text") -> None:
    """Run one engine request in this thread, handing each choice's pieces to its member."""
    name = members[0].request.model
    failure: list[BackendError] = []
    last: list[Member] = []  # the member whose finish arrived last: the next usage is its

    def on_chunk(chunk: dict[str, Any]) -> bool:
        try:
            if "error" in chunk:
                failure.append(engine_error(chunk["error"], name))
                return True
            for choice in chunk.get("choices") or ():
                member = members[int(choice.get("index", 0))]
                if (piece := _delta(choice)) is not None:
                    member.emit(("delta", piece))
                if choice.get("finish_reason"):
                    member.finish = str(choice["finish_reason"])
                    last[:] = [member]
            if (usage := chunk.get("usage")) and last:
                member = last.pop()
                member.done = True
                tokens = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
                member.emit(("done", Delta(usage=tokens, finish_reason=member.finish)))
            return all(m.done or m.cancel.is_set() for m in members)
        except Exception as exc:  # the engine swallows a callback's exceptions: keep it
            failure.append(BackendError(f"unexpected engine output: {exc!r}", model=name))
            return True

    engine.server.handle_chat_completions(request_body(members, tool_mode), on_chunk)
    error = failure[0] if failure else BackendError("the engine ended an answer early", model=name)
    for member in members:
        if not member.done:
            member.emit(("error", error))


def run_group(engine: Engine, members: list[Member], tool_mode: str = "text") -> None:
    """A worker thread: wait for slots, generate, give the slots back."""
    try:
        if not engine.take(members):
            return
        try:
            generate(engine, members, tool_mode)
        finally:
            engine.give(members)
    except Exception as exc:
        error = exc if isinstance(exc, BackendError) else BackendError(f"{exc!r}")
        for member in members:
            member.emit(("error", error))


def seed_runs(members: list[Member], parallel: int) -> list[list[Member]]:
    """Members of one prompt, grouped into runs of consecutive seeds of at most `parallel`."""
    seeded = sorted(
        (m for m in members if m.request.settings.seed is not None),
        key=lambda m: m.request.settings.seed or 0,
    )
    groups: list[list[Member]] = [[m] for m in members if m.request.settings.seed is None]
    run: list[Member] = []
    for member in seeded:
        seed = member.request.settings.seed or 0
        if run and (seed != (run[-1].request.settings.seed or 0) + 1 or len(run) == parallel):
            groups.append(run)
            run = []
        run.append(member)
    if run:
        groups.append(run)
    return groups


def launch(group: list[Member], engine: Engine, tool_mode: str = "text") -> None:
    threading.Thread(
        target=run_group, args=(engine, group, tool_mode), name="moa-llamacpp", daemon=True
    ).start()


def flush(engine: Engine, key: Any, tool_mode: str = "text") -> None:
    with engine.lock:
        members = engine.pending.pop(key, [])
    for group in seed_runs(members, engine.parallel):
        launch(group, engine, tool_mode)


def merge_key(request: Request) -> Any:
    """Requests that may share one engine request: everything but the seed is the same."""
    messages = json.dumps([m.to_dict() for m in request.messages], sort_keys=True)
    act = json.dumps(request.act.to_dict(), sort_keys=True) if request.act else None
    return messages, act, request.settings.model_copy(update={"seed": None})
