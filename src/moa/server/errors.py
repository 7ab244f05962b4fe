"""OpenAI's error object, and the one place where library errors become HTTP statuses.

400 invalid_request_error   malformed JSON, a missing or invalid field (`param` names it)
401 invalid_api_key         a key is required and missing or wrong
403 host_not_allowed        the Host header is not a name the server is served under
403 origin_not_allowed      a web page of another origin (not allowed with cors_origins)
404 model_not_found         no recipe by that name
405 method_not_allowed      a route that does not take this method
408 request_timeout         the body did not arrive within body_timeout_s
413 request_too_large       the body is over the limit
415 unsupported_media_type  a body that is not sent as application/json
500 server_error            the server's own recipe or keys are wrong (names the variable)
502 upstream_error          agents failed (each one named in the message and `failures`)
503 server_overloaded       too many runs at once (with Retry-After)
503 model_not_available     a recipe's local model is not there (checked at startup)
504 timeout_error           agents or the run's deadline timed out
"""

from __future__ import annotations

from typing import Any

from moa.errors import (
    AgentFailure,
    ConfigError,
    DeadlineExceeded,
    MissingKeyError,
    MoAError,
    ModelNotAvailable,
    RunError,
)

_TIMEOUTS = {"BackendTimeout", "DeadlineExceeded", "TimeoutError"}


class ApiError(Exception):
    """An error answered to the client as `{"error": {...}}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": {**error, **self.extra}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def failure_dict(f: AgentFailure) -> dict[str, Any]:
    return {
        "layer": f.layer,
        "agent": f.agent,
        "model": f.model,
        "error_type": f.error_type,
        "error": f.error,
    }


def from_run_error(exc: RunError) -> ApiError:
    """502 when agents failed, 504 when what failed was waiting; every failure is named."""
    causes = [f for f in exc.failures if f.error_type != "Cancelled"]
    timed_out = isinstance(exc, DeadlineExceeded) or (
        bool(causes) and all(f.error_type in _TIMEOUTS for f in causes)
    )
    code = {
        "QuorumError": "quorum_not_reached",
        "AggregationError": "aggregation_failed",
        "DeadlineExceeded": "deadline_exceeded",
    }.get(type(exc).__name__, "run_failed")
    return ApiError(
        504 if timed_out else 502,
        str(exc),
        type="timeout_error" if timed_out else "upstream_error",
        code=code,
        extra={"summary": exc.summary, "failures": [failure_dict(f) for f in exc.failures]},
    )


def from_setup_error(exc: MoAError, model: str) -> ApiError:
    """A recipe that cannot run here is the server's misconfiguration, not the client's."""
    where = f"the recipe '{model}' cannot run on this server: "
    if isinstance(exc, MissingKeyError):
        return ApiError(500, where + str(exc), type="server_error", code="missing_provider_key")
    if isinstance(exc, ModelNotAvailable):
        message = where + str(exc) + "; then restart the server"
        return ApiError(503, message, type="server_error", code="model_not_available")
    if isinstance(exc, ConfigError):
        return ApiError(500, where + str(exc), type="server_error", code="invalid_recipe")
    return ApiError(500, where + str(exc), type="server_error", code="recipe_setup_failed")


def from_error(exc: BaseException, model: str) -> ApiError:
    """Any error of a run, mapped; foreign ones become a bare 500 (details go to the log)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RunError):
        return from_run_error(exc)
    if isinstance(exc, MoAError):
        return from_setup_error(exc, model)
    return internal()


def internal() -> ApiError:
    return ApiError(
        500, "internal server error (see the server's log)", type="server_error", code="internal"
    )


def overloaded(limit: int) -> ApiError:
    return ApiError(
        503,
        f"the server is running its maximum of {limit} concurrent runs; retry shortly",
        type="server_error",
        code="server_overloaded",
        headers={"Retry-After": "1"},
    )
