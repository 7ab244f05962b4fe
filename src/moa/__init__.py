"""Mixture-of-Agents: several LLMs answering as one.

from moa import MoA
result = MoA.from_recipe("local").run("What is 17 * 23?")
print(result.text)
"""

from moa.backends.base import Backend
from moa.backends.fake import FakeBackend
from moa.engine import (
    AgentFinished,
    AgentStarted,
    Event,
    Finished,
    LayerFinished,
    MoA,
    Result,
    Token,
    run,
)
from moa.errors import (
    AgentFailure,
    AggregationError,
    BackendConnectionError,
    BackendError,
    BackendTimeout,
    BadResponse,
    ConfigError,
    ContextLengthError,
    DeadlineExceeded,
    MissingKeyError,
    MoAError,
    ModelNotAvailable,
    ModelRefError,
    QuorumError,
    RateLimited,
    RecipeError,
    RunError,
)
from moa.limits import LIMITS
from moa.recipe import AGGREGATE_PROMPT, Agent, Layer, Recipe, load_recipe
from moa.trace import Call, Trace
from moa.types import Completion, Delta, Message, Request, Settings, Usage

__version__ = "0.1.0"

__all__ = [
    "AGGREGATE_PROMPT",
    "LIMITS",
    "Agent",
    "AgentFailure",
    "AgentFinished",
    "AgentStarted",
    "AggregationError",
    "Backend",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeout",
    "BadResponse",
    "Call",
    "Completion",
    "ConfigError",
    "ContextLengthError",
    "DeadlineExceeded",
    "Delta",
    "Event",
    "FakeBackend",
    "Finished",
    "Layer",
    "LayerFinished",
    "Message",
    "MissingKeyError",
    "MoA",
    "MoAError",
    "ModelNotAvailable",
    "ModelRefError",
    "QuorumError",
    "RateLimited",
    "Recipe",
    "RecipeError",
    "Request",
    "Result",
    "RunError",
    "Settings",
    "Token",
    "Trace",
    "Usage",
    "__version__",
    "load_recipe",
    "run",
]
