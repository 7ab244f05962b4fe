"""A recipe's `strategy:` section as steps: the layer's filters (`layer`), the early stop, the
final rule (`finals`) and the aggregator's input (`aggregate`)."""

from __future__ import annotations

from collections.abc import Sequence

from moa.strategies.aggregate import aggregator_brief, seq_rounds
from moa.strategies.base import AggregatorInput, Answers, Step, StepContext
from moa.strategies.config import Strategy
from moa.strategies.finals.tool_vote import ToolVote
from moa.strategies.layer import agreed, drop_unanswered, prune, review
from moa.strategies.tally import tally
from moa.trace import Call

__all__ = ["RecipeStrategy", "build"]


def build(config: Strategy) -> Step:
    """The steps of a recipe's strategy; the identity for the default (the paper's MoA)."""
    return Step() if config == Strategy() else RecipeStrategy(config)


class RecipeStrategy(Step):
    def __init__(self, config: Strategy) -> None:
        self.config = config
        self.final = config.final
        self.read = config.read()

    def settled(self, ctx: StepContext, number: int, calls: Sequence[Call]) -> str | None:
        if number != len(ctx.layers):  # only the last layer's answers go to the final rule
            return None
        return self.final.settled(ctx, calls, self.read)

    async def after_layer(self, ctx: StepContext, number: int, answers: Answers) -> Answers:
        config = self.config
        if config.drop_unanswered:
            answers = drop_unanswered(ctx, number, answers, self.read)
        answers = Answers(answers.calls)
        index = len(ctx.layers[number - 1])  # side calls are numbered after the layer's agents
        if config.council is not None and len(answers.calls) > 1:
            count = len(answers.calls)
            answers = await review(
                ctx, number, answers, config.council, config.review_prompt, index
            )
            index += count
        if config.prune is not None and len(answers.calls) > config.prune.top_k:
            answers = await prune(ctx, number, answers, config.prune, config.review_prompt, index)
        return answers

    def stop_after(self, ctx: StepContext, number: int, answers: Answers) -> bool:
        t = agreed(answers.texts, self.config.early_stop, self.read)
        if t is not None:
            agree = f"{t.votes} of {t.total} answers agree on {t.winner}"
            ctx.note(f"early stop after layer {number}: {agree}")
        return t is not None

    @property
    def chooses(self) -> bool:
        return self.final.chooses

    async def answer(self, ctx: StepContext, answers: Answers) -> str | Call | None:
        if any(c.tool_calls for c in answers.calls):  # the last layer acted
            rule = self.final.tool_rule() or ToolVote()
            index = await rule.pick(ctx, answers, self.read)
            if index is not None:
                return answers.calls[index]
            answers = Answers([c for c in answers.calls if not c.tool_calls], answers.review)
            if not answers.calls:
                return None
        stop = self.config.early_stop
        texts = answers.texts
        if stop is not None and stop.skip_aggregator:
            t = agreed(texts, stop, self.read)
            if t is not None and t.index is not None:
                ctx.note(
                    f"the answers agree ({t.votes} of {t.total} on {t.winner}): no aggregation"
                )
                return texts[t.index]
        return await self.final.answer(ctx, answers, self.read)

    async def before_final(self, ctx: StepContext, answers: Answers) -> AggregatorInput:
        """Self-MoA-Seq rounds run here; the evidence and the review join the aggregator's
        input, whose answers the call trims to the context window."""
        config = self.config
        references = answers.texts
        layer_no = ctx.final_layer

        def brief(refs: list[str], seq: bool, final: bool = False) -> AggregatorInput:
            evidence = tally([self.read(r) for r in refs]) if config.evidence == "votes" else None
            messages = ctx.final_messages if final else ctx.messages  # only the final acts
            shown = aggregator_brief(
                messages, ctx.prompt, refs, evidence=evidence, review=answers.review, seq=seq
            )
            return AggregatorInput(shown, layer_no)

        rounds = seq_rounds(len(references), config.seq.window) if config.seq else []
        synthesis: str | None = None
        for number, members in enumerate(rounds[:-1]):
            refs = [references[i] for i in members]
            shown = brief(
                [synthesis, *refs] if synthesis is not None else refs, synthesis is not None
            )
            call = await ctx.call(ctx.aggregator, "aggregator", shown.brief, layer_no, 0)
            layer_no += 1
            if call.ok:
                synthesis = call.text or ""
            else:
                ctx.note(f"Seq round {number + 1} failed; its answers are skipped")
        if rounds:
            refs = [references[i] for i in rounds[-1]]
            references = [synthesis, *refs] if synthesis is not None else refs
        return brief(references, synthesis is not None, final=True)
