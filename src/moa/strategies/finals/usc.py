"""final: usc — a model names the most consistent answer (Universal Self-Consistency)."""

from __future__ import annotations

from pydantic import Field

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.agreement import by_agreement
from moa.strategies.finals.base import JudgedRule
from moa.strategies.judges import judge_agent, parse_usc, usc_brief
from moa.strategies.read import Reader

__all__ = ["Usc"]


class Usc(JudgedRule):
    """Universal Self-Consistency (arXiv 2311.17311): a selector is shown the answers and
    names the most consistent one; when it names none, the answer most in agreement."""

    name = "usc"
    max_tokens: int = Field(default=32, gt=0)
    """The selector's answer budget ("The most consistent response is Response X")."""

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        texts = answers.texts
        judge = judge_agent(self.judge, self.max_tokens, ctx.judge_base)
        call = await ctx.call(judge, "judge", usc_brief(ctx.question, texts), ctx.final_layer, 0)
        index = parse_usc(call.text or "", len(texts)) if call.ok else None
        if index is not None:
            ctx.note(f"select: answer {index + 1}, named by the USC selector")
            return texts[index]
        return by_agreement(ctx, texts, " (the USC selector named none)")
