"""The final rules in runs on the fake backend: which calls each makes and what it returns."""

from __future__ import annotations

from typing import Any

import pytest
from recipes import make, proposers, recipe, respond_in_order, run, script

from moa import AGGREGATE_PROMPT, FakeBackend, MoA, Token
from moa.errors import RecipeError
from moa.plan import compile_recipe
from moa.prompts import numbered
from moa.recipe import load_recipe
from moa.strategies.judges import (
    RANK_PROMPT,
)


def roles(result: Any) -> list[tuple[int, str, str]]:
    return [(c.layer, c.role, c.agent) for c in result.trace.calls]


PROMPT = '''Complete the function.

```python
def add(a, b):
    """Add two numbers.
    >>> add(2, 3)
    5
    """
```'''


async def test_majority_vote_returns_the_chosen_text_without_an_aggregator_call() -> None:
    fake = FakeBackend()
    script(fake, "a says\nAnswer: 5", "b says\nAnswer: 7", "c says\nAnswer: 7")
    moa = make(fake, {"final": "vote"})
    events = [e async for e in moa.astream("q")]
    result = events[-1].result  # type: ignore[union-attr]
    assert result.text == "b says\nAnswer: 7"
    assert fake.requests("agg") == []
    assert [(r, role) for _, r, role in [(0, *x[:2]) for x in roles(result)]] == [
        (1, "proposer")
    ] * 3
    assert any("vote: 7 with 2 of 3" in n for n in result.trace.notes)
    assert [e.text for e in events if isinstance(e, Token)] == ["b says\nAnswer: 7"]


async def test_vote_tie_breaks_by_order_and_unreadable_answers_do_not_vote() -> None:
    fake = FakeBackend()
    script(fake, "no idea", "Answer: 3", "Answer: 4")
    result = await make(fake, {"final": "vote"}).arun("q")
    assert result.text == "Answer: 3"
    fake = FakeBackend()
    script(fake, "no idea", "none", "nope")
    result = await make(fake, {"final": "vote"}).arun("q")
    assert result.text == "no idea"
    assert "vote: no answer could be read" in result.trace.notes


async def test_a_vote_on_prose_can_fall_back_to_the_synthesis() -> None:
    fake = FakeBackend()
    script(fake, "a poem", "another poem", "Answer: 3")
    fake.enqueue("agg", "the synthesis")
    result = await make(fake, {"final": "vote", "unread": "synthesize"}).arun("q")
    assert result.text == "Answer: 3"  # one readable answer is a vote
    assert fake.requests("agg") == []
    script(fake, "a poem", "another poem", "a third")
    result = await make(fake, {"final": "vote", "unread": "synthesize"}).arun("q")
    assert result.text == "the synthesis"
    (call,) = fake.requests("agg")
    assert call.messages[0].content == numbered(
        AGGREGATE_PROMPT, ["a poem", "another poem", "a third"]
    )
    assert "vote: no answer could be read; synthesising" in result.trace.notes
    with pytest.raises(RecipeError, match="unread is not an option of final: synthesize"):
        load_recipe(
            {"layers": [["fake:a"]], "aggregator": "fake:b", "strategy": {"unread": "synthesize"}}
        )


async def test_ranker_picks_by_number() -> None:
    fake = FakeBackend()
    script(fake, "Answer: 1", "Answer: 2", "Answer: 3")
    fake.enqueue("agg", "The best is response 3.")
    result = await make(fake, {"final": "rank"}).arun("q")
    assert result.text == "Answer: 3"
    (req,) = fake.requests("agg")
    assert req.messages[0].content == RANK_PROMPT + "\n1. Answer: 1\n2. Answer: 2\n3. Answer: 3"
    assert req.settings.temperature == 0 and req.settings.max_tokens == 16
    judge = [c for c in result.trace.calls if c.role == "judge"]
    assert len(judge) == 1 and judge[0].layer == 2 and judge[0].text == "The best is response 3."


async def test_ranker_bad_output_falls_back_to_the_vote() -> None:
    fake = FakeBackend()
    script(fake, "Answer: 1", "Answer: 2", "Answer: 2")
    fake.enqueue("agg", "They are all lovely.")
    result = await make(fake, {"final": "rank"}).arun("q")
    assert result.text == "Answer: 2"
    assert any("could not be read" in n and "answer 2 by vote" in n for n in result.trace.notes)


async def test_ranker_with_its_own_judge() -> None:
    fake = FakeBackend()
    script(fake, "A", "B", "C")
    fake.enqueue("j", "1")
    result = await make(fake, {"final": "rank", "judge": "fake:j"}).arun("q")
    assert result.text == "A"
    (req,) = fake.requests("j")
    assert req.settings.temperature == 0 and req.settings.max_tokens == 16
    assert fake.requests("agg") == []


async def test_confidence_weights_can_outvote_a_plain_majority() -> None:
    fake = respond_in_order("Answer: 5", "Answer: 5", "Answer: 7")
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
    fake = respond_in_order(
        "Paris is the capital of France.",
        "The capital of France is Paris.",
        "Bananas are yellow.",
    )
    result = await run(fake, recipe(proposers(3), strategy={"final": "select"}))
    assert result.text in ("Paris is the capital of France.", "The capital of France is Paris.")
    assert not fake.requests("agg")
    assert any("agreement" in n for n in result.trace.notes)


async def test_usc_asks_a_selector_and_reads_its_choice() -> None:
    fake = respond_in_order("one", "two", "three")
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


async def test_auto_chooses_code_by_its_behaviour() -> None:
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    right = "```python\ndef add(a, b):\n    return a + b\n```"
    also_right = "```python\ndef add(a, b):\n    return b + a\n```"
    fake = respond_in_order(wrong, right, also_right)
    result = await run(fake, recipe(proposers(3), strategy={"final": "auto"}), PROMPT)
    assert result.text == right
    assert result.trace.notes[0] == "the answers read as code: behaviour"
    assert "behaviour: passed 1/1" in result.trace.notes[1]


async def test_auto_votes_on_numbers_and_selects_prose() -> None:
    numbers = await run(
        respond_in_order("Answer: 4", "Answer: 9", "Answer: 9"),
        recipe(proposers(3), strategy={"final": "auto"}),
    )
    assert numbers.text == "Answer: 9"
    assert numbers.trace.notes[0] == "the answers read as number: vote"
    prose = await run(
        respond_in_order("a cat sat", "a cat sat down", "dogs run"),
        recipe(proposers(3), strategy={"final": "auto"}),
    )
    assert prose.trace.notes[0] == "the answers read as prose: agreement"
    assert prose.text in ("a cat sat", "a cat sat down")


async def test_auto_can_synthesise_a_kind() -> None:
    fake = respond_in_order("a cat sat", "a dog ran", "a bird flew")
    fake.respond("agg", "all three animals")
    data = recipe(proposers(3), strategy={"final": "auto", "by_kind": {"prose": "synthesize"}})
    result = await run(fake, data)
    assert result.text == "all three animals" and fake.requests("agg")


async def test_single_model_baseline_and_default_strategy_untouched() -> None:
    fake = FakeBackend()
    fake.enqueue("agg", "alone")
    result = await MoA({"layers": [], "aggregator": "fake:agg"}, backends={"fake": fake}).arun("q")
    assert result.text == "alone" and [c.role for c in result.trace.calls] == ["aggregator"]
    vote = MoA(
        {"layers": [], "aggregator": "fake:agg", "strategy": {"final": "vote"}},
        backends={"fake": fake},
    )
    assert (await vote.arun("q")).text.startswith("[agg]")  # no proposals: the model answers
