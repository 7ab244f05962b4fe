"""final: rank — a judge picks the best answer (the paper's LLM-ranker baseline)."""

from __future__ import annotations

from pydantic import Field

from moa.prompts import briefed
from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import JudgedRule
from moa.strategies.judges import RANK_PROMPT, judge_agent, parse_choice
from moa.strategies.read import Reader
from moa.strategies.tally import tally

__all__ = ["Rank"]


class Rank(JudgedRule):
    """A judge is shown the numbered answers and names the best; when its answer cannot be
    read, the vote decides."""

    name = "rank"
    max_tokens: int = Field(default=16, gt=0)
    """The judge's answer budget: it is asked for a number only."""
    prompt: str = RANK_PROMPT

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        texts = answers.texts
        judge = judge_agent(self.judge, self.max_tokens, ctx.judge_base)
        shown = briefed(ctx.messages, self.prompt, texts)
        call = await ctx.call(judge, "judge", shown, ctx.final_layer, 0)
        choice = parse_choice(call.text, len(texts)) if call.ok else None
        if choice is not None:
            ctx.note(f"ranker chose {choice + 1}")
            return texts[choice]
        vote = tally([read(t) for t in texts])
        fallback = vote.index if vote.index is not None else 0
        ctx.note(
            f"the ranker's answer could not be read ({(call.text or call.error or '')[:80]!r});"
            f" returned answer {fallback + 1} by vote"
        )
        return texts[fallback]
