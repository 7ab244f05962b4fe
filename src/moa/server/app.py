"""The FastAPI app: OpenAI's chat completions and models routes, health, and the web page."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

try:
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the server needs FastAPI and uvicorn: pip install 'mixture-of-agents[server]'"
    ) from exc

from moa.backends.base import Backend
from moa.server.errors import ApiError, internal, invalid, overloaded
from moa.server.recipes import Recipes, RecipeSource
from moa.server.run import RunResponse
from moa.server.wire import parse_request

log = logging.getLogger("moa.server")

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_CONCURRENT_RUNS = 64
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_KEEPALIVE_S = 10.0


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
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to be over `limit` bytes."""
    too_large = ApiError(
        413,
        f"the request body is over the server's limit of {limit} bytes",
        code="request_too_large",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_large
    return bytes(body)


def create_app(
    *,
    recipes_dir: Path | None = None,
    recipes: Mapping[str, RecipeSource] | None = None,
    api_key: str | None = None,
    max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    keepalive_s: float = DEFAULT_KEEPALIVE_S,
    backends: Mapping[str, Backend] | None = None,
    env: Mapping[str, str] | None = None,
) -> FastAPI:
    """The app. `api_key` None reads MOA_API_KEY; "" turns authentication off.

    `recipes` adds recipes by name (a Recipe, a mapping or a file), `backends` replaces
    providers (`{"fake": FakeBackend(...)}`) and `env` replaces os.environ for provider keys.
    """
    key = os.environ.get("MOA_API_KEY", "") if api_key is None else api_key
    registry = Recipes(recipes_dir=recipes_dir, extra=recipes, backends=backends, env=env)
    runs = _Runs(max_concurrent_runs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await registry.aclose()

    app = FastAPI(title="Mixture-of-Agents", version="0.1.0", lifespan=lifespan)
    app.state.registry = registry
    app.state.runs = runs

    def authorize(request: Request) -> None:
        if not key:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), key):
            missing = not given.strip()
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
        chat = parse_request(await _read_body(request, max_body_bytes))
        moa = await registry.moa(chat.model)
        runs.acquire()
        return RunResponse(moa, chat, keepalive_s=keepalive_s, release=runs.release)

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
        log.error("unexpected error: %s: %s", type(exc).__name__, exc)
        return _error_response(internal())

    return app


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    recipes_dir: Path | None = None,
    api_key: str | None = None,
    max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    log_level: str = "info",
) -> None:
    """Run the app under uvicorn until interrupted."""
    import uvicorn
    from uvicorn.logging import DefaultFormatter

    app = create_app(
        recipes_dir=recipes_dir,
        api_key=api_key,
        max_concurrent_runs=max_concurrent_runs,
        max_body_bytes=max_body_bytes,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(name)s: %(message)s"))
    logging.getLogger("moa").addHandler(handler)
    logging.getLogger("moa").setLevel(log_level.upper())
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
