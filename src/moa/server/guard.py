"""Who may talk to the server: the Host it is reached by, and the Origin of a web page.

Without a key (the loopback default) anything that can reach the port can start runs. Two
browser attacks reach loopback too, and these checks stop them, as Jupyter and Ollama do:

- a page on another site POSTs to http://127.0.0.1:8000 (cross-site request): browsers
  send its `Origin`, and a request from an origin that is neither this server nor one allowed
  with `cors_origins` is refused with 403 (the JSON-only rule of the chat route keeps such a
  page from sending a "simple" request that skips the browser's preflight);
- a page whose name is made to resolve to 127.0.0.1 (DNS rebinding) sends its own name as
  `Host`: a Host that is not among `allowed_hosts` is refused with 403.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from moa.server.errors import ApiError
from moa.server.wire import json_response

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_name(value: str) -> str:
    """The name part of a Host header or an address: no port, no brackets, lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


class Guard:
    """ASGI middleware that refuses requests by an unknown Host or from a foreign Origin.

    `allowed_hosts`: names the server may be reached by ("*": any). `cors_origins`: other
    origins whose pages may call the API ("*": any); the page's own origin always may.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str], cors_origins: Iterable[str]
    ) -> None:
        self.app = app
        self.hosts = {host_name(h) for h in allowed_hosts}
        self.origins = {o.strip().lower().rstrip("/") for o in cors_origins}

    def check(self, host: str | None, origin: str | None) -> ApiError | None:
        if host is not None and "*" not in self.hosts and host_name(host) not in self.hosts:
            return ApiError(
                403,
                "this server is not served under the Host name used; start it with "
                "--allowed-host NAME to allow it",
                type="permission_error",
                code="host_not_allowed",
            )
        if origin is None or "*" in self.origins:
            return None
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return None
        _, sep, netloc = origin.partition("://")
        if sep and host is not None and netloc == host.strip().lower():
            return None  # the page served by this server
        return ApiError(
            403,
            "cross-origin requests are refused; start the server with --cors-origin ORIGIN "
            "to allow a web page of another origin",
            type="permission_error",
            code="origin_not_allowed",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        error = self.check(host, origin)
        if error is None:
            await self.app(scope, receive, send)
            return
        start, body = json_response(error.status, error.body(), error.headers)
        await send(start)
        await send({"type": "http.response.body", "body": body})
