"""final: behaviour — code chosen by what it does on the prompt's own examples (sandboxed)."""

from __future__ import annotations

from moa.strategies.base import Answers, StepContext
from moa.strategies.behaviour import aselect_by_behaviour, function_prompt
from moa.strategies.finals.agreement import by_agreement
from moa.strategies.finals.base import FinalRule
from moa.strategies.read import Reader

__all__ = ["Behaviour"]


class Behaviour(FinalRule):
    """For answers that write a function the prompt defines: the one that passes the most of
    the prompt's examples and whose behaviour the others share (`moa.strategies.behaviour`).
    When the prompt defines no function, the answer most in agreement."""

    name = "behaviour"

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        texts = answers.texts
        found = function_prompt(ctx.question)
        if found is None:
            return by_agreement(ctx, texts, " (the prompt defines no function to run)")
        code, name = found
        choice = await aselect_by_behaviour(texts, prompt=code, entry_point=name)
        ctx.note(f"select: answer {choice.index + 1} by {choice.reason}")
        return texts[choice.index]
