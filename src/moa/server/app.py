"""The FastAPI app: OpenAI's chat completions, Responses and models routes, health, and the
web page."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

try:
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException
    from starlette.middleware.cors import CORSMiddleware
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the server needs FastAPI and uvicorn: pip install 'mixture-of-agents[server]'"
    ) from exc

from moa import depth
from moa.backends.base import Backend
from moa.redact import redact_urls
from moa.server.errors import ApiError, internal, invalid, overloaded
from moa.server.guard import LOOPBACK_HOSTS, Guard
from moa.server.recipes import Recipes, RecipeSource
from moa.server.responses import ResponsesFormat, parse_responses_request
from moa.server.run import RunResponse
from moa.server.wire import dumps, parse_request

log = logging.getLogger("moa.server")

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_CONCURRENT_RUNS = 64
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_KEEPALIVE_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0


class SafeJSONResponse(JSONResponse):
    """FastAPI's JSON answers through `dumps`: URLs scrubbed, text safely encoded."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


class _Runs:
    """Counts runs in progress; refuses one beyond the limit instead of queueing it."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("max_concurrent_runs must be at least 1")
        self.limit = limit
        self.active = 0

    def acquire(self) -> None:
        if self.active >= self.limit:
            raise overloaded(self.limit)
        self.active += 1

    def release(self) -> None:
        self.active -= 1


def _error_response(error: ApiError) -> JSONResponse:
    return SafeJSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _require_json(request: Request) -> None:
    """415 unless the body is declared JSON: a web page cannot send that without a preflight."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            415,
            "the body must be sent with 'Content-Type: application/json'",
            param="content-type",
            code="unsupported_media_type",
        )


async def _read_body(request: Request, limit: int, within_s: float) -> bytes:
    """The body, or 413 as soon as it is known to be over `limit` bytes, or 408 after
    `within_s` seconds (a client that never finishes its body holds nothing for long)."""
    too_large = ApiError(
        413,
        f"the request body is over the server's limit of {limit} bytes",
        code="request_too_large",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(within_s):
            async for piece in request.stream():
                body += piece
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise ApiError(
            408, f"the request body did not arrive within {within_s:g} s", code="request_timeout"
        ) from None
    return bytes(body)


def _depth(request: Request) -> int:
    """How deep in a chain of MoA runs this request comes (`moa.depth`), or 400 when it is
    deeper than a recipe may go: a recipe that names this server cannot recurse."""
    raw = request.headers.get(depth.HEADER, "0").strip()
    if not raw.isdigit() or len(raw) > 3:
        raise ApiError(400, f"{depth.HEADER}: expected a small whole number", param=depth.HEADER)
    level = int(raw)
    if level > depth.MAX_DEPTH:
        raise ApiError(
            400,
            f"this request comes from a MoA run nested {level} deep ({depth.HEADER}: {level}); "
            f"a MoA server answers runs nested at most {depth.MAX_DEPTH} deep, so a recipe "
            "that calls a MoA server cannot recurse",
            param=depth.HEADER,
            code="moa_depth_exceeded",
        )
    return level


def _key_matches(header: str, key: str) -> bool:
    """Constant-time comparison of bytes: any header bytes, any key (non-ASCII too)."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("latin-1"), key.encode())


def create_app(
    *,
    recipes_dir: Path | None = None,
    recipes: Mapping[str, RecipeSource] | None = None,
    api_key: str | None = None,
    max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    keepalive_s: float = DEFAULT_KEEPALIVE_S,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    backends: Mapping[str, Backend] | None = None,
    env: Mapping[str, str] | None = None,
    demo: bool = False,
    pull: bool = False,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The app. `api_key` None reads MOA_API_KEY; "" turns authentication off.

    `recipes` adds recipes by name (a Recipe, a mapping or a file), `backends` replaces
    providers (`{"fake": FakeBackend(...)}`) and `env` replaces os.environ for provider keys.
    `demo` serves the built-in `fake` recipe; `pull` fetches missing local models now (else
    their recipes answer 503). `allowed_hosts` are the Host names it answers to ("*": any);
    `cors_origins` the web origins other than its own that may call it ("*": any).
    """
    key = os.environ.get("MOA_API_KEY", "") if api_key is None else api_key
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be at least 1")
    registry = Recipes(
        recipes_dir=recipes_dir, extra=recipes, backends=backends, env=env, demo=demo, pull=pull
    )
    runs = _Runs(max_concurrent_runs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await registry.aclose()

    app = FastAPI(
        title="Mixture-of-Agents",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # no pages that load scripts from a CDN, nothing open without the key
        redoc_url=None,
        openapi_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.registry = registry
    app.state.runs = runs
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type"],
        max_age=600,
    )
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, cors_origins=cors_origins)

    def authorize(request: Request) -> None:
        if not key:
            return
        header = request.headers.get("authorization", "")
        if not _key_matches(header, key):
            missing = not header.partition(" ")[2].strip()
            raise ApiError(
                401,
                "You didn't provide an API key: send 'Authorization: Bearer KEY'"
                if missing
                else "Incorrect API key provided",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorize)])

    @v1.get("/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [e.describe() for e in registry.list()]}

    @v1.get("/models/{model:path}")
    async def get_model(model: str) -> dict[str, Any]:
        return registry.find(model).describe()

    @v1.post("/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> RunResponse:
        _require_json(request)
        raw = await _read_body(request, max_body_bytes, body_timeout_s)
        # a large body takes a while to parse and check: off the loop, which keeps streaming
        chat = (
            parse_request(raw) if len(raw) < 65536 else await asyncio.to_thread(parse_request, raw)
        )
        level = _depth(request)
        moa = registry.moa(chat.model)
        runs.acquire()
        return RunResponse(moa, chat, keepalive_s=keepalive_s, release=runs.release, depth=level)

    @v1.post("/responses", response_model=None)
    async def responses(request: Request) -> RunResponse:
        _require_json(request)
        raw = await _read_body(request, max_body_bytes, body_timeout_s)
        parsed = (
            parse_responses_request(raw)
            if len(raw) < 65536
            else await asyncio.to_thread(parse_responses_request, raw)
        )
        level = _depth(request)
        moa = registry.moa(parsed.model)
        runs.acquire()
        return RunResponse(
            moa,
            parsed,
            keepalive_s=keepalive_s,
            release=runs.release,
            format=ResponsesFormat(parsed),
            depth=level,
        )

    app.include_router(v1)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "active_runs": runs.active,
            "max_concurrent_runs": runs.limit,
            "models": len(registry.list()),
            "auth": bool(key),
        }

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        error = ApiError(exc.status_code, str(exc.detail), code=code)
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "path", "query"))
        return _error_response(invalid(str(err.get("msg", "invalid request")), param or None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s: %s", type(exc).__name__, redact_urls(str(exc)))
        return _error_response(internal())

    return app


def default_allowed_hosts(host: str) -> list[str]:
    """The Host names a server listening on `host` answers to: loopback names, and `host`
    itself; any name when it listens on every address (0.0.0.0, ::), as Ollama does."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return [*LOOPBACK_HOSTS, host]


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    recipes_dir: Path | None = None,
    api_key: str | None = None,
    max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    demo: bool = False,
    pull: bool = True,
    allowed_hosts: Sequence[str] | None = None,
    cors_origins: Sequence[str] = (),
    log_level: str = "info",
) -> None:
    """Run the app under uvicorn until interrupted; local models are pulled first (`pull`)."""
    import uvicorn
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(name)s: %(message)s"))
    logging.getLogger("moa").addHandler(handler)
    logging.getLogger("moa").setLevel(log_level.upper())
    app = create_app(
        recipes_dir=recipes_dir,
        api_key=api_key,
        max_concurrent_runs=max_concurrent_runs,
        max_body_bytes=max_body_bytes,
        demo=demo,
        pull=pull,
        allowed_hosts=default_allowed_hosts(host) if allowed_hosts is None else allowed_hosts,
        cors_origins=cors_origins,
    )
    if not _is_loopback(host) and not (api_key or os.environ.get("MOA_API_KEY")):
        log.warning("serving on %s without an API key: anyone who can reach it can use it", host)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
