"""The protocol between the engine and a strategy: three steps around the layers and the final.

    decided(ctx, number, calls) -> str | None       while a layer runs: why its remaining
                                                    calls can stop (the outcome is decided)
    after_layer(ctx, number, answers) -> answers    filter, review, select a layer's answers
    stop_after(ctx, number, answers) -> bool        stop adding layers (early stop)
    decide(ctx, answers) -> str | None              a final answer without the aggregator
    before_final(ctx, answers) -> Final             what the aggregator is shown

`Step` is the identity (the paper's MoA): every answer goes on, no layer is skipped, the
aggregator synthesises them all. A strategy sees the run only through `StepContext`: the
conversation, the agents, one way to make a call (recorded in the trace like any other) and
one way to note a decision in the trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from moa.agent import Agent
from moa.trace import AgentRole, Call
from moa.types import Message

__all__ = ["Answers", "Final", "SideCall", "Step", "StepContext", "judge_agent"]

SideCall = Callable[[Agent, AgentRole, Sequence[Message], int, int], Awaitable[Call]]
"""call(agent, role, messages, layer, index): one non-streamed call, in the trace."""


@dataclass
class Answers:
    """The answers that go on from a layer, and the council's review of them if there was one."""

    calls: list[Call]
    review: str | None = None

    @property
    def texts(self) -> list[str]:
        return [c.text or "" for c in self.calls]


@dataclass(frozen=True)
class Final:
    """The aggregator's messages and references (injected and fitted by the call), and the
    layer number its call is recorded under."""

    messages: Sequence[Message]
    references: list[str]
    layer: int


@dataclass
class StepContext:
    messages: Sequence[Message]
    """The user's conversation."""
    layers: Sequence[Sequence[Agent]]
    """The agents of each layer, as they run."""
    aggregator: Agent
    """The aggregator as this run calls it (with the request's settings)."""
    judge_base: Agent
    """The recipe's aggregator: judges without a model of their own are it, at temperature 0."""
    prompt: str
    """The aggregate prompt."""
    call: SideCall
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Say in the trace what was decided and why."""
        self.notes.append(text)

    @property
    def final_layer(self) -> int:
        return len(self.layers) + 1


class Step:
    """The identity strategy; strategies override the steps they need."""

    def decided(self, ctx: StepContext, number: int, calls: Sequence[Call]) -> str | None:
        """Called each time a call of layer `number` ends (`calls`: the layer's records, in
        order; those still running have neither text nor error). A reason stops the rest."""
        return None

    async def after_layer(self, ctx: StepContext, number: int, answers: Answers) -> Answers:
        return answers

    def stop_after(self, ctx: StepContext, number: int, answers: Answers) -> bool:
        return False

    async def decide(self, ctx: StepContext, answers: Answers) -> str | None:
        return None

    async def before_final(self, ctx: StepContext, answers: Answers) -> Final:
        return Final(ctx.messages, answers.texts, ctx.final_layer)


def judge_agent(ref: str | None, max_tokens: int, aggregator: Agent) -> Agent:
    """A judge at temperature 0 with a small answer budget: `ref`, else the aggregator's model."""
    base = aggregator if ref is None else Agent(model=ref)
    update: dict[str, Any] = {"temperature": 0, "max_tokens": max_tokens, "seed": None, "n": 1}
    return base.model_copy(update=update)
