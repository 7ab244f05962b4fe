"""The record of a run: every call with its text, tokens, latency, attempts and errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from moa.redact import redact_urls
from moa.types import ToolCall

AgentRole = Literal["proposer", "aggregator", "judge"]
"""What an agent does in a run (not a message role: that is `moa.types.Role`)."""
Outcome = Literal["ok", "best_proposal", "error", "running"]


def confidence(logprobs: Sequence[float] | None) -> float | None:
    """A sequence's confidence as a call records it: the mean log-probability of its tokens
    (length-normalised); None without log-probabilities."""
    if not logprobs:
        return None
    return sum(logprobs) / len(logprobs)


@dataclass(kw_only=True)
class Attempt:
    """One try of one model: what went wrong, and how long we waited before the next.

    `queued_s`: time spent waiting for the provider's rate and concurrency limits first."""

    model: str
    latency_s: float
    error: str | None = None
    error_type: str | None = None
    status: int | None = None
    wait_s: float = 0.0
    queued_s: float = 0.0


@dataclass(kw_only=True)
class Call:
    """One agent's call, after retries and fallbacks: the answer or the final error."""

    layer: int
    index: int
    agent: str
    role: AgentRole
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    started_s: float = 0.0
    latency_s: float = 0.0
    error: str | None = None
    error_type: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    trimmed: dict[str, Any] | None = None
    logprob: float | None = None
    """The mean log-probability of the answer's tokens, when asked for and given."""
    cost: float | None = None
    """Set by `moa.cost.price_trace` when prices are known."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The answer's tool calls (its text is then empty); the trace shows their arguments with
    any URL's credentials hidden (`to_dict`)."""
    reasoning: str | None = None
    """A reasoning model's thinking, apart from its answer (never shown to other calls)."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": redact_urls(c.arguments)}
            for c in self.tool_calls
        ]
        return data


def _cost(calls: list[Call]) -> float | None:
    if any(c.cost is None and (c.input_tokens or c.output_tokens) for c in calls):
        return None
    return sum(c.cost or 0.0 for c in calls)


@dataclass(kw_only=True)
class Totals:
    calls: int = 0
    """Calls made (at least one model tried)."""
    failed: int = 0
    """Calls made that ended without an answer (those stopped on purpose included)."""
    unstarted: int = 0
    """Calls cancelled or held back before any model was tried (not among `calls`)."""
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cost: float | None = None
    """The sum of the calls' costs; None if a call that used tokens has none."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(kw_only=True)
class Trace:
    recipe: str
    started_at: float
    calls: list[Call] = field(default_factory=list)
    latency_s: float = 0.0
    outcome: Outcome = "running"
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def layer(self, number: int) -> list[Call]:
        return [c for c in self.calls if c.layer == number]

    def _totals(self, calls: list[Call], latency: float) -> Totals:
        made = [c for c in calls if c.attempts]
        return Totals(
            calls=len(made),
            failed=sum(1 for c in made if not c.ok),
            unstarted=len(calls) - len(made),
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            latency_s=latency,
            cost=_cost(calls),
        )

    def layer_totals(self) -> dict[int, Totals]:
        """Per layer: calls, failures, tokens, and wall time (first start to last end)."""
        out: dict[int, Totals] = {}
        for number in sorted({c.layer for c in self.calls}):
            calls = self.layer(number)
            wall = max(c.started_s + c.latency_s for c in calls) - min(c.started_s for c in calls)
            out[number] = self._totals(calls, wall)
        return out

    def totals(self) -> Totals:
        return self._totals(self.calls, self.latency_s)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calls"] = [c.to_dict() for c in self.calls]
        data["layers"] = {str(k): asdict(v) for k, v in self.layer_totals().items()}
        data["totals"] = asdict(self.totals())
        return data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        names = {f.name for f in fields(cls)}
        raw = {k: v for k, v in data.items() if k in names}
        calls = []
        for c in raw.pop("calls", []):
            attempts = [Attempt(**a) for a in c.get("attempts", [])]
            tools = tuple(ToolCall(**t) for t in c.get("tool_calls") or ())
            calls.append(Call(**{**c, "attempts": attempts, "tool_calls": tools}))
        return cls(**raw, calls=calls)
