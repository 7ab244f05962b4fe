"""What evaluators read: MT-Bench questions in, AlpacaEval and FastChat MT-Bench files out,
checked field by field against the real files; and the cost of every call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moa import FakeBackend, MoA
from moa.batch import export, iter_results, load_items, run_recipe
from moa.cli import app
from moa.cost import Price, load_prices, price_trace
from moa.errors import ConfigError
from moa.evals.data import packaged
from moa.recipe import load_recipe

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
runner = CliRunner()


def engine(**extra: Any) -> tuple[MoA, FakeBackend]:
    fake = FakeBackend()
    recipe = {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg", **extra}
    return MoA(recipe, backends={"fake": fake}), fake


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what a reader relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def test_mt_bench_questions_are_answered_turn_by_turn(tmp_path: Path) -> None:
    moa, fake = engine()
    questions = load_items(packaged("mt_bench_questions.jsonl"), id_key="question_id")[:3]
    out = tmp_path / "a.jsonl"
    summary = await run_recipe(
        None, questions, out=out, moa=moa, id_key="question_id", progress=False
    )
    assert summary.ran == 3 and not summary.failed
    first = next(r for r in iter_results(out) if r["id"] == questions[0]["question_id"])
    assert len(first["answers"]) == 2 == len(first["traces"])
    assert first["answers"][1].endswith(" ".join(questions[0]["turns"][1].split())[:120])
    # the second turn was asked with the first, and the recipe's own answer to it
    histories = [
        [(m.role, m.content) for m in r.messages if m.role != "system"]
        for model, r in fake.calls
        if model == "agg"
    ]
    assert [
        ("user", questions[0]["turns"][0]),
        ("assistant", first["answers"][0]),
        ("user", questions[0]["turns"][1]),
    ] in histories
    assert sum(len(h) == 3 for h in histories) == 3  # each question's second turn
    answers = tmp_path / "answers.jsonl"
    assert export(out, "mt_bench", answers, model_id="moa-fake") == 3
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    reference = json.loads(packaged("mt_bench_reference_gpt4.jsonl").read_text().splitlines()[0])
    assert [shape(r) for r in rows] == [shape(reference)] * 3  # FastChat's fields and types
    mine = next(r for r in rows if r["question_id"] == int(questions[0]["question_id"]))
    assert mine["model_id"] == "moa-fake" and mine["choices"][0]["turns"] == first["answers"]
    assert len({r["answer_id"] for r in rows}) == 3


async def test_alpaca_eval_outputs_have_the_reference_fields(tmp_path: Path) -> None:
    moa, _ = engine()
    source = SHARED / "alpaca_eval_instructions.json"
    if source.exists():
        items = load_items(source)[:4]
    else:  # CI has no shared data: the same shape, our own texts
        items = load_items(
            [{"instruction": f"Say {i}", "dataset": "helpful_base"} for i in range(4)]
        )
    out = tmp_path / "a.jsonl"
    await run_recipe(None, items, out=out, moa=moa, prompt_key="instruction", progress=False)
    dest = tmp_path / "outputs.json"
    assert export(out, "alpaca_eval", dest, model_id="moa-fake") == 4
    rows = json.loads(dest.read_text())
    reference_file = SHARED / "alpaca_eval_moa_lite_qwen72b_outputs.json"
    reference = (
        json.loads(reference_file.read_text())[0]
        if reference_file.exists()
        else {"instruction": "", "output": "", "generator": "", "dataset": ""}
    )
    assert [shape(r) for r in rows] == [shape(reference)] * 4
    by_instruction = {i["instruction"]: i for i in items}  # AlpacaEval merges on instruction
    for row in rows:
        assert row["dataset"] == by_instruction[row["instruction"]]["dataset"]
        assert row["generator"] == "moa-fake" and row["output"].startswith("[agg]")


def test_cli_formats_and_cost(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "instruction": "first"}\n{"id": "b", "instruction": "second"}\n')
    prices = tmp_path / "prices.yaml"
    cheap = "{input: 0.5, output: 0.5}"
    prices.write_text(
        f"fake:alpha: {{input: 1.0, output: 2.0}}\nbeta: {cheap}\ngamma: {cheap}\n"
        f"fake:aggregator: {cheap}\n"
    )
    out = tmp_path / "out.jsonl"
    args = ["batch", str(source), "-o", str(out), "-r", "fake", "--prompt-key", "instruction"]
    result = runner.invoke(app, [*args, "--format", "alpaca_eval", "--prices", str(prices)])
    assert result.exit_code == 0, result.output
    rows = list(iter_results(out))
    for row in rows:
        calls = row["trace"]["calls"]
        expected = sum(
            (
                c["input_tokens"] * (1.0 if c["model"] == "fake:alpha" else 0.5)
                + c["output_tokens"] * (2.0 if c["model"] == "fake:alpha" else 0.5)
            )
            / 1e6
            for c in calls
        )
        assert row["cost"] == pytest.approx(expected) and row["cost"] > 0
        assert row["trace"]["totals"]["cost"] == pytest.approx(expected)
    assert f"cost {sum(r['cost'] for r in rows):.4f}" in result.stderr
    exported = json.loads((tmp_path / "out.alpaca_eval.json").read_text())
    assert sorted(r["instruction"] for r in exported) == ["first", "second"]
    bad = runner.invoke(app, [*args, "--format", "csv"])
    assert bad.exit_code == 2 and "--format: 'csv'" in bad.stderr
    prices.write_text("fake:alpha: {input: -1, output: 2}\n")
    bad = runner.invoke(app, [*args, "--prices", str(prices)])
    assert bad.exit_code == 2 and "fake:alpha.input" in bad.stderr and "Traceback" not in bad.output


def test_prices_in_a_recipe_and_an_unpriced_call() -> None:
    recipe = load_recipe(
        {
            "layers": [["fake:a"]],
            "aggregator": "openai:agg",
            "providers": {"fake": {"prices": {"a": {"input": 3, "output": 15}}}},
        }
    )
    assert recipe.providers["fake"].prices["a"] == Price(input=3, output=15)
    from moa.cost import merge_prices
    from moa.trace import Call, Trace

    trace = Trace(recipe="r", started_at=0.0)
    trace.calls = [
        Call(
            layer=0,
            index=0,
            agent="a",
            role="proposer",
            model="fake:a",
            input_tokens=1000,
            output_tokens=100,
        ),
        Call(layer=1, index=0, agent="g", role="aggregator", model="openai:agg", input_tokens=10),
    ]
    prices = merge_prices(recipe.providers)
    assert price_trace(trace, prices) is None  # the aggregator has no price: no total claimed
    assert trace.calls[0].cost == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    assert price_trace(trace, {**prices, "agg": Price(input=1, output=1)}) == pytest.approx(
        0.0045 + 10 / 1e6
    )
    with pytest.raises(ConfigError, match="cannot read prices"):
        load_prices("/nonexistent/prices.yaml")


async def test_evaluation_reports_carry_the_cost_per_question(tmp_path: Path) -> None:
    from moa.evals import gsm8k
    from moa.evals.report import markdown
    from moa.evals.runner import Harness

    data = tmp_path / "gsm8k.jsonl"
    data.write_text(
        "".join(
            json.dumps({"question": f"What is {i} + 1?", "answer": f"so #### {i + 1}"}) + "\n"
            for i in range(3)
        )
    )
    fake = FakeBackend()
    fake.respond("agg", lambda r: "The answer is 2.")
    recipe = {"name": "r", "layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg"}
    prices = {
        "fake:a": Price(input=1, output=1),
        "b": Price(input=2, output=2),
        "agg": Price(input=4, output=4),
    }
    h = Harness(
        out_dir=tmp_path / "ev", cache=False, backends={"fake": fake}, progress=False, prices=prices
    )
    report = await gsm8k.evaluate([recipe], h, data=data, limit=3, kinds=["recipe"])
    await h.aclose()
    rows = [
        json.loads(line)
        for line in (tmp_path / "ev" / report.rows[0]["file"]).read_text().splitlines()
    ]
    for r in rows:
        assert r["cost"] > 0
        assert r["cost"] == pytest.approx(sum(c["cost"] for c in r["trace"]["calls"]))
    assert report.rows[0]["cost"] == pytest.approx(sum(r["cost"] for r in rows) / 3)
    assert f"{report.rows[0]['cost']:.5f}" in markdown(report)
    unpriced = Harness(
        out_dir=tmp_path / "ev2", cache=False, backends={"fake": fake}, progress=False
    )
    report = await gsm8k.evaluate([recipe], unpriced, data=data, limit=3, kinds=["recipe"])
    await unpriced.aclose()
    assert report.rows[0]["cost"] is None and "| - |" in markdown(report)
