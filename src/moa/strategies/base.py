"""The protocol between the engine and a strategy: the steps around the layers and the final.

    settled(ctx, number, calls) -> str | None       while a layer runs: why its remaining
                                                    calls can stop (the outcome is settled)
    after_layer(ctx, number, answers) -> answers    filter, review, prune a layer's answers
    stop_after(ctx, number, answers) -> bool        stop adding layers (early stop)
    answer(ctx, answers) -> str | Call | None       a final answer without the aggregator (a
                                                    Call: that answer as it is, tool calls too)
    chooses                                         whether `answer` picks one of the last
                                                    layer's answers (those agents then act)
    before_final(ctx, answers) -> AggregatorInput   what the aggregator is shown
    best_proposal(answers) -> int                   the answer to return if the aggregator fails

`Step` is the identity (the paper's MoA): every answer goes on, no layer is skipped, the
aggregator synthesises them all. A strategy sees the run only through `StepContext`: the
conversation, the agents, one way to make a call (recorded in the trace like any other) and
one way to note a decision in the trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from moa.agent import Agent
from moa.prompts import Brief, briefed
from moa.reference_view import describe_calls
from moa.strategies.agreement import most_agreed
from moa.trace import AgentRole, Call
from moa.types import Message

__all__ = ["AggregatorInput", "Answers", "SideCall", "Step", "StepContext"]

SideCall = Callable[[Agent, AgentRole, Brief, int, int], Awaitable[Call]]
"""call(agent, role, brief, layer, index): one non-streamed call, in the trace; the brief's
references are trimmed to the agent's context window like every other call's."""


@dataclass
class Answers:
    """The answers that go on from a layer, and the council's review of them if there was one."""

    calls: list[Call]
    review: str | None = None

    @property
    def texts(self) -> list[str]:
        """Each answer's text; an answer that calls tools, as a sentence that says so (what
        a later call is shown of it)."""
        return [describe_calls(c.tool_calls) if c.tool_calls else c.text or "" for c in self.calls]


@dataclass(frozen=True)
class AggregatorInput:
    """What the aggregator is shown (its references trimmed by the call), and the layer number
    its call is recorded under."""

    brief: Brief
    layer: int


@dataclass
class StepContext:
    messages: Sequence[Message]
    """The user's conversation as the calls that do not act see it: without tool turns
    (`moa.reference_view`; the same conversation where it has none). Side calls (judges,
    reviewers, Seq rounds) are shown what the tools returned besides."""
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
    conversation: Sequence[Message] = ()
    """The whole conversation, tool turns included: what the final call is shown (empty:
    `messages`)."""
    tools: bool = False
    """Whether the request gives tools the final may call."""

    @property
    def final_messages(self) -> Sequence[Message]:
        return self.conversation or self.messages

    def note(self, text: str) -> None:
        """Say in the trace what was decided and why."""
        self.notes.append(text)

    @property
    def final_layer(self) -> int:
        return len(self.layers) + 1

    @property
    def question(self) -> str:
        """The last user message."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")


class Step:
    """The identity strategy; strategies override the steps they need."""

    def settled(self, ctx: StepContext, number: int, calls: Sequence[Call]) -> str | None:
        """Called each time a call of layer `number` ends (`calls`: the layer's records, in
        order; those still running have neither text nor error). A reason stops the rest."""
        return None

    async def after_layer(self, ctx: StepContext, number: int, answers: Answers) -> Answers:
        return answers

    def stop_after(self, ctx: StepContext, number: int, answers: Answers) -> bool:
        return False

    @property
    def chooses(self) -> bool:
        return False

    async def answer(self, ctx: StepContext, answers: Answers) -> str | Call | None:
        """The final answer chosen without the aggregator (a Call: that answer, tool calls
        and all); None: the aggregator writes it."""
        return None

    async def before_final(self, ctx: StepContext, answers: Answers) -> AggregatorInput:
        shown = briefed(ctx.final_messages, ctx.prompt, answers.texts)
        return AggregatorInput(shown, ctx.final_layer)

    def best_proposal(self, answers: Answers) -> int:
        """Which answer to return when the aggregator fails (on_aggregator_failure:
        best_proposal): the one most in agreement with the others, ties to the first."""
        return most_agreed(answers.texts).index
