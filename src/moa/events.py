"""What a run reports as it goes (events), and what it returns (`Result`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moa.trace import AgentRole, Call, Trace
from moa.types import ToolCall, Usage

__all__ = [
    "AgentFinished",
    "AgentStarted",
    "Event",
    "EventSink",
    "Finished",
    "LayerFinished",
    "Reasoning",
    "Result",
    "Token",
]


@dataclass(frozen=True)
class AgentStarted:
    layer: int
    index: int
    agent: str
    model: str
    role: AgentRole


@dataclass(frozen=True)
class AgentFinished:
    call: Call


@dataclass(frozen=True)
class LayerFinished:
    layer: int
    answered: int
    failed: int
    """Calls without an answer, those stopped included."""
    stopped: int = 0
    """Calls the strategy stopped because the outcome was decided (no failure of theirs)."""


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Reasoning:
    """A piece of the final call's thinking (a reasoning model's), apart from its answer."""

    text: str


@dataclass(frozen=True)
class Finished:
    result: Result


Event = AgentStarted | AgentFinished | LayerFinished | Token | Reasoning | Finished
EventSink = Callable[[Event], None]
"""Where a run sends its events."""


@dataclass
class Result:
    """The final answer and the trace of how it was made. An answer that calls tools has
    them in `tool_calls` (and empty text)."""

    text: str
    trace: Trace
    best_proposal: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    """The final call's thinking, where its model is a reasoning one."""

    @property
    def usage(self) -> Usage:
        t = self.trace.totals()
        return Usage(t.input_tokens, t.output_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "best_proposal": self.best_proposal,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "reasoning": self.reasoning,
            "trace": self.trace.to_dict(),
        }
