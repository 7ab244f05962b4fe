"""A real server on a free loopback port, in a thread: for tests, benchmarks and notebooks.

with ServerThread(create_app(recipes={"mine": recipe})) as server:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import Future
from typing import Any

import uvicorn


class ServerThread:
    """Serves `app` under uvicorn on 127.0.0.1 in a daemon thread with its own event loop."""

    def __init__(
        self, app: Any, *, log_level: str = "warning", startup_timeout: float = 20
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level=log_level, log_config=None, lifespan="on", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._startup_timeout = startup_timeout
        self._thread = threading.Thread(target=self._run, name="moa-server", daemon=True)
        self.loop = asyncio.new_event_loop()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        until = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > until:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

    def call(self, fn: Any) -> Any:
        """Run `fn()` on the server's loop and return its result (for inspection)."""
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(timeout=5)

    def running_tasks(self) -> list[str]:
        """The qualified names of the coroutines of every task alive on the server's loop."""

        def names() -> list[str]:
            out = []
            for task in asyncio.all_tasks(self.loop):
                coro = task.get_coro()
                out.append(getattr(coro, "__qualname__", repr(coro)))
            return out

        result: list[str] = self.call(names)
        return result
