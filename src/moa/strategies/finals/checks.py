"""final: checks — the answer that meets the most constraints the prompt states in words."""

from __future__ import annotations

from collections.abc import Sequence

from moa.strategies.base import Answers, StepContext
from moa.strategies.constraints import constraints, met
from moa.strategies.finals.base import FinalRule
from moa.strategies.read import Reader
from moa.trace import Call

__all__ = ["Checks"]


class Checks(FinalRule):
    """Reads the constraints the question states in words (`moa.strategies.constraints`: no
    commas, a number of words, all lowercase, a title in << >>, ...) and takes the answer that
    meets the most of them, ties to the first (greedy) one; with none stated, the first. With
    `decide_early`, the answers still running stop (or never start) once the first is in and
    meets every one: no other could be taken over it."""

    name = "checks"
    decide_early: bool = False

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        if not (self.decide_early and calls and calls[0].ok):
            return None
        tests = constraints(ctx.question)
        if not tests:
            return "the question states no constraint: the first answer is taken"
        if met(tests, calls[0].text or "") == len(tests):
            return f"the first answer meets all {len(tests)} constraints the question states"
        return None

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        tests = constraints(ctx.question)
        scores = [met(tests, text) for text in answers.texts]
        index = scores.index(max(scores)) if scores else 0
        names = ", ".join(name for name, _ in tests) or "none"
        ctx.note(
            f"select: answer {index + 1}, meeting {scores[index] if scores else 0} of "
            f"{len(tests)} constraints the question states ({names})"
        )
        return answers.texts[index]
