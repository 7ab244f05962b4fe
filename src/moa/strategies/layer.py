"""What a strategy does with a layer's answers before the next layer sees them: drop those
with no readable answer, let a council review them, prune them to the best few, or stop
adding layers once they agree."""

from __future__ import annotations

import asyncio

from moa.prompts import briefed
from moa.strategies.base import Answers, StepContext
from moa.strategies.config import Council, Prune, StopLayers
from moa.strategies.judges import borda, judge_agent, parse_ranking, review_text
from moa.strategies.read import Reader
from moa.strategies.tally import Tally, tally

__all__ = ["agreed", "drop_unanswered", "prune", "review"]


def drop_unanswered(ctx: StepContext, number: int, answers: Answers, read: Reader) -> Answers:
    """The answers with a readable final answer (all of them, if none has one)."""
    kept = [c for c in answers.calls if read(c.text) is not None]
    if not kept or len(kept) == len(answers.calls):
        return answers
    ctx.note(
        f"layer {number}: dropped {len(answers.calls) - len(kept)} answers "
        "with no readable final answer"
    )
    return Answers(kept, answers.review)


async def review(
    ctx: StepContext, number: int, answers: Answers, council: Council, prompt: str, index: int
) -> Answers:
    """LLM-Council: each agent of the layer ranks the anonymised answers, shown in an order
    rotated for each reviewer; the answers go on in Borda order, the review noted."""
    texts = answers.texts
    n = len(texts)
    orders = [[(i + k) % n for i in range(n)] for k in range(n)]  # rotated: none always first
    calls = []
    for k, proposer in enumerate(answers.calls):
        agent = ctx.layers[number - 1][proposer.index].model_copy(
            update={"temperature": 0, "max_tokens": council.max_tokens, "seed": None}
        )
        shown = briefed(ctx.messages, prompt, [texts[i] for i in orders[k]])
        calls.append(ctx.call(agent, "judge", shown, number, index + k))
    done = await asyncio.gather(*calls)
    rankings = []
    for k, call in enumerate(done):
        ranked = parse_ranking(call.text, n) if call.ok else None
        if ranked is not None:
            rankings.append([orders[k][i] for i in ranked])
    if not rankings:
        ctx.note(f"layer {number}: no council review could be read")
        return answers
    best = borda(rankings, n)
    verdict = review_text(best, len(rankings))
    ctx.note(f"layer {number}: council ranking {verdict}")
    return Answers([answers.calls[i] for i in best][: council.top_k], verdict)


async def prune(
    ctx: StepContext, number: int, answers: Answers, rule: Prune, prompt: str, index: int
) -> Answers:
    """Sparse selection: a judge ranks the answers and only the best `top_k` go on (the first
    ones when its ranking cannot be read)."""
    judge = judge_agent(rule.judge, rule.max_tokens, ctx.judge_base)
    texts = answers.texts
    call = await ctx.call(judge, "judge", briefed(ctx.messages, prompt, texts), number, index)
    ranked = parse_ranking(call.text, len(texts)) if call.ok else None
    if ranked is None:
        ctx.note(
            f"layer {number}: the judge's ranking could not be read; kept the first "
            f"{rule.top_k} answers"
        )
        ranked = list(range(len(texts)))
    return Answers([answers.calls[i] for i in ranked[: rule.top_k]], answers.review)


def agreed(texts: list[str], rule: StopLayers | None, read: Reader) -> Tally | None:
    """The tally of `texts` when enough of them agree to stop adding layers, else None."""
    if rule is None or len(texts) < rule.min_answers:
        return None
    t = tally([read(text) for text in texts])
    if not t.total or t.winner is None or t.votes / t.total < rule.agree:
        return None
    return t
