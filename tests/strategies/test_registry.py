"""The registry of final rules: the built-in ones by name, and a rule of one's own added from
outside the package (the example of docs/strategies.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from recipes import recipe, run

from moa import FakeBackend
from moa.errors import RecipeError
from moa.recipe import load_recipe
from moa.strategies import RULES, FinalRule, register
from moa.strategies.base import Answers, StepContext
from moa.strategies.read import Reader


class Longest(FinalRule):
    """The answer with the most words (ties to the first)."""

    name = "longest"

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        texts = answers.texts
        best = max(range(len(texts)), key=lambda i: (len(texts[i].split()), -i))
        ctx.note(f"the longest answer: {best + 1}")
        return texts[best]


@pytest.fixture
def longest() -> Iterator[type[FinalRule]]:
    register(Longest)
    yield Longest
    del RULES["longest"]


def test_the_built_in_rules() -> None:
    assert sorted(RULES) == [
        "agreement", "auto", "behaviour", "checks", "first", "rank", "synthesize", "tool_vote",
        "usc", "vote",
    ]  # fmt: skip


async def test_a_rule_of_ones_own_is_one_class_and_one_registration(
    longest: type[FinalRule],
) -> None:
    fake = FakeBackend().respond("a", "short").respond("b", "a much longer answer")
    fake.respond("c", "medium one")
    result = await run(fake, recipe(strategy={"final": "longest"}))
    assert result.text == "a much longer answer" and not fake.requests("agg")
    assert "the longest answer: 2" in result.trace.notes
    # and inside auto, for one kind of answer
    auto = {"final": {"rule": "auto", "prose": "longest"}}
    assert (await run(fake, recipe(strategy=auto))).text == "a much longer answer"


def test_a_name_is_registered_once_and_unknown_names_are_errors(
    longest: type[FinalRule],
) -> None:
    with pytest.raises(ValueError, match="a new name"):
        register(Longest)
    del RULES["longest"]
    with pytest.raises(RecipeError, match="unknown final rule 'longest'"):
        load_recipe(recipe(strategy={"final": "longest"}))
    register(Longest)
