"""The recipe's `strategy:` section as steps: filter, council, selection, early stop, the finals
(vote, rank) and the aggregator's evidence and Self-MoA-Seq rounds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from moa.prompts import add_system, inject, numbered
from moa.selection import answer_kind, decide_early, mean_weight, plurality
from moa.strategies.base import Answers, Final, Step, StepContext, judge_agent
from moa.strategies.config import Rule, Strategy
from moa.strategies.select import choose
from moa.strategies.votes import (
    aggregate_block,
    borda,
    parse_choice,
    parse_ranking,
    review_text,
    seq_rounds,
    tally,
)
from moa.trace import Call

__all__ = ["RecipeStrategy", "build"]


def build(config: Strategy) -> Step:
    """The steps of a recipe's strategy; the identity for the default (the paper's MoA)."""
    return Step() if config == Strategy() else RecipeStrategy(config)


class RecipeStrategy(Step):
    def __init__(self, config: Strategy) -> None:
        self.config = config
        self.read = config.read()

    # while the last layer runs -------------------------------------------------------------
    def decided(self, ctx: StepContext, number: int, calls: Sequence[Call]) -> str | None:
        rule = self.config.decide_early
        if rule is None or number != len(ctx.layers):
            return None
        ended = [i for i, c in enumerate(calls) if c.text is not None or c.error is not None]
        ended.sort(key=lambda i: calls[i].started_s + calls[i].latency_s)  # finishing order
        if self.config.final == "auto":  # the kind of the answers that have finished
            finished = [calls[i].text or "" for i in ended if calls[i].ok]
            kind = answer_kind(finished)
            if kind != "number":  # its rule is not a vote: only 'first' can be decided early
                wanted = min(2, len(calls))  # the kind read from two answers, not one
                first = getattr(self.config.by_kind, kind) == "first"
                if first and calls[0].ok and len(finished) >= wanted:
                    return f"the answers read as {kind}, whose rule is the first answer"
                return None
        done = {i: self.read(calls[i].text) if calls[i].ok else None for i in ended}
        weights = self._weights([calls[i] for i in ended])
        weighed = dict(zip(ended, weights, strict=True)) if weights is not None else None
        early = decide_early(done, total=len(calls), window=rule.window, weights=weighed)
        if early is None:
            return None
        if early.reason == "cannot change":
            left = early.remaining
            return f"the vote is decided ({early.answer}) whatever the {left} still running say"
        return f"the last {rule.window} answers agree on {early.answer}"

    # after a layer ---------------------------------------------------------------------------
    async def after_layer(self, ctx: StepContext, number: int, answers: Answers) -> Answers:
        config = self.config
        calls = answers.calls
        if config.drop_unanswered:
            kept = [c for c in calls if self.read(c.text) is not None]
            if kept and len(kept) < len(calls):
                ctx.note(
                    f"layer {number}: dropped {len(calls) - len(kept)} answers "
                    "with no readable final answer"
                )
                calls = kept
        answers = Answers(calls)
        index = len(ctx.layers[number - 1])  # side calls are numbered after the layer's agents
        if config.council is not None and len(calls) > 1:
            answers = await self._council(ctx, number, answers, index)
            index += len(calls)
        if config.select is not None and len(answers.calls) > config.select.top_k:
            answers = await self._select(ctx, number, answers, index)
        return answers

    async def _council(
        self, ctx: StepContext, number: int, answers: Answers, index: int
    ) -> Answers:
        council = self.config.council
        assert council is not None
        texts = answers.texts
        n = len(texts)
        orders = [[(i + k) % n for i in range(n)] for k in range(n)]  # rotated: none always first
        reviews = []
        for k, proposer in enumerate(answers.calls):
            agent = ctx.layers[number - 1][proposer.index].model_copy(
                update={"temperature": 0, "max_tokens": council.max_tokens, "seed": None}
            )
            shown = add_system(
                ctx.messages, numbered(self.config.review_prompt, [texts[i] for i in orders[k]])
            )
            reviews.append(ctx.call(agent, "judge", shown, number, index + k))
        done = await asyncio.gather(*reviews)
        rankings = []
        for k, call in enumerate(done):
            ranked = parse_ranking(call.text, n) if call.ok else None
            if ranked is not None:
                rankings.append([orders[k][i] for i in ranked])
        if not rankings:
            ctx.note(f"layer {number}: no council review could be read")
            return answers
        best = borda(rankings, n)
        review = review_text(best, len(rankings))
        ctx.note(f"layer {number}: council ranking {review}")
        return Answers([answers.calls[i] for i in best][: council.top_k], review)

    async def _select(self, ctx: StepContext, number: int, answers: Answers, index: int) -> Answers:
        select = self.config.select
        assert select is not None
        judge = judge_agent(select.judge, select.max_tokens, ctx.judge_base)
        texts = answers.texts
        shown = inject(ctx.messages, self.config.review_prompt, texts)
        call = await ctx.call(judge, "judge", shown, number, index)
        ranked = parse_ranking(call.text, len(texts)) if call.ok else None
        if ranked is None:
            ctx.note(
                f"layer {number}: the judge's ranking could not be read; kept the first "
                f"{select.top_k} answers"
            )
            ranked = list(range(len(texts)))
        return Answers([answers.calls[i] for i in ranked[: select.top_k]], answers.review)

    # early stop ------------------------------------------------------------------------------
    def _agree(self, texts: list[str]) -> tuple[bool, str]:
        rule = self.config.early_stop
        if rule is None or len(texts) < rule.min_answers:
            return False, ""
        t = tally(texts, self.read)
        if not t.total or t.winner is None or t.votes / t.total < rule.agree:
            return False, ""
        return True, f"{t.votes} of {t.total} answers agree on {t.winner}"

    def stop_after(self, ctx: StepContext, number: int, answers: Answers) -> bool:
        agreed, how = self._agree(answers.texts)
        if agreed:
            ctx.note(f"early stop after layer {number}: {how}")
        return agreed

    # the final -------------------------------------------------------------------------------
    async def decide(self, ctx: StepContext, answers: Answers) -> str | None:
        config = self.config
        texts = answers.texts
        stop = config.early_stop
        if stop is not None and stop.skip_aggregator and self._agree(texts)[0]:
            t = tally(texts, self.read)
            assert t.index is not None
            ctx.note(f"the answers agree ({t.votes} of {t.total} on {t.winner}): no aggregation")
            return texts[t.index]
        rule: Rule
        if config.final == "auto":
            kind = answer_kind(texts)
            rule = getattr(config.by_kind, kind)
            ctx.note(f"the answers read as {kind}: {rule}")
        elif config.final == "select":
            rule = config.select_by
        else:
            rule = config.final
        if rule == "synthesize":
            return None
        if rule == "first":
            ctx.note("the first answer")
            return texts[0]
        if rule == "vote":
            return self._vote(ctx, answers)
        if rule == "rank":
            return await self._rank(ctx, answers)
        return await choose(rule, ctx, answers, config)

    def _weights(self, calls: Sequence[Call]) -> list[float] | None:
        if self.config.weights != "confidence":
            return None
        return [mean_weight(c.logprob, temperature=self.config.weight_temperature) for c in calls]

    def _vote(self, ctx: StepContext, answers: Answers) -> str | None:
        texts = answers.texts
        weights = self._weights(answers.calls)
        vote = plurality([self.read(t) for t in texts], weights)
        if vote.index is None:
            if self.config.unread == "synthesize":
                ctx.note("vote: no answer could be read; synthesising")
                return None
            ctx.note("vote: no answer could be read")
            return texts[0]
        if weights is None:
            votes = sum(1 for t in texts if self.read(t) == vote.answer)
            ctx.note(f"vote: {vote.answer} with {votes} of {len(texts)}")
        else:
            score, total = vote.tally[vote.answer or ""], sum(vote.tally.values())
            ctx.note(f"vote weighted by confidence: {vote.answer} with {score:.2f} of {total:.2f}")
        return texts[vote.index]

    async def _rank(self, ctx: StepContext, answers: Answers) -> str:
        config = self.config
        texts = answers.texts
        judge = judge_agent(config.judge, config.judge_max_tokens, ctx.judge_base)
        shown = inject(ctx.messages, config.rank_prompt, texts)
        call = await ctx.call(judge, "judge", shown, ctx.final_layer, 0)
        choice = parse_choice(call.text, len(texts)) if call.ok else None
        if choice is not None:
            ctx.note(f"ranker chose {choice + 1}")
            return texts[choice]
        t = tally(texts, self.read)
        fallback = t.index if t.index is not None else 0
        ctx.note(
            f"the ranker's answer could not be read ({(call.text or call.error or '')[:80]!r});"
            f" returned answer {fallback + 1} by vote"
        )
        return texts[fallback]

    async def before_final(self, ctx: StepContext, answers: Answers) -> Final:
        """Self-MoA-Seq rounds run here; the evidence and the review join the system text."""
        config = self.config
        references = answers.texts
        layer_no = ctx.final_layer
        rounds = seq_rounds(len(references), config.seq.window) if config.seq else []
        synthesis: str | None = None
        for number, members in enumerate(rounds[:-1]):
            refs = [references[i] for i in members]
            if synthesis is not None:
                refs = [synthesis, *refs]
            block = aggregate_block(
                ctx.prompt, refs, config, answers.review, seq=synthesis is not None
            )
            call = await ctx.call(
                ctx.aggregator, "aggregator", add_system(ctx.messages, block), layer_no, 0
            )
            layer_no += 1
            if call.ok:
                synthesis = call.text or ""
            else:
                ctx.note(f"Seq round {number + 1} failed; its answers are skipped")
        if rounds:
            refs = [references[i] for i in rounds[-1]]
            references = [synthesis, *refs] if synthesis is not None else refs
        if config.evidence == "none" and answers.review is None and synthesis is None:
            return Final(ctx.messages, references, layer_no)
        block = aggregate_block(
            ctx.prompt, references, config, answers.review, seq=synthesis is not None
        )
        return Final(add_system(ctx.messages, block), [], layer_no)
