"""final: tool_vote — the action most answers take: the same calls (same functions, same
arguments, canonicalised), or an answer in text; ties go to the greedy answer's."""

from __future__ import annotations

from collections.abc import Sequence

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import FinalRule, RuleField
from moa.strategies.finals.first import First
from moa.strategies.read import Reader
from moa.strategies.tally import decide_early, tally
from moa.tools import canonical
from moa.trace import Call

__all__ = ["TEXT", "ToolVote", "action"]

TEXT = "(an answer in text)"
"""The action of every answer that calls no tool: text answers vote together."""


def action(call: Call) -> str:
    """What an answer does, one text per action: its calls canonicalised, or TEXT."""
    return canonical(call.tool_calls) if call.tool_calls else TEXT


class ToolVote(FinalRule):
    """A vote on what the answers do, for answers of which some call tools: each answer's
    calls are canonicalised (ids, order, spacing and key order don't count), text answers are
    one action together, and the most common action wins, ties to the greedy (first)
    answer's. If it is a call, that answer (the greedy one where it is among them) is the
    result; if it is text, the `text` rule chooses among the text answers.

        final: {rule: tool_vote, decide_early: true, text: first}

    `decide_early` stops the answers still running once they cannot change the outcome.
    Measured against `first` (the greedy call) by the evaluation of tool calls."""

    name = "tool_vote"
    decide_early: bool = True
    text: RuleField = First()

    def tool_rule(self) -> FinalRule | None:
        return self

    def judges(self) -> tuple[str, ...]:
        return self.text.judges()

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        if not self.decide_early:
            return None
        ended = [i for i, c in enumerate(calls) if c.text is not None or c.error is not None]
        ended.sort(key=lambda i: calls[i].started_s + calls[i].latency_s)  # finishing order
        done = {i: action(calls[i]) if calls[i].ok else None for i in ended}
        early = decide_early(done, total=len(calls))
        if early is None or early.reason != "cannot change":
            return None
        left = early.remaining
        return f"the tool vote is decided ({early.answer}) whatever the {left} still running do"

    async def pick(self, ctx: StepContext, answers: Answers, read: Reader) -> int | None:
        vote = tally([action(c) for c in answers.calls])
        if vote.winner is None or vote.index is None:
            return None
        ctx.note(f"tool vote: {vote.winner} with {vote.votes} of {len(answers.calls)}")
        return None if vote.winner == TEXT else vote.index

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        return await self.text.answer(ctx, answers, read)
