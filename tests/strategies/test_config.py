"""The strategy section of a recipe: errors that name the field and the rule, and the old spellings."""

from __future__ import annotations

import pytest
from recipes import proposers, recipe

from moa.errors import RecipeError
from moa.recipe import load_recipe
from moa.strategies import Strategy


# the recipe field ----------------------------------------------------------------------------
def test_strategy_errors_name_the_field() -> None:
    base = {"layers": [["fake:a"]], "aggregator": "fake:b"}
    with pytest.raises(RecipeError, match=r"strategy\.prune\.top_k"):
        load_recipe({**base, "strategy": {"prune": {"top_k": 0}}})
    with pytest.raises(RecipeError, match=r"strategy\.prune\.top_k"):  # its old name
        load_recipe({**base, "strategy": {"select": {"top_k": 0}}})
    with pytest.raises(RecipeError, match=r"strategy\.final: unknown final rule 'best'"):
        load_recipe({**base, "strategy": {"final": "best"}})
    with pytest.raises(RecipeError, match=r"strategy\.final: rank: judge: .*unknown provider"):
        load_recipe({**base, "strategy": {"final": {"rule": "rank", "judge": "nowhere:x"}}})
    with pytest.raises(RecipeError, match=r"strategy\.final: rank: judge: .*unknown provider"):
        load_recipe({**base, "strategy": {"final": "rank", "judge": "nowhere:x"}})  # old form
    with pytest.raises(RecipeError, match=r"judge is not an option of final: synthesize"):
        load_recipe({**base, "strategy": {"judge": "fake:j"}})
    with pytest.raises(RecipeError, match=r"strategy\.answer_pattern"):
        load_recipe({**base, "strategy": {"answer_pattern": "("}})
    with pytest.raises(RecipeError, match=r"strategy: seq aggregates in rounds"):
        load_recipe({**base, "strategy": {"final": "vote", "seq": {}}})
    assert load_recipe({**base, "strategy": None}).strategy == Strategy()


def test_an_unknown_rule_names_the_field() -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe(proposers(3), strategy={"final": "auto", "by_kind": {"code": "magic"}}))
    assert info.value.field == "strategy.final"
    assert "auto: code: unknown final rule 'magic'" in str(info.value)
    new_form = {"final": {"rule": "auto", "code": {"rule": "magic"}}}
    with pytest.raises(RecipeError, match="auto: code: unknown final rule 'magic'"):
        load_recipe(recipe(proposers(3), strategy=new_form))


def test_an_option_on_the_wrong_rule_names_the_rule() -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe(proposers(3), strategy={"final": {"rule": "vote", "judge": "fake:j"}}))
    assert info.value.field == "strategy.final"
    assert "'judge' is not an option of the vote rule" in str(info.value)
    assert "weights" in str(info.value)  # the options it does take


def test_decide_early_is_for_votes_and_the_first_answer() -> None:
    with pytest.raises(RecipeError, match="decide_early is not an option of final: synthesize"):
        load_recipe(recipe(proposers(4), strategy={"decide_early": {}}))
    ranked = {"final": {"rule": "rank", "decide_early": {}}}
    with pytest.raises(RecipeError, match="'decide_early' is not an option of the rank rule"):
        load_recipe(recipe(proposers(4), strategy=ranked))
    auto = {"final": "auto", "decide_early": {}, "by_kind": {"number": "rank"}}
    with pytest.raises(RecipeError, match="decide_early is not an option of final: auto"):
        load_recipe(recipe(proposers(4), strategy=auto))
