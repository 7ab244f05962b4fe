"""The `moa` command through typer's runner: answers, JSON traces, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moa.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TOGETHER_API_KEY", "OPENAI_API_KEY", "GROQ_API_KEY", "MOA_DEBUG"):
        monkeypatch.delenv(var, raising=False)


def test_ask_dry_run_streams_the_answer() -> None:
    result = runner.invoke(app, ["ask", "-r", "moa-lite", "--dry-run", "What is 2+2?"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "[together:Qwen/Qwen2.5-72B-Instruct-Turbo] synthesis of 3 responses to: What is 2+2?"
    )


def test_ask_json_prints_answer_and_trace() -> None:
    result = runner.invoke(app, ["ask", "-r", "fake", "--json", "--system", "Be brief.", "hi"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["text"].startswith("[aggregator] synthesis of 3 responses")
    calls = data["trace"]["calls"]
    assert [c["agent"] for c in calls] == [
        "fake:alpha",
        "fake:beta",
        "fake:gamma",
        "fake:aggregator",
    ]
    assert data["trace"]["totals"]["calls"] == 4


def test_show_layers_prints_every_agent() -> None:
    result = runner.invoke(app, ["ask", "-r", "fake", "--show-layers", "hello"])
    assert result.exit_code == 0, result.output
    for name in ("fake:alpha", "fake:beta", "fake:gamma", "aggregator"):
        assert name in result.stderr
    assert "layer 1: 3 answered, 0 failed" in result.stderr
    assert "[alpha] answer to: hello" in result.stderr


def test_show_layers_says_how_the_answer_was_decided(tmp_path: Path) -> None:
    recipe = tmp_path / "vote.yaml"
    recipe.write_text(
        "layers: [[fake:a, fake:b, fake:c]]\naggregator: fake:agg\nstrategy: {final: vote}\n"
    )
    result = runner.invoke(app, ["ask", "-r", str(recipe), "--show-layers", "2 + 2?"])
    assert result.exit_code == 0, result.output
    # the fake answers repeat the prompt: the last number of each is 2
    assert result.stderr.rstrip().endswith("vote: 2 with 3 of 3")


def test_show_layers_says_which_kind_of_answer_took_which_rule(tmp_path: Path) -> None:
    recipe = tmp_path / "auto.yaml"
    recipe.write_text(
        "layers: [[fake:a, fake:b, fake:c]]\naggregator: fake:agg\nstrategy: {final: auto}\n"
    )
    result = runner.invoke(app, ["ask", "-r", str(recipe), "--show-layers", "Write a haiku."])
    assert result.exit_code == 0, result.output
    assert "the answers read as prose: agreement" in result.stderr
    assert "select: answer 1 by most word 2-gram agreement" in result.stderr


def test_stdin_prompt() -> None:
    result = runner.invoke(app, ["ask", "-r", "fake", "-"], input="from stdin\n")
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("from stdin")


def test_missing_key_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["ask", "-r", "moa-lite", "hi"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "TOGETHER_API_KEY" in result.stderr and "Traceback" not in result.output


def test_bad_recipe_file_names_file_field_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("layers:\n  - [fake:a, {model: fake:b, max_tokens: -3}]\naggregator: fake:c\n")
    result = runner.invoke(app, ["ask", "-r", str(path), "hi"])
    assert result.exit_code == 2
    line = " ".join(result.stderr.split())
    assert str(path) in line and "layers.0.agents.1.max_tokens" in line
    assert "greater than 0" in line and "[line 2]" in line


def test_unknown_recipe_lists_builtins() -> None:
    result = runner.invoke(app, ["ask", "-r", "nope", "hi"])
    assert result.exit_code == 2
    assert "built-in: " in result.stderr and "local" in result.stderr


def test_failed_run_exits_1_naming_the_agent(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "layers: [[fake:a]]\naggregator: {model: 'vllm:m@http://127.0.0.1:9/v1'}\n"
        "retry: {attempts: 1}\ntimeout: 2\n"
    )
    result = runner.invoke(app, ["ask", "-r", str(path), "hi"])
    assert result.exit_code == 1, result.output
    assert "vllm:m@http://127.0.0.1:9/v1" in result.stderr
    assert "BackendConnectionError" in result.stderr


def test_recipes_list_and_show() -> None:
    listed = runner.invoke(app, ["recipes", "list"])
    assert listed.exit_code == 0
    for name in ("local", "moa-lite", "moa", "self-moa", "self-moa-local"):
        assert name in listed.stdout
    shown = runner.invoke(app, ["recipes", "show", "moa-lite"])
    assert shown.exit_code == 0
    assert "aggregator:" in shown.stdout and "Qwen2.5-72B-Instruct-Turbo" in shown.stdout
    assert "Responses from models:" in shown.stdout  # the default prompt is shown


def test_eval_is_mounted_with_the_help_of_its_four_evaluations() -> None:
    listed = runner.invoke(app, ["--help"])
    assert listed.exit_code == 0
    words = " ".join(w for w in listed.stdout.split() if w != "│")
    line = words.split(" eval ", 1)[1].split(".", 1)[0]  # its help, wrapped over lines
    for name in ("GSM8K", "pairwise", "MT-Bench", "collaborativeness"):
        assert name in line
    sub = runner.invoke(app, ["eval", "--help"])
    for command in ("gsm8k", "pairwise", "mt-bench", "collaborativeness"):
        assert command in sub.stdout


def test_chat_keeps_the_conversation() -> None:
    result = runner.invoke(app, ["chat", "-r", "fake"], input="first\nsecond\n/reset\nthird\n")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "aggregator" in line]
    assert len(lines) == 3
    assert lines[1].endswith("second")


def test_models_list_and_path_of_unknown() -> None:
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0
    assert "qwen2.5-coder-1.5b-instruct" in listed.stdout
    unknown = runner.invoke(app, ["models", "path", "qwen-1.5"])
    assert unknown.exit_code == 2
    assert "unknown local model" in unknown.stderr


def test_batch_answers_every_item_and_resumes(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "prompt": "first"}\n{"id": "b", "prompt": "second"}\n')
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "-r", "fake"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = {"a": "first", "b": "second"}
    assert sorted(r["id"] for r in rows) == ["a", "b"]
    assert all(r["text"].endswith(expected[r["id"]]) for r in rows)
    assert all(r["ok"] and r["trace"]["totals"]["calls"] == 4 for r in rows)
    again = runner.invoke(app, ["batch", str(source), "-o", str(out), "-r", "fake"])
    assert again.exit_code == 0 and "2 already done" in again.stderr
    assert len(out.read_text().splitlines()) == 2


def test_batch_bad_input_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": \n')
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "o.jsonl"), "-r", "fake"]
    )
    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.stderr
    source.write_text('{"id": "a", "question": "no prompt field"}\n')
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "o.jsonl"), "-r", "fake"]
    )
    assert result.exit_code == 2 and "'prompt'" in result.stderr and "--prompt-key" in result.stderr


# careless input (issue 12) ------------------------------------------------------------------
@pytest.mark.parametrize("args", [["ask", "-r", "fake", ""], ["ask", "-r", "fake", "  \n"]])
def test_an_empty_prompt_is_refused(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "the prompt is empty" in result.stderr and "Traceback" not in result.output


def test_an_empty_prompt_on_stdin_is_refused() -> None:
    result = runner.invoke(app, ["ask", "-r", "fake", "-"], input="")
    assert result.exit_code == 2
    assert "the prompt is empty" in result.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-tokens", "-5"),
        ("--max-tokens", "0"),
        ("--temperature", "99"),
        ("--temperature", "-1"),
    ],
)
def test_settings_are_validated_as_the_server_validates_them(option: str, value: str) -> None:
    result = runner.invoke(app, ["ask", "-r", "fake", option, value, "hi"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option}: ")
    assert "Traceback" not in result.output


def test_a_recipe_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"layers": ' + "[" * 100_000 + "]" * 100_000 + ', "aggregator": "fake:a"}')
    result = runner.invoke(app, ["ask", "-r", str(deep), "hi"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {deep}: nested too deeply to be a recipe"
    ]


def test_serve_passes_its_limits_and_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    import moa.server

    seen: dict[str, object] = {}
    monkeypatch.setattr(moa.server, "serve", lambda **kw: seen.update(kw))
    args = ["serve", "--max-runs", "3", "--max-body", "1000", "--cors-origin", "https://a.example"]
    args += ["--allowed-host", "moa.example", "--demo", "--no-pull"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["max_concurrent_runs"] == 3 and seen["max_body_bytes"] == 1000
    assert seen["cors_origins"] == ["https://a.example"]
    assert seen["allowed_hosts"] == ["moa.example"]
    assert seen["demo"] is True and seen["pull"] is False
    assert runner.invoke(app, ["serve", "--max-runs", "0"]).exit_code == 2
    shown = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "300"}).output
    assert "visible to every user of the machine (ps, /proc)" in shown


def test_credentials_in_a_base_url_are_not_printed(tmp_path: Path) -> None:
    recipe = tmp_path / "creds.yaml"
    url = "http://user:pw-0123456789@127.0.0.1:9/v1?token=tok-0123456789"
    recipe.write_text(f'layers: [["vllm:m@{url}"]]\naggregator: fake:agg\nretry: {{attempts: 1}}\n')
    result = runner.invoke(app, ["ask", "-r", str(recipe), "--show-layers", "hi"])
    assert result.exit_code == 1
    assert "http://***@127.0.0.1:9/v1?***" in result.stderr
    assert "pw-0123456789" not in result.output and "tok-0123456789" not in result.output


def test_credentials_in_a_base_url_are_not_in_the_json_trace(tmp_path: Path) -> None:
    recipe = tmp_path / "creds.yaml"
    url = "http://user:pw-0123456789@127.0.0.1:9/v1?token=tok-0123456789"
    recipe.write_text(
        f'layers: [{{agents: ["vllm:m@{url}", fake:ok], quorum: 1}}]\n'
        "aggregator: fake:agg\nretry: {attempts: 1}\n"
    )
    result = runner.invoke(app, ["ask", "-r", str(recipe), "--json", "see http://a.example/?q=1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "pw-0123456789" not in result.stdout and "tok-0123456789" not in result.stdout
    assert data["trace"]["calls"][0]["model"] == "vllm:m@http://***@127.0.0.1:9/v1?***"
    assert "http://a.example/?q=1" in data["text"]  # answers are left as they are


def test_show_layers_counts_only_the_calls_that_ran(tmp_path: Path) -> None:
    recipe = tmp_path / "staged.yaml"
    recipe.write_text(
        "layers: [[fake:a, fake:b, fake:c, fake:d]]\naggregator: fake:agg\n"
        "strategy: {final: {rule: vote, decide_early: {start: 2}}}\n"
    )
    result = runner.invoke(app, ["ask", "-r", str(recipe), "--show-layers", "2 + 2?"])
    assert result.exit_code == 0, result.output
    # the first two agree (the fake answers repeat the prompt): the other two never start
    assert "2 calls (2 not started) ·" in result.stderr
