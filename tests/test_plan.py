"""A recipe compiled into a plan: samples, defaults, every model a run may call, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moa import FakeBackend, MoA
from moa.cli import app
from moa.errors import MissingKeyError
from moa.plan import compile_recipe
from moa.recipe import load_recipe
from moa.strategies import RecipeStrategy
from moa.types import Settings

# bugs ----------------------------------------------------------------------------------------------
JUDGED: list[dict[str, Any]] = [
    {"final": "rank", "judge": "openai:gpt-4o"},
    {"select": {"top_k": 1, "judge": "openai:gpt-4o"}},
]


# the plan ----------------------------------------------------------------------------------------
def test_plan_expands_samples_fills_defaults_and_lists_every_model() -> None:
    plan = compile_recipe(
        {
            "layers": [
                {
                    "agents": [
                        {"model": "fake:a", "n": 3, "seed": 5},
                        {"model": "fake:b", "fallbacks": ["fake:b2"], "temperature": 0},
                    ],
                    "quorum": 2,
                    "grace": 1.5,
                }
            ],
            "aggregator": "fake:agg",
            "proposer_defaults": {"temperature": 0.7, "max_tokens": 99},
            "aggregator_defaults": {"max_tokens": 7},
            "strategy": {"final": "rank", "judge": "fake:ranker", "select": {"judge": "fake:sel"}},
        }
    )
    (layer,) = plan.layers
    assert [a.label for a in layer.agents] == ["fake:a#1", "fake:a#2", "fake:a#3", "fake:b"]
    assert [a.seed for a in layer.agents] == [5, 6, 7, None]
    assert [a.temperature for a in layer.agents] == [0.7, 0.7, 0.7, 0]
    assert all(a.max_tokens == 99 for a in layer.agents)
    assert (layer.quorum, layer.grace) == (2, 1.5)
    assert plan.aggregator.max_tokens == 7
    assert plan.models == ("fake:a", "fake:b", "fake:b2", "fake:agg", "fake:ranker", "fake:sel")
    assert isinstance(plan.strategy, RecipeStrategy)


def test_request_settings_reach_the_aggregator_unless_the_recipe_pins_them() -> None:
    plan = compile_recipe({"layers": [], "aggregator": {"model": "fake:x", "temperature": 0}})
    agg = plan.aggregator_with(Settings(temperature=1.5, max_tokens=5, seed=3))
    assert (agg.temperature, agg.max_tokens, agg.seed) == (0, 5, 3)


def test_settings_merge_later_wins_and_validate_once() -> None:
    merged = Settings.merge(Settings(temperature=0.7, max_tokens=10), Settings(max_tokens=20))
    assert merged.to_dict() == {"temperature": 0.7, "max_tokens": 20}
    with pytest.raises(ValueError, match="temperature"):
        Settings(temperature=99)
    assert Settings.model_validate({"stop": "END"}).stop == ("END",)


@pytest.mark.parametrize("strategy", JUDGED)
def test_construction_checks_the_judges_keys(strategy: dict[str, Any]) -> None:
    fake = FakeBackend()
    data = {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg", "strategy": strategy}
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        MoA(data, backends={"fake": fake}, env={})
    assert fake.calls == []  # no proposer ran first


@pytest.mark.parametrize("strategy", JUDGED)
def test_dry_run_replaces_the_judges(strategy: dict[str, Any], tmp_path: Path) -> None:
    data = {"layers": [["openai:a", "openai:b"]], "aggregator": "openai:agg", "strategy": strategy}
    dry = load_recipe(data).dry_run()
    assert all(ref.startswith("fake:") for ref in compile_recipe(dry).models)
    path = tmp_path / "judged.yaml"
    path.write_text(__import__("json").dumps(data))
    result = CliRunner().invoke(app, ["ask", "-r", str(path), "--dry-run", "hi"], env={})
    assert result.exit_code == 0, result.output


def test_the_final_rule_shapes_the_last_layer_and_keeps_the_rest_of_it() -> None:
    layer = {"agents": ["fake:a", "fake:b", "fake:c", "fake:d"], "quorum": 2, "grace": 1.5}
    strategy = {"final": {"rule": "vote", "weights": "confidence", "decide_early": {"start": 2}}}
    (last,) = compile_recipe(
        {"layers": [layer], "aggregator": "fake:x", "strategy": strategy}
    ).layers
    assert (last.quorum, last.grace, last.start) == (2, 1.5, 2)
    assert all(a.logprobs for a in last.agents)
