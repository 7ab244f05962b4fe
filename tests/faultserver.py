"""A fault-injecting OpenAI-compatible HTTP server on loopback, for tests and the soak benchmark.

Real sockets, real HTTP/1.1 (keep-alive, chunked SSE), no mocked clients. What each model does
is scripted by the test, one outcome per request, in order:

    with FaultServer() as server:
        server.script("m", rate_limited(retry_after=0.2), status(500), ok("fine"))
        server.respond("slow", ok(delay=5))          # every request, once the script is spent
        ...  # point a recipe at server.base_url (http://127.0.0.1:PORT/v1)
        assert len(server.requests("m")) == 3
        assert server.requests("slow")[0].disconnected  # the client hung up on us

Outcomes: `ok` (non-streaming, or SSE with usage when the client streams), `status` (any HTTP
error in OpenAI's error shape, with or without Retry-After), `rate_limited`, `reset` (the socket
is closed abruptly), `malformed` (a 200 whose JSON is cut), `empty_choices`, `cut_stream` (a
stream that stops mid-answer: no finish_reason, connection closed), `context_length` (shaped as
OpenAI, llama.cpp's server or vLLM shape theirs), and `unauthorized` (which may echo the key, as
careless servers do). Any of them can be made slow with `delay=`, or made to wait until a
request for another model has arrived with `.once_seen(model)` (an order, not a guessed time).

Every request is recorded (model, times, headers without Authorization, whether the client
disconnected before the answer was complete), so tests can count attempts and measure waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Kind = Literal[
    "ok",
    "status",
    "reset",
    "malformed",
    "empty_choices",
    "cut_stream",
    "unauthorized",
]
ContextStyle = Literal["openai", "llamacpp", "llamacpp-old", "vllm"]


@dataclass(frozen=True)
class Fault:
    """One scripted outcome. Build them with the functions below."""

    kind: Kind
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    text: str | None = None
    token_delay: float = 0.0
    after: int = 2  # cut_stream: pieces sent before the cut
    wait_for: str | None = None  # answer once a request for this model has arrived

    def slow(self, seconds: float) -> Fault:
        """The same outcome, `seconds` later."""
        return replace(self, delay=seconds)

    def once_seen(self, model: str) -> Fault:
        """The same outcome, given only once a request for `model` has reached the server."""
        return replace(self, wait_for=model)


def ok(text: str | None = None, *, delay: float = 0.0, token_delay: float = 0.0) -> Fault:
    """A normal answer (the default text names the model and counts the injected answers)."""
    return Fault("ok", text=text, delay=delay, token_delay=token_delay)


def _error_body(message: str, type_: str, code: object = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


_MESSAGES = {
    400: ("Invalid value for 'temperature'.", "invalid_request_error"),
    401: ("Incorrect API key provided.", "invalid_request_error"),
    403: ("You are not allowed to use this model.", "permission_error"),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error"),
    408: ("Request timed out.", "timeout"),
    409: ("Conflict.", "conflict"),
    429: ("Rate limit reached for requests.", "requests"),
    500: ("The server had an error while processing your request.", "server_error"),
    502: ("Bad gateway.", "server_error"),
    503: ("The engine is currently overloaded, please try again later.", "server_error"),
    529: ("Overloaded.", "overloaded_error"),
}


def status(
    code: int,
    *,
    retry_after: float | str | None = None,
    retry_after_ms: float | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Fault:
    """An HTTP error in OpenAI's shape (`body` replaces it), optionally with Retry-After."""
    message, type_ = _MESSAGES.get(code, (f"Error {code}.", "error"))
    extra = dict(headers or {})
    if retry_after is not None:
        extra["Retry-After"] = (
            retry_after if isinstance(retry_after, str) else format(retry_after, "g")
        )
    if retry_after_ms is not None:
        extra["retry-after-ms"] = format(retry_after_ms, "g")
    return Fault(
        "status",
        status=code,
        body=_error_body(message, type_, code) if body is None else body,
        headers=extra,
        delay=delay,
    )


def rate_limited(retry_after: float | str | None = None, *, delay: float = 0.0) -> Fault:
    return status(429, retry_after=retry_after, delay=delay)


def reset(*, delay: float = 0.0) -> Fault:
    """The connection is closed abruptly (RST) instead of an answer."""
    return Fault("reset", delay=delay)


def malformed(*, delay: float = 0.0) -> Fault:
    """A 200 whose JSON body is cut in the middle."""
    return Fault("malformed", delay=delay)


def empty_choices(*, delay: float = 0.0) -> Fault:
    return Fault("empty_choices", delay=delay)


def cut_stream(*, after: int = 2, delay: float = 0.0) -> Fault:
    """A stream that stops after `after` pieces: no finish_reason, the connection closed.

    A non-streaming request gets a body shorter than its Content-Length instead."""
    return Fault("cut_stream", after=after, delay=delay)


def unauthorized(*, echo_key: bool = False) -> Fault:
    """401; with `echo_key` the body repeats the key it was sent, as careless servers do."""
    return Fault("unauthorized", status=401, body={"echo": echo_key})


def context_length(
    style: ContextStyle = "openai", *, n_ctx: int = 4096, n_prompt: int = 5000
) -> Fault:
    """The error a server gives for a prompt that does not fit, in the shape it gives it."""
    if style == "openai":
        body: Any = _error_body(
            f"This model's maximum context length is {n_ctx} tokens. However, your messages "
            f"resulted in {n_prompt} tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
        )
    elif style == "llamacpp":  # llama.cpp's llama-server, recent
        body = {
            "error": {
                "code": 400,
                "message": f"request ({n_prompt} tokens) exceeds the available context size "
                f"({n_ctx} tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": n_prompt,
                "n_ctx": n_ctx,
            }
        }
    elif style == "llamacpp-old":  # llama.cpp's llama-server, 2024
        body = {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "invalid_request_error",
            }
        }
    else:  # vLLM's OpenAI server (no "error" wrapper in its older releases)
        body = {
            "object": "error",
            "message": f"This model's maximum context length is {n_ctx} tokens. However, you "
            f"requested {n_prompt} tokens ({n_prompt - 16} in the messages, 16 in the "
            "completion). Please reduce the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    return Fault("status", status=400, body=body)


# the record ---------------------------------------------------------------------------------
@dataclass
class Seen:
    """One request as the server saw it."""

    model: str
    path: str
    started: float  # time.monotonic() when the request was read
    headers: dict[str, str]  # lower-cased names, Authorization left out
    body: dict[str, Any]
    stream: bool
    outcome: str = ""
    key_sha256: str | None = None  # of the bearer token, never the token itself
    finished: float | None = None  # when the answer was complete, or the connection closed
    disconnected: bool = False  # the client hung up before the answer was complete

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    def prompt_chars(self) -> int:
        return sum(len(str(m.get("content", ""))) for m in self.messages)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


Chooser = Callable[[str, Seen], Fault]


class RandomFaults:
    """A chooser for soak runs: each request fails with probability `rate`, in one of the ways
    above picked at random (seeded); the others answer after `latency` seconds."""

    def __init__(
        self, rate: float, *, seed: int = 0, latency: float = 0.0, slow: float = 5.0
    ) -> None:
        self.rate = rate
        self.latency = latency
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.faults: list[tuple[str, Fault]] = [
            ("429", rate_limited()),
            ("429+Retry-After", rate_limited(0.05)),
            ("500", status(500)),
            ("503", status(503)),
            ("400", status(400)),
            ("401", status(401)),
            ("404", status(404)),
            ("slow", ok().slow(slow)),
            ("reset", reset()),
            ("malformed", malformed()),
            ("empty choices", empty_choices()),
            ("cut stream", cut_stream()),
            ("context length", context_length()),
        ]
        self.counts: dict[str, int] = defaultdict(int)

    def __call__(self, model: str, seen: Seen) -> Fault:
        with self._lock:
            if self._rng.random() >= self.rate:
                self.counts["ok"] += 1
                return ok(delay=self.latency)
            name, fault = self._rng.choice(self.faults)
            self.counts[name] += 1
        return fault if fault.delay else fault.slow(self.latency)


# the server ---------------------------------------------------------------------------------
class FaultServer:
    """An OpenAI-compatible server in a background thread, with scripted faults per model.

    `api_key`: when set, requests without `Authorization: Bearer <api_key>` get a 401.
    `n_ctx`: per model, a context window the server enforces itself (4 characters a token),
    answering with `context_style` errors when a prompt is longer.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        n_ctx: Mapping[str, int] | None = None,
        context_style: ContextStyle = "openai",
        chooser: Chooser | None = None,
    ) -> None:
        self.api_key = api_key
        self.n_ctx = dict(n_ctx or {})
        self.context_style: ContextStyle = context_style
        self.chooser = chooser
        self.seen: list[Seen] = []
        self._lock = threading.Condition()  # notified whenever a request starts or finishes
        self._scripts: dict[str, deque[Fault]] = defaultdict(deque)
        self._defaults: dict[str, Fault] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._arrived: dict[str, asyncio.Event] = {}  # by model; used in the server's loop only
        self.port = 0

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> FaultServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting ------------------------------------------------------------------------------
    def script(self, model: str, *faults: Fault) -> FaultServer:
        """Queue outcomes for `model`, used once each, in order."""
        with self._lock:
            self._scripts[model].extend(faults)
        return self

    def respond(self, model: str, fault: Fault) -> FaultServer:
        """What `model` does once its script is spent (by default: `ok()`)."""
        with self._lock:
            self._defaults[model] = fault
        return self

    def reset_record(self) -> None:
        with self._lock:
            self.seen.clear()

    # the record -----------------------------------------------------------------------------
    def requests(self, model: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if model is None or s.model == model]

    def gaps(self, model: str) -> list[float]:
        """Seconds between the end of each request for `model` and the start of the next."""
        seen = self.requests(model)
        return [b.started - (a.finished or a.started) for a, b in itertools.pairwise(seen)]

    def in_flight(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.finished is None]

    def wait_for(self, check: Callable[[list[Seen]], bool], timeout: float = 10.0) -> bool:
        """Block until `check(every request seen)` holds, woken as requests start and finish
        (no polling); False if it still fails after `timeout` seconds. From async code:
        `await asyncio.to_thread(server.wait_for, ...)`, so the event loop keeps running."""
        with self._lock:
            return self._lock.wait_for(lambda: check(self.seen), timeout)

    def wait_in_flight(self, count: int, model: str | None = None, timeout: float = 10.0) -> bool:
        """Block until at least `count` requests (for `model`) are in flight."""
        return self.wait_for(
            lambda seen: (
                sum(1 for s in seen if s.finished is None and model in (None, s.model)) >= count
            ),
            timeout,
        )

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no request is in flight (the server saw every hang-up)."""
        return self.wait_for(lambda seen: all(s.finished is not None for s in seen), timeout)

    def _finish(
        self, seen: Seen, outcome: str | None = None, *, disconnected: bool = False
    ) -> None:
        with self._lock:
            if outcome is not None:
                seen.outcome = outcome
            seen.disconnected = disconnected
            seen.finished = time.monotonic()  # last: a waiter sees the whole record
            self._lock.notify_all()

    # serving --------------------------------------------------------------------------------
    def _next(self, model: str, seen: Seen) -> Fault:
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                return queue.popleft()
            default = self._defaults.get(model)
        if default is not None:
            return default
        if self.chooser is not None:
            return self.chooser(model, seen)
        return ok()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            self._handlers.discard(task)
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        auth = headers.pop("authorization", None)
        token = auth.removeprefix("Bearer ").strip() if auth else None
        seen = Seen(
            model=str(body.get("model", "")),
            path=path,
            started=time.monotonic(),
            headers=headers,
            body=body if isinstance(body, dict) else {},
            stream=bool(isinstance(body, dict) and body.get("stream")),
            key_sha256=sha256(token) if token else None,
        )
        with self._lock:
            self.seen.append(seen)
            self._lock.notify_all()
        self._arrived.setdefault(seen.model, asyncio.Event()).set()
        keep = headers.get("connection", "").lower() != "close"
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await self._send_json(writer, 200, {"object": "list", "data": []})
            self._finish(seen, "models")
            return keep
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._send_json(writer, 404, _error_body(f"no route {path}", "not_found"))
            self._finish(seen, "no route")
            return keep
        if self.api_key is not None and token != self.api_key:
            fault = unauthorized()
        else:
            fault = self._next(seen.model, seen)
            window = self.n_ctx.get(seen.model)
            if window is not None and seen.prompt_chars() // 4 > window and fault.kind == "ok":
                fault = context_length(
                    self.context_style, n_ctx=window, n_prompt=seen.prompt_chars() // 4
                )
        seen.outcome = fault.kind if fault.kind != "status" else str(fault.status)
        # answer while watching for the client to hang up
        answer = asyncio.ensure_future(self._answer(fault, seen, writer, token))
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({answer, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not answer.done():
                answer.cancel()
            hangup.cancel()
            await asyncio.gather(answer, hangup, return_exceptions=True)
            completed = not answer.cancelled() and answer.exception() is None
            self._finish(seen, disconnected=not completed)
        return keep and answer.result() if completed else False

    async def _answer(
        self, fault: Fault, seen: Seen, writer: asyncio.StreamWriter, token: str | None
    ) -> bool:
        """Write the scripted outcome; False when the connection must close afterwards."""
        if fault.wait_for is not None:
            await self._arrived.setdefault(fault.wait_for, asyncio.Event()).wait()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.kind == "reset":
            transport = writer.transport
            sock = transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close with an RST, not a FIN
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return False
        if fault.kind == "status":
            await self._send_json(writer, fault.status, fault.body, fault.headers)
            return True
        if fault.kind == "unauthorized":
            message = "Incorrect API key provided."
            if isinstance(fault.body, dict) and fault.body.get("echo") and token:
                message = f"Incorrect API key provided: {token}."
            await self._send_json(writer, 401, _error_body(message, "invalid_request_error"))
            return True
        if fault.kind == "malformed" and seen.stream:
            writer.write(_head(200, {"Content-Type": "text/event-stream", **_CHUNKED}))
            writer.write(_chunked(b'data: {"id": "chatcmpl-x", "choices": [{"ind\n\n'))
            writer.write(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            return True
        if fault.kind == "malformed":
            data = b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"ind'
            await self._send(writer, 200, data, {"Content-Type": "application/json"})
            return True
        text = fault.text if fault.text is not None else default_text(seen)
        if fault.kind == "empty_choices":
            await self._send_json(writer, 200, _completion(seen, None))
            return True
        if seen.stream:
            return await self._stream(writer, seen, text, fault)
        if fault.kind == "cut_stream":
            data = json.dumps(_completion(seen, text)).encode()
            head = _head(
                200, {"Content-Type": "application/json", "Content-Length": str(len(data))}
            )
            writer.write(head + data[: len(data) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        if fault.token_delay:
            await asyncio.sleep(fault.token_delay * len(text.split()))
        await self._send_json(writer, 200, _completion(seen, text))
        return True

    async def _stream(
        self, writer: asyncio.StreamWriter, seen: Seen, text: str, fault: Fault
    ) -> bool:
        writer.write(
            _head(
                200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **_CHUNKED}
            )
        )
        pieces = [p + " " for p in text.split(" ")]
        pieces[-1] = pieces[-1].rstrip(" ")
        for i, piece in enumerate(pieces):
            if fault.kind == "cut_stream" and i == fault.after:
                await writer.drain()
                writer.transport.abort()  # no finish_reason, no terminating chunk
                return False
            delta: dict[str, Any] = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            await _event(
                writer, _chunk(seen, [{"index": 0, "delta": delta, "finish_reason": None}])
            )
            if fault.token_delay:
                await asyncio.sleep(fault.token_delay)
        await _event(writer, _chunk(seen, [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        options = seen.body.get("stream_options") or {}
        if options.get("include_usage"):
            usage = _usage(seen, text)
            await _event(writer, {**_chunk(seen, []), "usage": usage})
        writer.write(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        code: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        await self._send(
            writer, code, data, {"Content-Type": "application/json", **(headers or {})}
        )

    async def _send(
        self, writer: asyncio.StreamWriter, code: int, data: bytes, headers: Mapping[str, str]
    ) -> None:
        writer.write(_head(code, {**headers, "Content-Length": str(len(data))}) + data)
        await writer.drain()


def default_text(seen: Seen) -> str:
    """`answer from MODEL`, or `synthesis of N answers by MODEL` when answers were injected."""
    system = next((m for m in seen.messages if m.get("role") == "system"), None)
    refs = 0
    if system is not None:
        refs = sum(1 for line in str(system.get("content", "")).splitlines() if line[:1].isdigit())
    if refs:
        return f"synthesis of {refs} answers by {seen.model}"
    return f"answer from {seen.model}"


def _usage(seen: Seen, text: str) -> dict[str, int]:
    prompt = max(seen.prompt_chars() // 4, 1)
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(seen: Seen, text: str | None) -> dict[str, Any]:
    choices = []
    if text is not None:
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ]
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": seen.model,
        "choices": choices,
        "usage": _usage(seen, text or ""),
    }


def _chunk(seen: Seen, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": seen.model,
        "choices": choices,
    }


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
}


_CHUNKED = {"Transfer-Encoding": "chunked"}


def _head(code: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _event(writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
    writer.write(_chunked(f"data: {json.dumps(data)}\n\n".encode()))
    await writer.drain()


def main(argv: list[str] | None = None) -> None:
    """Serve random faults in a process of its own (for the soak benchmark): prints
    `PORT <n>`, serves until stdin closes, then prints the faults it served as JSON."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--rate", type=float, default=0.3, help="share of requests that fail")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer")
    parser.add_argument("--slow", type=float, default=5.0, help="seconds of a slow answer")
    args = parser.parse_args(argv)
    chooser = RandomFaults(args.rate, seed=args.seed, latency=args.latency, slow=args.slow)
    with FaultServer(chooser=chooser) as server:
        print(f"PORT {server.port}", flush=True)
        sys.stdin.read()
    print(json.dumps(dict(chooser.counts)), flush=True)


if __name__ == "__main__":
    main()
