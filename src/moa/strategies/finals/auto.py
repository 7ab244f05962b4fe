"""final: auto — a rule for each kind of answer, read from the answers themselves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.agreement import Agreement
from moa.strategies.finals.base import FinalRule, RuleField
from moa.strategies.finals.behaviour import Behaviour
from moa.strategies.finals.tool_vote import ToolVote
from moa.strategies.finals.vote import Vote
from moa.strategies.read import KINDS, Kind, Reader, answer_kind
from moa.trace import Call

__all__ = ["Auto"]


class Auto(FinalRule):
    """Reads whether the answers are numbers, code or prose (`moa.strategies.read.answer_kind`)
    and lets that kind's rule decide; each kind's rule takes its own options:

        final: {rule: auto, number: {rule: vote, decide_early: {}}, code: behaviour, prose: first}

    While the last layer runs, the kind is read from the answers that have finished (from two
    of them, unless they read as numbers, or from the one started first under
    `decide_early: {start: 1}`) and that kind's rule may settle the layer early: with
    `prose: {rule: first, decide_early: true}`, a greedy answer that reads as prose is the
    outcome before the others start.

    Answers that call tools (where a request gives tools) are the `tool` kind when at least
    half of them do: its rule (`tool_vote` by default: the calls most answers make, ties to
    the greedy answer's) picks among them. Where the request gives tools, the tool rule alone
    says whether the layer is settled, and its start applies: with
    `tool: {rule: first, decide_early: true}` only the greedy answer starts, and it is the
    outcome, a call or not (the others start only if it fails)."""

    name = "auto"
    number: RuleField = Vote()
    code: RuleField = Behaviour()
    prose: RuleField = Agreement()
    tool: RuleField = ToolVote()

    def rule_for(self, kind: Kind) -> FinalRule:
        rule: FinalRule = getattr(self, kind)
        return rule

    def _rules(self) -> tuple[FinalRule, ...]:
        return (self.number, self.code, self.prose, self.tool)

    def judges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(j for rule in self._rules() for j in rule.judges()))

    def with_judges(self, rename: Callable[[str], str]) -> Self:
        update: dict[str, Any] = {k: self.rule_for(k).with_judges(rename) for k in KINDS}
        update["tool"] = self.tool.with_judges(rename)
        return self.model_copy(update=update)

    def tool_rule(self) -> FinalRule | None:
        return self.tool

    @property
    def logprobs(self) -> bool:
        return any(rule.logprobs for rule in self._rules())

    @property
    def start(self) -> int | None:
        return self.number.start

    @property
    def tool_start(self) -> int | None:
        return self.tool.start

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        ended = [i for i, c in enumerate(calls) if c.text is not None or c.error is not None]
        ended.sort(key=lambda i: calls[i].started_s + calls[i].latency_s)  # finishing order
        ok = [calls[i] for i in ended if calls[i].ok]
        if ctx.tools:  # the tool rule weighs text answers too: it alone may settle the layer
            why = self.tool.settled(ctx, calls, read)
            return None if why is None else f"the request gives tools: {why}"
        if ok and sum(1 for c in ok if c.tool_calls) * 2 >= len(ok):
            why = self.tool.settled(ctx, calls, read)
            return None if why is None else f"the answers call tools: {why}"
        finished = [c.text or "" for c in ok]
        kind = answer_kind(finished)
        if kind != "number" and len(finished) < min(2, len(calls), self.start or len(calls)):
            return None  # a kind other than numbers is read from two answers (or all started)
        rule = self.rule_for(kind)
        why = rule.settled(ctx, calls, read)
        if why is None or kind == "number":
            return why
        return f"the answers read as {kind}, whose rule is {rule.name}: {why}"

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        kind = answer_kind(answers.texts)
        rule = self.rule_for(kind)
        ctx.note(f"the answers read as {kind}: {rule.name}")
        return await rule.answer(ctx, answers, read)
