"""IFBench: the shipped prompts, IFBench's checkers (from if-verifiable) working offline, strict
and loose, the prompts left out and why, and the evaluation's plumbing on scripted models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moa import FakeBackend
from moa.errors import ConfigError
from moa.evals import checkers, ifbench
from moa.evals.cli import app
from moa.evals.data import load_json_or_jsonl, packaged
from moa.evals.harness import Harness
from moa.evals.ifbench import IFBench
from moa.evals.runner import evaluate
from moa.types import Request

BENCH = IFBench()
ITEMS = {i["id"]: i for i in BENCH.prompts()[0]}


def test_the_shipped_prompts_splits_and_the_left_out() -> None:
    items, left_out = BENCH.prompts()
    assert len(items) + len(left_out) == 294
    assert len(left_out) == 18  # 12 need the stopwords corpus, 6 the POS tagger
    raw = load_json_or_jsonl(packaged("ifbench_test.jsonl"))
    uses = {str(r["key"]): set(r["instruction_id_list"]) for r in raw}
    assert all(uses[k] & set(checkers.UNCHECKABLE) for k in left_out)
    assert not any(uses[i["id"]] & set(checkers.UNCHECKABLE) for i in items)
    dev, dev_out = BENCH.prompts(split="dev")
    held, held_out = BENCH.prompts(split="held-out")
    assert len(dev) + len(dev_out) == 147 and len(held) + len(held_out) == 147
    assert {i["id"] for i in dev}.isdisjoint(i["id"] for i in held)
    assert dev[0]["id"] == "0" and all(None not in kw.values() for kw in dev[0]["kwargs"])
    with pytest.raises(ConfigError, match="unknown split"):
        BENCH.prompts(split="train")


def test_words_are_nltks_without_a_download(monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    def no_network(*args: object, **kwargs: object) -> bool:
        raise AssertionError("nltk tried to download")

    checkers.registry.cache_clear()
    monkeypatch.setattr(nltk, "download", no_network)
    checkers.registry("ifbench")  # imports the checkers, which ask nltk for its data
    assert nltk.download is no_network  # the hook is given back as it was
    # the Punkt model knows 'dr' as an abbreviation: an untrained one would end a sentence there
    assert nltk.word_tokenize("Dr. Smith went home. He slept.") == [
        "Dr.",
        "Smith",
        "went",
        "home",
        ".",
        "He",
        "slept",
        ".",
    ]


def test_keywords_checked_strictly() -> None:
    item = ITEMS["0"]  # kaleidoscope 1, nebula 2, whisper 3, labyrinth 5, paradox 7 times
    words = ["kaleidoscope"] + ["nebula"] * 2 + ["whisper"] * 3 + ["labyrinth"] * 5
    good = " ".join([*words, *["paradox"] * 7]) + "."
    bad = " ".join([*words, *["paradox"] * 6]) + "."
    assert ifbench.check(item, good) == {"strict": [True], "loose": [True]}
    assert ifbench.check(item, bad) == {"strict": [False], "loose": [False]}
    assert ifbench.check(item, None) == {"strict": [False], "loose": [False]}


def test_loose_forgives_a_first_line_strict_does_not() -> None:
    item = ITEMS["288"]  # the entire response in title case (a checker that tokenizes words)
    assert ifbench.check(item, "The Factions Of The Area")["strict"] == [True]
    assert ifbench.check(item, "the factions of the area")["strict"] == [False]
    chatty = "sure, here it is:\nThe Factions Of The Area"
    assert ifbench.check(item, chatty) == {"strict": [False], "loose": [True]}


def data_file(tmp_path: Path) -> Path:
    raw = {str(r["key"]): r for r in load_json_or_jsonl(packaged("ifbench_test.jsonl"))}
    path = tmp_path / "ifbench.jsonl"
    path.write_text("".join(json.dumps(raw[k]) + "\n" for k in ("0", "171", "288", "289")))
    return path


def title_case(request: Request) -> str:
    text = next(m.content for m in request.messages if m.role == "user")
    return "Here Is My Answer In Title Case" if "title case" in text else "no idea"


async def test_evaluate_scores_strict_and_loose_and_names_the_left_out(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("titler", title_case)
    fake.respond("chatty", lambda r: "sure:\n" + title_case(r))
    fake.respond("echo", title_case)
    proposers = ["fake:chatty", "fake:titler", "fake:echo"]
    recipe = {"name": "two", "layers": [proposers], "aggregator": "fake:chatty"}
    h = Harness(
        out_dir=tmp_path / "out",
        cache_path=tmp_path / "cache.sqlite3",
        backends={"fake": fake},
        progress=False,
        log=lambda _: None,
    )
    report = await evaluate(
        BENCH, [recipe], h, data=data_file(tmp_path), split="all", kinds=["alone", "select"]
    )
    await h.aclose()
    rows = {r["name"]: r for r in report.rows}
    titler, chatty = rows["titler (T=0.7) alone"], rows["chatty (T=0.7) alone"]
    assert titler["n"] == 3  # prompt 171 (stop words) is left out
    assert (titler["correct"], titler["accuracy"], titler["loose"]) == (2, 2 / 3, 2 / 3)
    assert (chatty["correct"], chatty["loose"]) == (0, 2 / 3)
    assert chatty["instruction_strict"] == 0 and chatty["instruction_loose"] == 2 / 3
    assert report.meta["left out (cannot be checked offline)"]["keys"] == ["171"]
    # the answer most like the others is the title-case one, not the first (greedy) one
    chosen = rows["two: agreement selection"]
    assert (chosen["correct"], chosen["n"]) == (2, 3)
    md = report.files["md"].read_text()
    assert "prompt loose %" in md and "| titler (T=0.7) alone | 66.7 |" in md
    assert {"json", "md", "png"} <= set(report.files)


def test_cli_ifbench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["ifbench", "-r", "fake", "--limit", "2", "--variants", "recipe", "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(out), "--split", "held-out"])
    assert result.exit_code == 0, result.output
    assert "| fake | 0.0 |" in result.output and (out / "report.md").exists()
    bad = runner.invoke(app, [*args, "--split", "train"])
    assert bad.exit_code == 2 and "unknown split 'train'" in bad.output
