"""final: first — the first (greedy) answer, as it is."""

from __future__ import annotations

from collections.abc import Sequence

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import FinalRule
from moa.strategies.read import Reader
from moa.trace import Call

__all__ = ["First"]


class First(FinalRule):
    """The first answer of the last layer (its greedy one, where there is one). With
    `decide_early`, only the first starts; the others start only if it fails."""

    name = "first"
    decide_early: bool = False

    @property
    def start(self) -> int | None:
        return 1 if self.decide_early else None

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        if self.decide_early and calls and calls[0].ok:
            return "the first answer is in"
        return None

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        ctx.note("the first answer")
        return answers.texts[0]

    def tool_rule(self) -> FinalRule | None:
        return self  # the greedy call, as it is

    async def pick(self, ctx: StepContext, answers: Answers, read: Reader) -> int | None:
        ctx.note("the first answer")
        return 0
