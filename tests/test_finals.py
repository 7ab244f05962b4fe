"""Finals that choose by answer kind: votes weighted by confidence (CISC), the answer most in
agreement with the others, USC, code chosen by behaviour; every choice noted in the trace."""

from __future__ import annotations

from typing import Any

import pytest
from recipes import recipe

from moa import FakeBackend, MoA
from moa.errors import RecipeError
from moa.plan import compile_recipe
from moa.recipe import load_recipe


def proposers(n: int) -> list[list[str]]:
    return [[f"fake:p{i}" for i in range(n)]]


async def run(fake: FakeBackend, data: dict[str, Any], prompt: str = "q") -> Any:
    async with MoA(data, backends={"fake": fake}) as moa:
        return await moa.arun(prompt)


def fake_of(*answers: str) -> FakeBackend:
    fake = FakeBackend()
    for i, text in enumerate(answers):
        fake.respond(f"p{i}", text)
    return fake


async def test_confidence_weights_can_outvote_a_plain_majority() -> None:
    fake = fake_of("Answer: 5", "Answer: 5", "Answer: 7")
    fake.confidence("p0", -3.0).confidence("p1", -3.0).confidence("p2", -0.1)
    plain = await run(fake, recipe(proposers(3), strategy={"final": "vote"}))
    assert plain.text == "Answer: 5"
    weighted = await run(
        fake, recipe(proposers(3), strategy={"final": "vote", "weights": "confidence"})
    )
    assert weighted.text == "Answer: 7"
    assert any(n.startswith("vote weighted by confidence: 7") for n in weighted.trace.notes)
    answered = weighted.trace.layer(1)
    assert [c.logprob for c in answered] == [-3.0, -3.0, -0.1]
    assert all(r.settings.logprobs for r in fake.requests("p2")[-1:])


def test_confidence_weights_ask_the_last_layer_for_logprobs() -> None:
    plan = compile_recipe(recipe(proposers(3), strategy={"final": "vote", "weights": "confidence"}))
    assert all(a.logprobs for a in plan.layers[-1].agents)
    assert (
        not compile_recipe(recipe(proposers(3), strategy={"final": "vote"}))
        .layers[-1]
        .agents[0]
        .logprobs
    )


async def test_select_by_agreement_makes_no_call() -> None:
    fake = fake_of(
        "Paris is the capital of France.",
        "The capital of France is Paris.",
        "Bananas are yellow.",
    )
    result = await run(fake, recipe(proposers(3), strategy={"final": "select"}))
    assert result.text in ("Paris is the capital of France.", "The capital of France is Paris.")
    assert not fake.requests("agg")
    assert any("agreement" in n for n in result.trace.notes)


async def test_usc_asks_a_selector_and_reads_its_choice() -> None:
    fake = fake_of("one", "two", "three")
    fake.respond("judge", "The most consistent response is Response 3.")
    result = await run(
        fake,
        recipe(
            proposers(3), strategy={"final": "select", "select_by": "usc", "judge": "fake:judge"}
        ),
    )
    assert result.text == "three"
    (asked,) = fake.requests("judge")
    assert "Response 2: two" in asked.messages[-1].content
    assert asked.settings.temperature == 0


PROMPT = '''Complete the function.

```python
def add(a, b):
    """Add two numbers.
    >>> add(2, 3)
    5
    """
```'''


async def test_auto_chooses_code_by_its_behaviour() -> None:
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    right = "```python\ndef add(a, b):\n    return a + b\n```"
    also_right = "```python\ndef add(a, b):\n    return b + a\n```"
    fake = fake_of(wrong, right, also_right)
    result = await run(fake, recipe(proposers(3), strategy={"final": "auto"}), PROMPT)
    assert result.text == right
    assert result.trace.notes[0] == "the answers read as code: behaviour"
    assert "behaviour: passed 1/1" in result.trace.notes[1]


async def test_auto_votes_on_numbers_and_selects_prose() -> None:
    numbers = await run(
        fake_of("Answer: 4", "Answer: 9", "Answer: 9"),
        recipe(proposers(3), strategy={"final": "auto"}),
    )
    assert numbers.text == "Answer: 9"
    assert numbers.trace.notes[0] == "the answers read as number: vote"
    prose = await run(
        fake_of("a cat sat", "a cat sat down", "dogs run"),
        recipe(proposers(3), strategy={"final": "auto"}),
    )
    assert prose.trace.notes[0] == "the answers read as prose: agreement"
    assert prose.text in ("a cat sat", "a cat sat down")


async def test_auto_can_synthesise_a_kind() -> None:
    fake = fake_of("a cat sat", "a dog ran", "a bird flew")
    fake.respond("agg", "all three animals")
    data = recipe(proposers(3), strategy={"final": "auto", "by_kind": {"prose": "synthesize"}})
    result = await run(fake, data)
    assert result.text == "all three animals" and fake.requests("agg")


def test_an_unknown_rule_names_the_field() -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe(proposers(3), strategy={"final": "auto", "by_kind": {"code": "magic"}}))
    assert info.value.field == "strategy.final"
    assert "auto: code: unknown final rule 'magic'" in str(info.value)
    new_form = {"final": {"rule": "auto", "code": {"rule": "magic"}}}
    with pytest.raises(RecipeError, match="auto: code: unknown final rule 'magic'"):
        load_recipe(recipe(proposers(3), strategy=new_form))


async def test_usc_asks_its_selector_for_the_budget_the_recipe_gives() -> None:
    for strategy, budget in (
        ({"final": "usc"}, 32),
        ({"final": {"rule": "usc", "max_tokens": 8}}, 8),
        ({"final": "select", "select_by": "usc", "judge_max_tokens": 16}, 16),  # the old form
    ):
        fake = FakeBackend()
        fake.respond("agg", "The most consistent response is Response 2")
        result = await run(fake, recipe(proposers(3), strategy=strategy))
        (judged,) = fake.requests("agg")
        assert judged.settings.max_tokens == budget, strategy
        assert result.text == "[p1] answer to: q"


def test_an_option_on_the_wrong_rule_names_the_rule() -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe(proposers(3), strategy={"final": {"rule": "vote", "judge": "fake:j"}}))
    assert info.value.field == "strategy.final"
    assert "'judge' is not an option of the vote rule" in str(info.value)
    assert "weights" in str(info.value)  # the options it does take
