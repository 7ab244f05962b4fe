"""final: tool_vote — the action most answers take: the same calls (same functions, same
arguments, canonicalised), or an answer in text; ties go to the greedy answer's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import FinalRule, RuleField
from moa.strategies.finals.first import First
from moa.strategies.read import Reader
from moa.strategies.tally import decide_early, tally
from moa.tools import canonical
from moa.trace import Call
from moa.types import ToolCall

__all__ = ["TEXT", "ToolVote", "action", "supported"]

TEXT = "(an answer in text)"
"""The action of every answer that calls no tool: text answers vote together."""


def action(call: Call) -> str:
    """What an answer does, one text per action: its calls canonicalised, or TEXT."""
    return canonical(call.tool_calls) if call.tool_calls else TEXT


def supported(answers: Sequence[Sequence[ToolCall]]) -> int | None:
    """The answer with the most calls that at least half the answers make, and none that
    fewer make (an answer that calls nothing qualifies, with none); ties go to the first.
    None: no answer qualifies."""
    sets = [{canonical([c]) for c in calls} for calls in answers]
    support = Counter(c for calls in sets for c in calls)
    ok = [i for i, calls in enumerate(sets) if all(2 * support[c] >= len(sets) for c in calls)]
    return max(ok, key=lambda i: (len(sets[i]), -i)) if ok else None


class ToolVote(FinalRule):
    """A vote on what the answers do, for answers of which some call tools: each answer's
    calls are canonicalised (ids, order, spacing and key order don't count), text answers are
    one action together, and the most common action wins, ties to the greedy (first)
    answer's. If it is a call, that answer (the greedy one where it is among them) is the
    result; if it is text, the `text` rule chooses among the text answers.

        final: {rule: tool_vote, decide_early: true, text: first, count: answers}

    `decide_early` stops the answers still running once they cannot change the outcome.
    With `count: calls` each call is counted on its own: the answer with the most calls that
    at least half the answers make, and none that fewer make, wins (ties to the greedy
    answer's; where none qualifies, the vote on answers decides), so the answers that add a
    call the others missed win over those that stop at one; the layer is then decided when
    every answer is in. Measured against `first` (the greedy call) on BFCL
    (docs/evaluation.md)."""

    name = "tool_vote"
    decide_early: bool = True
    text: RuleField = First()
    count: Literal["answers", "calls"] = "answers"

    def tool_rule(self) -> FinalRule | None:
        return self

    def judges(self) -> tuple[str, ...]:
        return self.text.judges()

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        if not self.decide_early or self.count == "calls":
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
        if self.count == "calls":
            index = supported([c.tool_calls for c in answers.calls])
            if index is not None:
                calls = answers.calls[index].tool_calls
                made = f"answer {index + 1}, {len(calls)} call(s)" if calls else "no call"
                ctx.note(f"tool vote by call: {made}, each made by at least half the answers")
                return index if calls else None
        vote = tally([action(c) for c in answers.calls])
        if vote.winner is None or vote.index is None:
            return None
        ctx.note(f"tool vote: {vote.winner} with {vote.votes} of {len(answers.calls)}")
        return None if vote.winner == TEXT else vote.index

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        return await self.text.answer(ctx, answers, read)
