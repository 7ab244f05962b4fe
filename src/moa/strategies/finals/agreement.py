"""final: agreement — the answer most in agreement with the others, without a call."""

from __future__ import annotations

from moa.strategies.agreement import most_agreed
from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import FinalRule
from moa.strategies.read import Reader

__all__ = ["Agreement", "by_agreement"]


def by_agreement(ctx: StepContext, texts: list[str], why: str = "") -> str:
    """The answer most in agreement with the others, with the choice noted."""
    choice = most_agreed(texts)
    ctx.note(f"select: answer {choice.index + 1} by {choice.reason}{why}")
    return texts[choice.index]


class Agreement(FinalRule):
    """The answer with the most word-bigram overlap with the others (ties to the first)."""

    name = "agreement"

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        return by_agreement(ctx, answers.texts)
