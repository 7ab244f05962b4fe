"""HumanEval: the shipped problems, pass@1 by the official tests in the real sandbox, and the
evaluation's plumbing on scripted models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moa import FakeBackend
from moa.errors import ConfigError
from moa.evals import humaneval
from moa.evals.cli import app
from moa.evals.humaneval import HumanEval
from moa.evals.runner import Harness, evaluate, wilson
from moa.sandbox import SandboxLimits
from moa.types import Request

PROBLEMS = {p["id"]: p for p in humaneval.load_problems()}


def test_the_shipped_problems_and_their_splits() -> None:
    assert len(PROBLEMS) == 164
    dev = humaneval.load_problems(split="dev")
    held = humaneval.load_problems(split="held-out")
    assert len(dev) == len(held) == 82
    assert all(p["number"] % 2 == 0 for p in dev) and all(p["number"] % 2 for p in held)
    assert [p["id"] for p in humaneval.load_problems(split="held-out", limit=2, offset=1)] == [
        "HumanEval/3",
        "HumanEval/5",
    ]
    with pytest.raises(ConfigError, match="unknown split"):
        humaneval.load_problems(split="test")


def test_a_problem_file_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "he.jsonl"
    path.write_text(json.dumps(PROBLEMS["HumanEval/53"]) + "\n")
    assert [p["id"] for p in humaneval.load_problems(path)] == ["HumanEval/53"]
    path.write_text('{"task_id": "x/1"}\n')
    with pytest.raises(ConfigError, match="lacks entry_point, prompt, test"):
        humaneval.load_problems(path)


@pytest.mark.parametrize("task", ["HumanEval/0", "HumanEval/10", "HumanEval/38", "HumanEval/53"])
def test_the_canonical_solution_passes_the_official_tests(task: str) -> None:
    p = PROBLEMS[task]
    whole = f"Here it is:\n```python\n{p['prompt']}{p['canonical_solution']}```\nDone."
    assert humaneval.score(p, whole) == "ok"
    assert humaneval.score(p, p["canonical_solution"]) == "ok"  # the body alone


def test_wrong_hanging_and_missing_answers_fail() -> None:
    p = PROBLEMS["HumanEval/53"]
    assert humaneval.score(p, "```python\ndef add(x, y):\n    return x - y\n```") == "error"
    hang = "```python\ndef add(x, y):\n    while True:\n        pass\n```"
    assert humaneval.score(p, hang, limits=SandboxLimits(timeout_s=1.0)) == "timeout"
    assert humaneval.score(p, "") == "empty" and humaneval.score(p, None) == "empty"
    assert humaneval.score(p, "I cannot do that.") == "error"


def solver(wrong: bool) -> Any:
    def answer(request: Request) -> str:
        text = next(m.content for m in request.messages if m.role == "user")
        p = next(p for p in PROBLEMS.values() if p["prompt"] in text)
        body = "    return None\n" if wrong else p["canonical_solution"]
        return f"```python\n{p['prompt']}{body}```"

    return answer


RECIPE = {
    "name": "pair",
    "layers": [["fake:bad", "fake:good"]],  # the first (greedy) proposer is the wrong one
    "aggregator": "fake:bad",
    "proposer_defaults": {"temperature": 0.7, "seed": 0},
}


def harness(tmp_path: Path, fake: FakeBackend) -> Harness:
    return Harness(
        out_dir=tmp_path / "out",
        cache_path=tmp_path / "cache.sqlite3",
        backends={"fake": fake},
        concurrency=1,  # so that wall times count
        progress=False,
        log=lambda _: None,
    )


async def test_evaluate_scores_each_variant_and_writes_the_report(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("good", solver(wrong=False))
    fake.respond("bad", solver(wrong=True))
    h = harness(tmp_path, fake)
    report = await evaluate(
        HumanEval(), [RECIPE], h, split="dev", limit=3, offset=26, kinds=["recipe", "select"]
    )
    await h.aclose()
    rows = {r["name"]: r for r in report.rows}
    assert rows["good (T=0.7, seed 0) alone"]["correct"] == 3
    assert rows["bad (T=0.7, seed 0) alone"]["correct"] == 0
    assert rows["pair"]["correct"] == 0  # the aggregator is the bad model
    good = rows["good (T=0.7, seed 0) alone"]
    assert (good["accuracy"], good["n"]) == (1.0, 3)
    assert (good["ci_low"], good["ci_high"]) == pytest.approx(wilson(3, 3))
    assert good["statuses"] == {"ok": 3} and rows["pair"]["statuses"] == {"error": 3}
    assert good["tokens"] > 0 and good["wall"] is not None
    assert {"json", "md", "png"} <= set(report.files)
    saved = json.loads(report.files["json"].read_text())
    assert saved["meta"]["split"] == "dev" and saved["meta"]["items"] == 3
    assert "| pair | 0.0 |" in report.files["md"].read_text()
    # chosen by behaviour among the two proposers' answers: the right one, every time
    chosen = rows["pair: behaviour selection"]
    assert (chosen["correct"], chosen["n"], chosen["kind"]) == (3, 3, "select")
    bad = rows["bad (T=0.7, seed 0) alone"]
    assert chosen["tokens"] == pytest.approx(good["tokens"] + bad["tokens"])
    assert chosen["wall"] is None  # no single run made it
    lines = (tmp_path / "out" / chosen["file"]).read_text().splitlines()
    picked = [json.loads(line)["chosen"] for line in lines]
    assert picked == [1, 1, 1]
    record = json.loads((tmp_path / "out" / good["file"]).read_text().splitlines()[0])
    assert record["task_id"] == "HumanEval/52" and record["status"] == "ok"


def test_cli_humaneval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["humaneval", "-r", "fake", "--limit", "2", "--variants", "recipe", "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| fake | 0.0 |" in result.output and (out / "report.json").exists()
    bad = runner.invoke(app, [*args, "--split", "test"])
    assert bad.exit_code == 2 and "unknown split 'test'" in bad.output
    wrong = runner.invoke(app, [*args, "--variants", "vote"])
    assert wrong.exit_code == 2 and "unknown variant 'vote'" in wrong.output
