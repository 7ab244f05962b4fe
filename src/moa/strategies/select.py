"""Finals that pick one of the answers as it is: the one most in agreement with the others (no
call), the one a model names as the most consistent (Universal Self-Consistency), or, for code,
the one whose behaviour the others share (run in the sandbox)."""

from __future__ import annotations

from moa.behaviour import aselect_by_behaviour, function_prompt
from moa.selection import most_agreed, parse_usc, usc_prompt
from moa.strategies.base import Answers, StepContext, judge_agent
from moa.strategies.config import Rule, Strategy
from moa.types import Message

__all__ = ["choose"]


def _question(ctx: StepContext) -> str:
    return next((m.content for m in reversed(ctx.messages) if m.role == "user"), "")


def _agreement(ctx: StepContext, texts: list[str], why: str = "") -> str:
    choice = most_agreed(texts)
    ctx.note(f"select: answer {choice.index + 1} by {choice.reason}{why}")
    return texts[choice.index]


async def choose(rule: Rule, ctx: StepContext, answers: Answers, config: Strategy) -> str:
    """The answer picked by `rule` (agreement, usc or behaviour), with the choice in the trace."""
    texts = answers.texts
    if rule == "usc":
        judge = judge_agent(config.judge, max(config.judge_max_tokens, 32), ctx.judge_base)
        shown = [Message("user", usc_prompt(_question(ctx), texts))]
        call = await ctx.call(judge, "judge", shown, ctx.final_layer, 0)
        index = parse_usc(call.text or "", len(texts)) if call.ok else None
        if index is not None:
            ctx.note(f"select: answer {index + 1}, named by the USC selector")
            return texts[index]
        return _agreement(ctx, texts, " (the USC selector named none)")
    if rule == "behaviour":
        found = function_prompt(_question(ctx))
        if found is None:
            return _agreement(ctx, texts, " (the prompt defines no function to run)")
        code, name = found
        choice = await aselect_by_behaviour(texts, prompt=code, entry_point=name)
        ctx.note(f"select: answer {choice.index + 1} by {choice.reason}")
        return texts[choice.index]
    return _agreement(ctx, texts)
