"""Issue 8, checked: the layout (no import cycle), the plan, strategies without an engine, and
the bugs fixed on the way (judges checked at construction and replaced by --dry-run, judges
called like every other call)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moa import FakeBackend, MoA
from moa.agent import Agent
from moa.cli import app
from moa.errors import BackendTimeout, MissingKeyError
from moa.evals.runner import Harness
from moa.plan import compile_recipe
from moa.prompts import Brief
from moa.recipe import load_recipe
from moa.strategies import Answers, RecipeStrategy, Step, StepContext, Strategy, build
from moa.trace import AgentRole, Call
from moa.types import Message, Settings

SRC = Path(__file__).resolve().parents[1] / "src" / "moa"


# layout ----------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    """The moa modules a module imports, at the top or late (inside a function)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("moa"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("moa"))
    return found


def test_no_import_cycle_in_the_package() -> None:
    modules = {
        ".".join(("moa", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in SRC.rglob("*.py")
    }

    def loads(name: str, imported: str) -> set[str]:
        """What importing `imported` from `name` runs: it and its packages, except the
        packages that `name` sits in (already being imported)."""
        parts = imported.split(".")
        chain = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        return {m for m in chain if m in modules and not name.startswith(m + ".") and m != name}

    graph = {n: {m for i in _imports(p) for m in loads(n, i)} for n, p in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [])


def test_engine_holds_no_call_or_strategy_rules() -> None:
    text = (SRC / "engine.py").read_text()
    for word in ("backoff", "should_retry", "context_window", "tally", "parse_ranking", "gate"):
        assert word not in text, word


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


def test_the_default_strategy_is_the_identity() -> None:
    assert type(build(Strategy())) is Step
    assert type(compile_recipe({"layers": [], "aggregator": "fake:x"}).strategy) is Step


def test_request_settings_reach_the_aggregator_unless_the_recipe_pins_them() -> None:
    plan = compile_recipe({"layers": [], "aggregator": {"model": "fake:x", "temperature": 0}})
    agg = plan.aggregator_with(Settings(temperature=1.5, max_tokens=5, seed=3))
    assert (agg.temperature, agg.max_tokens, agg.seed) == (0, 5, 3)


def test_settings_merge_later_wins_and_validate_once() -> None:
    merged = Settings.merge(Settings(temperature=0.7, max_tokens=10), Settings(max_tokens=20))
    assert merged.to_dict() == {"temperature": 0.7, "max_tokens": 20}
    with pytest.raises(ValueError, match="temperature"):
        Settings(temperature=99)
    assert Settings(stop="END").stop == ("END",)


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


async def test_a_vote_decides_without_a_call() -> None:
    ctx, made = _context({})
    step = build(Strategy(final="vote"))
    assert await step.answer(ctx, _answers("Answer: 4", "Answer: 5", "Answer: 5")) == "Answer: 5"
    assert made == [] and ctx.notes == ["vote: 5 with 2 of 3"]


async def test_a_ranker_is_one_judge_call_at_temperature_zero() -> None:
    ctx, made = _context({"fake:judge": "2"})
    step = build(Strategy(final="rank", judge="fake:judge"))
    assert await step.answer(ctx, _answers("one", "two", "three")) == "two"
    assert made == [("fake:judge", "judge")]


async def test_selection_keeps_the_judges_top_k() -> None:
    ctx, _ = _context({"fake:agg": "3 > 1 > 2"})
    step = build(Strategy.model_validate({"select": {"top_k": 2}}))
    kept = await step.after_layer(ctx, 1, _answers("a", "b", "c"))
    assert kept.texts == ["c", "a"]


# bugs ----------------------------------------------------------------------------------------------
JUDGED: list[dict[str, Any]] = [
    {"final": "rank", "judge": "openai:gpt-4o"},
    {"select": {"top_k": 1, "judge": "openai:gpt-4o"}},
]


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


async def test_a_judge_is_retried_like_any_call(tmp_path: Path) -> None:
    fake = FakeBackend().enqueue("judge", BackendTimeout("slow"), "[[A]]")
    h = Harness(out_dir=tmp_path, cache=False, backends={"fake": fake}, progress=False)
    h.judge_retry = h.judge_retry.model_copy(update={"backoff": 0})
    call, _ = await h.judge("fake:judge", "which is better?", max_tokens=8)
    assert call.text == "[[A]]" and [a.error_type for a in call.attempts] == [
        "BackendTimeout",
        None,
    ]
    await h.aclose()


async def test_traces_show_base_urls_without_credentials() -> None:
    fake = FakeBackend()
    url = "http://user:secret@127.0.0.1:9/v1?token=abc"
    data = {
        "layers": [[{"model": f"vllm:m@{url}", "fallbacks": ["fake:b"]}]],
        "aggregator": "fake:agg",
        "retry": {"attempts": 1},
        "timeout": 2,
    }
    async with MoA(data, backends={"fake": fake}, env={}) as moa:
        result = await moa.arun("hi")
    text = result.trace.to_json()
    assert "secret" not in text and "token=abc" not in text
    assert "vllm:m@http://***@127.0.0.1:9/v1?***" in text  # the failed first try, redacted


def test_the_final_rule_shapes_the_last_layer_and_keeps_the_rest_of_it() -> None:
    layer = {"agents": ["fake:a", "fake:b", "fake:c", "fake:d"], "quorum": 2, "grace": 1.5}
    strategy = {"final": {"rule": "vote", "weights": "confidence", "decide_early": {"start": 2}}}
    (last,) = compile_recipe(
        {"layers": [layer], "aggregator": "fake:x", "strategy": strategy}
    ).layers
    assert (last.quorum, last.grace, last.start) == (2, 1.5, 2)
    assert all(a.logprobs for a in last.agents)
