"""The exceptions of the library, split by whose fault a failure is.

    MoAError                      root: catch this to catch everything we raise
    ├── ConfigError               the user's mistake, found before any call is made
    │   ├── RecipeError           a recipe file or mapping is invalid (file, field, problem)
    │   ├── ModelRefError         a model reference cannot be resolved (unknown provider, bad form)
    │   ├── MissingKeyError       a provider needs a key that the environment lacks
    │   └── ModelNotAvailable     a local model file is missing or fails its checksum
    ├── BackendError              a backend failed a call (model, status, body)
    │   ├── BackendTimeout        no answer within the per-call timeout
    │   ├── BackendConnectionError  could not reach the endpoint, or it cut the connection
    │   ├── RateLimited           429 (retry_after in seconds when the server said)
    │   ├── ContextLengthError    the prompt does not fit the model's context window
    │   └── BadResponse           the backend answered something we cannot use
    │       └── BadAnswer         a malformed tool call or an answer not valid against the
    │                             request's JSON schema (repaired once by the caller)
    └── RunError                  a MoA run could not produce an answer
        ├── QuorumError           a layer had fewer answers than its quorum (every failure)
        ├── AggregationError      the aggregator and its fallbacks all failed (every failure)
        └── DeadlineExceeded      the run's overall deadline passed

Messages never contain secrets: keys are referred to by the name of their variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AgentFailure",
    "AggregationError",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeout",
    "BadAnswer",
    "BadResponse",
    "ConfigError",
    "ContextLengthError",
    "DeadlineExceeded",
    "MissingKeyError",
    "MoAError",
    "ModelNotAvailable",
    "ModelRefError",
    "QuorumError",
    "RateLimited",
    "RecipeError",
    "RunError",
    "should_retry",
]


class MoAError(Exception):
    """Root of every exception this library raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # pickled whole (for process pools): subclasses' __init__ signatures differ
        return (_rebuild, (type(self), self.args), dict(vars(self)))


def _rebuild(cls: type[MoAError], args: tuple[object, ...]) -> MoAError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


class ConfigError(MoAError):
    """A mistake in what the user asked for, found before any model is called."""


class RecipeError(ConfigError):
    """An invalid recipe. `source` is the file (or '<dict>'), `field` the dotted path."""

    def __init__(self, problem: str, *, source: str = "<recipe>", field: str = "") -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(where + problem)


class ModelRefError(ConfigError):
    """A model reference that cannot be resolved."""


class MissingKeyError(ConfigError):
    """A provider needs an API key that is not in the environment."""

    def __init__(self, model: str, env_var: str) -> None:
        self.model = model
        self.env_var = env_var
        super().__init__(f"{model}: set {env_var} in the environment (no API key found)")


class ModelNotAvailable(ConfigError):
    """A local model file that is absent, partial or corrupt."""


class BackendError(MoAError):
    """A backend call failed. `status` is the HTTP status where there was one; `retry_after`
    the seconds the server asked us to wait (Retry-After), where it said. Whether it is worth
    trying again is decided by `should_retry`, the one rule."""

    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        self.model = model
        self.status = status
        self.body = body
        self.message = message
        super().__init__(f"{model}: {message}" if model else message)


class BackendTimeout(BackendError):
    pass


class BackendConnectionError(BackendError):
    pass


class RateLimited(BackendError):
    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        status: int | None = 429,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, model=model, status=status, body=body)
        self.retry_after = retry_after


class ContextLengthError(BackendError):
    """The prompt does not fit. Never retried: the same prompt would fail again."""


class BadResponse(BackendError):
    """Malformed JSON, no choices, a stream cut short. Retried: it is usually transient."""


class BadAnswer(BadResponse):
    """The model's answer breaks the request's contract: a tool call with an empty or unknown
    name or arguments that are not a JSON object, text where a call was required, JSON not
    valid against the response format's schema. The caller asks once more, showing the model
    `message` (`moa.toolcalls.repair`); `text` is the answer as it came."""

    def __init__(self, message: str, *, text: str = "", model: str = "") -> None:
        super().__init__(message, model=model)
        self.text = text


RETRY_STATUSES = frozenset({408, 409, 429})
"""HTTP statuses worth another try besides every 5xx (as openai-python retries)."""


def should_retry(error: BackendError) -> bool:
    """The one retry rule: timeouts, lost connections, rate limits and malformed answers are
    retried, and so are 408, 409, 429 and 5xx; never a prompt that does not fit, nor any
    other 4xx (bad request, key, model), which would fail again the same way."""
    if isinstance(error, ContextLengthError):
        return False
    if isinstance(error, (BackendTimeout, BackendConnectionError, RateLimited, BadResponse)):
        return True
    return error.status is not None and (error.status in RETRY_STATUSES or error.status >= 500)


@dataclass(frozen=True)
class AgentFailure:
    """Why one agent gave no answer: which agent, which model, what went wrong."""

    layer: int
    agent: str
    model: str
    error: str
    error_type: str

    def __str__(self) -> str:
        return f"{self.agent} ({self.model}): {self.error_type}: {self.error}"


class RunError(MoAError):
    """A run ended without an answer. `failures` holds every agent failure seen."""

    trace: Any = None  # the run's Trace, attached by the engine: nothing done is lost

    def __init__(self, message: str, failures: Sequence[AgentFailure] = ()) -> None:
        self.failures = list(failures)
        detail = "; ".join(str(f) for f in self.failures)
        super().__init__(f"{message}: {detail}" if detail else message)
        self.summary = message


class QuorumError(RunError):
    def __init__(self, layer: int, needed: int, got: int, failures: Sequence[AgentFailure]) -> None:
        self.layer = layer
        self.needed = needed
        self.got = got
        super().__init__(f"layer {layer}: {got} of the needed {needed} agents answered", failures)


class AggregationError(RunError):
    pass


class DeadlineExceeded(RunError):
    pass
