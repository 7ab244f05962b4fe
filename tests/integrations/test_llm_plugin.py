"""Recipes as models of simonw/llm, through the real `llm` command and its Python API, and
llm's own models as agents (`llm:MODEL`) with the key stored by `llm keys set`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from faultserver import FaultServer, ok

from integrations.hosts import tool

llm = pytest.importorskip("llm")

from moa import MoA  # noqa: E402
from moa.errors import QuorumError  # noqa: E402


def run_llm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("llm"), *args], capture_output=True, text=True, timeout=120, env=env
    )


def logged(env: dict[str, str]) -> list[dict[str, Any]]:
    """The turns llm logged in its logs.db (llm 0.36's schema), oldest first."""
    db = sqlite3.connect(Path(env["LLM_USER_PATH"]) / "logs.db")
    try:
        rows = db.execute(
            "select model, input_tokens, output_tokens, response_json, thread_id from turns "
            "order by id"
        ).fetchall()
    finally:
        db.close()
    keys = ("model", "input_tokens", "output_tokens", "response_json", "conversation_id")
    return [
        {**dict(zip(keys, row, strict=True)), "response_json": json.loads(row[3])} for row in rows
    ]


def test_llm_models_lists_every_recipe_and_installs_nothing(host_env: dict[str, str]) -> None:
    done = run_llm(host_env, "models")
    assert done.returncode == 0, done.stderr
    for model in ("moa-local", "moa-fake", "moa-moa-lite", "moa-duo", "moa-tiny"):
        assert f": {model}\n" in done.stdout
    assert not Path(host_env["MOA_CACHE_DIR"]).exists()  # listing pulled no model


def test_prompt_answers_and_logs_the_tokens_and_layers(host_env: dict[str, str]) -> None:
    done = run_llm(host_env, "-m", "moa-duo", "What is 2 + 2?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[agg] synthesis of 2 responses to: What is 2 + 2?"
    [row] = logged(host_env)
    assert row["model"] == "moa-duo"
    layers = row["response_json"]
    answers = layers["layers"][0]["answers"]
    assert [a["text"] for a in answers] == [
        "[a] answer to: What is 2 + 2?",
        "[b] answer to: What is 2 + 2?",
    ]
    calls = [*answers, layers["aggregator"]]
    assert row["input_tokens"] == sum(c["input_tokens"] for c in calls) > 0
    assert row["output_tokens"] == sum(c["output_tokens"] for c in calls) > 0


def test_continue_sends_the_conversation_so_far(host_env: dict[str, str]) -> None:
    first = run_llm(host_env, "-m", "moa-duo", "Name a colour.")
    second = run_llm(host_env, "-c", "And another one?")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert second.stdout.strip() == "[agg] synthesis of 2 responses to: And another one?"
    one, two = logged(host_env)
    assert one["conversation_id"] == two["conversation_id"]
    assert two["model"] == "moa-duo"
    # the proposers of turn 2 read turn 1's question and answer too
    asked = [a["input_tokens"] for a in two["response_json"]["layers"][0]["answers"]]
    history = ["Name a colour.", first.stdout, "And another one?"]
    words = sum(len(text.split()) for text in history)  # the fake counts words as tokens
    assert asked == [words, words]


def test_show_layers_prints_every_agent_to_stderr(host_env: dict[str, str]) -> None:
    done = run_llm(host_env, "-m", "moa-duo", "-o", "show_layers", "1", "Hi")
    assert done.returncode == 0, done.stderr
    assert "layer 1 · fake:a" in done.stderr and "[b] answer to: Hi" in done.stderr
    assert "layer 1" not in done.stdout


def test_the_recipe_option_runs_another_recipe_file(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "solo.yaml"
    other.write_text("layers: [[fake:x]]\naggregator: fake:y\n")
    done = run_llm(host_env, "-m", "moa-duo", "-o", "recipe", str(other), "Hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[y] synthesis of 1 responses to: Hi"
    assert logged(host_env)[0]["response_json"]["recipe"] == "solo"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["-o", "recipe", "missing.yaml"], "missing.yaml: no built-in recipe and no file"),
        (["-o", "temperature", "5"], "temperature: Input should be less than or equal to 2"),
    ],
)
def test_bad_input_is_one_line(host_env: dict[str, str], options: list[str], problem: str) -> None:
    done = run_llm(host_env, "-m", "moa-duo", *options, "Hi")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and problem in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


async def test_the_async_model_streams_and_sets_usage(host_env: dict[str, str]) -> None:
    model = llm.get_async_model("moa-duo")
    response = model.prompt("Hi")
    pieces = [piece async for piece in response]
    assert "".join(pieces) == "[agg] synthesis of 2 responses to: Hi" and len(pieces) > 1
    usage = await response.usage()
    assert usage.input > 0 and usage.output > 0
    assert response.response_json is not None and response.response_json["recipe"] == "duo"


def test_a_recipe_that_calls_moa_through_llm_is_refused(
    host_env: dict[str, str], recipes: Path
) -> None:
    (recipes / "loop.yaml").write_text(
        "layers: [[llm:moa-duo]]\naggregator: fake:agg\nretry: {attempts: 1}\n"
    )
    with pytest.raises(llm.ModelError, match="moa was called from inside a MoA run"):
        llm.get_model("moa-loop").prompt("Hi").text()


def test_llm_models_are_agents_with_the_key_llm_stored(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    # in a process of its own, as a user runs it (llm leaves its HTTP clients open)
    with FaultServer(api_key="sk-stored-by-llm") as server:
        server.respond("small", ok("from llm"))
        Path(host_env["LLM_USER_PATH"], "extra-openai-models.yaml").write_text(
            f"- model_id: mine\n  model_name: small\n  api_base: {server.base_url}\n"
            "  api_key_name: mine\n"
        )
        stored = run_llm(host_env, "keys", "set", "mine", "--value", "sk-stored-by-llm")
        assert stored.returncode == 0, stored.stderr
        recipe = tmp_path / "mix.yaml"
        recipe.write_text("layers: [[llm:mine, fake:b]]\naggregator: llm:mine\n")
        done = subprocess.run(
            [tool("moa"), "ask", "--json", "--temperature", "0.1", "-r", str(recipe), "Hi"],
            capture_output=True,
            text=True,
            timeout=60,
            env=host_env,
        )
        assert done.returncode == 0, done.stderr
        assert "sk-stored-by-llm" not in done.stdout + done.stderr
        result = json.loads(done.stdout)
        assert result["text"] == "from llm"
        proposer, aggregator = server.requests("small")
        assert (proposer.body["temperature"], aggregator.body["temperature"]) == (0.7, 0.1)
        assert "from llm" in json.dumps(aggregator.messages)  # the proposer's answer, shown
        calls = {c["agent"]: c for c in result["trace"]["calls"]}
        assert calls["llm:mine"]["input_tokens"] > 0 and calls["llm:mine"]["output_tokens"] > 0


def test_an_unknown_llm_model_fails_the_agent_with_its_name(host_env: dict[str, str]) -> None:
    recipe = {"layers": [["llm:no-such-model"]], "aggregator": "fake:agg"}
    with MoA(recipe) as moa, pytest.raises(Exception, match="llm has no such model") as caught:
        moa.prepare()
    assert not isinstance(caught.value, QuorumError)


@pytest.mark.slow
def test_the_local_model_answers_through_llm(
    host_env: dict[str, str], smollm2_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in host_env.items() if k != "MOA_CACHE_DIR"}  # the pulled SmolLM2
    env["MOA_THREADS"] = "1"
    done = run_llm(env, "-m", "moa-tiny", "Name a colour.")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    [row] = logged(env)
    assert row["model"] == "moa-tiny"
    assert row["response_json"]["aggregator"]["text"].strip() == done.stdout.strip()
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert len(row["response_json"]["layers"][0]["answers"]) == 2
