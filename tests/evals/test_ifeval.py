"""IFEval: the shipped prompts and their splits, IFEval's checkers (from if-verifiable) giving
their verdicts offline and the same on every run, and `moa eval ifeval` on scripted models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moa import FakeBackend
from moa.evals import checkers
from moa.evals.cli import app
from moa.evals.harness import Harness
from moa.evals.ifeval import IFEval
from moa.evals.runner import evaluate
from moa.types import Request

BENCH = IFEval()
ITEMS = {i["id"]: i for i in BENCH.prompts()[0]}


def test_the_shipped_prompts_and_their_splits() -> None:
    items, left_out = BENCH.prompts()
    assert (len(items), left_out) == (541, [])  # every IFEval instruction checks offline
    dev, _ = BENCH.prompts(split="dev")
    held, _ = BENCH.prompts(split="held-out")
    assert (len(dev), len(held)) == (271, 270)
    # the first half of the keys in numeric order, not in the file's order
    assert max(int(i["id"]) for i in dev) < min(int(i["id"]) for i in held)
    assert [i["id"] for i in dev[:2]] == ["13", "16"] and dev[-1]["id"] == "2309"
    assert [i["id"] for i in BENCH.prompts(split="held-out", limit=1, offset=2)[0]] == ["2323"]


def score(key: str, text: str) -> dict[str, list[bool]]:
    return checkers.follows("ifeval", ITEMS[key], text)


def test_instructions_checked_strict_and_loose() -> None:
    # 1001: no commas at all
    assert score("1001", "Day one: Tokyo. Day two: Kyoto.") == {"strict": [True], "loose": [True]}
    assert score("1001", "Day one: Tokyo, then Kyoto.")["strict"] == [False]
    # 1051: all lowercase; a chatty first line fails strict but loose forgives it
    assert score("1051", "dear sam, please go and vote.")["strict"] == [True]
    assert score("1051", "Dear Sam, please go and vote.")["strict"] == [False]
    assert score("1051", "Sure! Here:\ndear sam, please go and vote.") == {
        "strict": [False],
        "loose": [True],
    }
    # 1322: a title in double angular brackets
    assert score("1322", "<<Kotlin or Java>>\nBoth run on the JVM.")["strict"] == [True]
    assert score("1322", "Kotlin or Java\nBoth run on the JVM.")["strict"] == [False]
    assert score("1001", "") == {"strict": [False], "loose": [False]}


def test_the_language_checker_gives_one_verdict() -> None:
    # langdetect guesses at random unless seeded: the same text, the same verdict, every time
    text = "ಹ್ಯಾಂಬರ್ಗರ್ ಒಂದು ಸ್ಯಾಂಡ್ವಿಚ್ ಅಲ್ಲ."
    assert {tuple(score("1108", text)["strict"]) for _ in range(5)} == {(True,)}
    assert score("1108", "A hamburger is not a sandwich.")["strict"] == [False]


def test_the_checkers_load_with_nothing_downloaded(tmp_path: Path) -> None:
    """In a fresh interpreter (the modules not yet imported), with nltk's download replaced by
    one that fails loudly: the checkers load, and NLTK's sentences come from our Punkt files."""
    code = """
import nltk
def boom(*a, **k):
    raise SystemExit("nltk.download was called")
nltk.download = boom
from moa.evals import checkers
checkers.registry("ifeval")
checkers.registry("ifbench")
assert nltk.download is boom
print(nltk.sent_tokenize("Dr. Smith went home. He slept."))
"""
    env = {"MOA_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['Dr. Smith went home.', 'He slept.']"
    assert (tmp_path / "nltk_data" / "tokenizers" / "punkt_tab" / "english").is_dir()


def lower_or_not(request: Request) -> str:
    text = next(m.content for m in request.messages if m.role == "user")
    return "all in lower case, as asked." if "lowercase" in text else "Some Answer, with commas."


async def test_evaluate_scores_prompt_and_instruction_level(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("quiet", lower_or_not)
    recipe = {"name": "q", "layers": [], "aggregator": {"model": "fake:quiet", "temperature": 0}}
    data = tmp_path / "ifeval.jsonl"
    rows = [ITEMS[k] for k in ("1001", "1051", "1322")]
    data.write_text(
        "".join(
            json.dumps({k: r[k] for k in ("key", "prompt", "instruction_id_list", "kwargs")}) + "\n"
            for r in rows
        )
    )
    h = Harness(
        out_dir=tmp_path / "out",
        cache_path=tmp_path / "cache.sqlite3",
        backends={"fake": fake},
        progress=False,
        log=lambda _: None,
    )
    report = await evaluate(BENCH, [recipe], h, data=data, split="all", kinds=["recipe"])
    await h.aclose()
    (row,) = report.rows
    # 1051 (lowercase) followed; 1001 (no commas) and 1322 (a title) not
    assert (row["correct"], row["n"], row["accuracy"]) == (1, 3, 1 / 3)
    assert row["instruction_strict"] == pytest.approx(1 / 3)
    assert report.kind == "instructions" and "prompt loose %" in report.files["md"].read_text()
    assert report.meta["split"] == "all" and report.meta["items"] == 3


def test_cli_ifeval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["ifeval", "-r", "fake", "--limit", "2", "--variants", "recipe", "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(out), "--split", "held-out"])
    assert result.exit_code == 0, result.output
    assert "| fake | " in result.output and "IFEval (held-out)" in result.output
    saved = json.loads((out / "report.json").read_text())
    assert saved["meta"]["split"] == "held-out" and saved["meta"]["items"] == 2
    bad = runner.invoke(app, [*args, "--split", "train"])
    assert bad.exit_code == 2 and "unknown split 'train'" in bad.output
