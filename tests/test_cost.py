"""Token prices from a recipe: every call's cost in the trace, the total in `moa ask
--show-layers`, and in the server's usage (streamed and not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from typer.testing import CliRunner

from moa import FakeBackend, MoA
from moa.cli import app

PRICED: dict[str, Any] = {
    "name": "priced",
    "layers": [["fake:a", "fake:b"]],
    "aggregator": "fake:agg",
    "providers": {
        "fake": {
            "prices": {
                "a": {"input": 1.0, "output": 2.0},
                "b": {"input": 1.0, "output": 2.0},
                "agg": {"input": 10.0, "output": 20.0},
            }
        }
    },
}


def expected(trace: Any) -> float:
    cost = 0.0
    for c in trace.calls:
        rate_in, rate_out = (10.0, 20.0) if c.model == "fake:agg" else (1.0, 2.0)
        cost += (c.input_tokens * rate_in + c.output_tokens * rate_out) / 1e6
    return cost


async def test_every_call_of_a_run_has_its_cost() -> None:
    fake = (
        FakeBackend().respond("a", "one two").respond("b", "three").respond("agg", "four five six")
    )
    async with MoA(PRICED, backends={"fake": fake}) as moa:
        result = await moa.arun("a question of five words")
    calls = result.trace.calls
    assert all(c.cost is not None and c.cost > 0 for c in calls)
    assert result.trace.totals().cost == pytest.approx(expected(result.trace))


async def test_an_unpriced_model_leaves_the_total_unknown() -> None:
    data = {**PRICED, "aggregator": "fake:free"}
    async with MoA(data, backends={"fake": FakeBackend()}) as moa:
        result = await moa.arun("q")
    assert result.trace.totals().cost is None
    assert [c.cost is None for c in result.trace.calls] == [False, False, True]


def test_show_layers_prints_the_cost(tmp_path: Path) -> None:
    path = tmp_path / "priced.json"
    path.write_text(__import__("json").dumps(PRICED))
    result = CliRunner().invoke(app, ["ask", "-r", str(path), "--show-layers", "hi"])
    assert result.exit_code == 0, result.output
    assert "$0.0" in result.stderr


def test_the_server_reports_the_cost_in_usage() -> None:
    pytest.importorskip("fastapi")
    from moa.server import create_app
    from moa.server.testing import ServerThread

    server = create_app(api_key="", recipes={"priced": PRICED}, backends={"fake": FakeBackend()})
    with ServerThread(server) as running:
        client = openai.OpenAI(base_url=running.url + "/v1", api_key="none", max_retries=0)
        plain = client.chat.completions.create(
            model="priced", messages=[{"role": "user", "content": "hi"}]
        )
        assert plain.usage is not None
        cost = (plain.usage.model_extra or {}).get("cost")
        assert cost is not None and cost > 0
        stream = client.chat.completions.create(
            model="priced",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usages = [chunk.usage for chunk in stream if chunk.usage is not None]
        assert (usages[-1].model_extra or {}).get("cost") == pytest.approx(cost)
