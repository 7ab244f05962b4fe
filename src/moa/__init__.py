"""Mixture-of-Agents: several LLMs answering as one.

from moa import MoA
result = MoA.from_recipe("local").run("What is 17 * 23?")
print(result.text)
"""

from moa.backends.base import Backend
from moa.backends.fake import FakeBackend, Reply
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
    BadAnswer,
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
from moa.events import Reasoning
from moa.limits import LIMITS
from moa.recipe import AGGREGATE_PROMPT, Agent, Layer, Recipe, load_recipe
from moa.trace import Call, Trace
from moa.types import (
    Act,
    Completion,
    Delta,
    Message,
    Request,
    ResponseFormat,
    Settings,
    Tool,
    ToolCall,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "AGGREGATE_PROMPT",
    "LIMITS",
    "Act",
    "Agent",
    "AgentFailure",
    "AgentFinished",
    "AgentStarted",
    "AggregationError",
    "Backend",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeout",
    "BadAnswer",
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
    "Reasoning",
    "Recipe",
    "RecipeError",
    "Reply",
    "Request",
    "ResponseFormat",
    "Result",
    "RunError",
    "Settings",
    "Token",
    "Tool",
    "ToolCall",
    "Trace",
    "Usage",
    "__version__",
    "load_recipe",
    "run",
]
