"""Strategies without an engine: the steps with a context of their own."""

from __future__ import annotations

from moa.agent import Agent
from moa.plan import compile_recipe
from moa.prompts import Brief
from moa.strategies import Answers, Step, StepContext, Strategy, build
from moa.trace import AgentRole, Call
from moa.types import Message


# strategies without an engine ------------------------------------------------------------------
def _context(answers: dict[str, str]) -> tuple[StepContext, list[tuple[str, AgentRole]]]:
    made: list[tuple[str, AgentRole]] = []

    async def call(agent: Agent, role: AgentRole, shown: Brief, layer: int, index: int) -> Call:
        made.append((agent.model, role))
        text = answers[agent.model]
        return Call(
            layer=layer, index=index, agent=agent.label, role=role, model=agent.model, text=text
        )

    agg = Agent(model="fake:agg")
    ctx = StepContext(
        messages=[Message("user", "q")],
        layers=[[Agent(model="fake:p")] * 3],
        aggregator=agg,
        judge_base=agg,
        prompt="Answers:",
        call=call,
    )
    return ctx, made


def _answers(*texts: str) -> Answers:
    return Answers(
        [
            Call(layer=1, index=i, agent=f"p{i}", role="proposer", model="fake:p", text=t)
            for i, t in enumerate(texts)
        ]
    )


def test_the_default_strategy_is_the_identity() -> None:
    assert type(build(Strategy())) is Step
    assert type(compile_recipe({"layers": [], "aggregator": "fake:x"}).strategy) is Step


async def test_a_vote_decides_without_a_call() -> None:
    ctx, made = _context({})
    step = build(Strategy.model_validate({"final": "vote"}))
    assert await step.answer(ctx, _answers("Answer: 4", "Answer: 5", "Answer: 5")) == "Answer: 5"
    assert made == [] and ctx.notes == ["vote: 5 with 2 of 3"]


async def test_a_ranker_is_one_judge_call_at_temperature_zero() -> None:
    ctx, made = _context({"fake:judge": "2"})
    step = build(Strategy.model_validate({"final": {"rule": "rank", "judge": "fake:judge"}}))
    assert await step.answer(ctx, _answers("one", "two", "three")) == "two"
    assert made == [("fake:judge", "judge")]


async def test_selection_keeps_the_judges_top_k() -> None:
    ctx, _ = _context({"fake:agg": "3 > 1 > 2"})
    step = build(Strategy.model_validate({"select": {"top_k": 2}}))
    kept = await step.after_layer(ctx, 1, _answers("a", "b", "c"))
    assert kept.texts == ["c", "a"]
