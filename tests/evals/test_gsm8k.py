"""The evaluation harness on fake models and judges: variants, scores, reports, resume."""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from faultserver import FaultServer, ok
from llama_server import needs_llama_cpp
from typer.testing import CliRunner

from moa import FakeBackend
from moa.errors import ConfigError
from moa.evals import cli as eval_cli
from moa.evals import collab, gsm8k, mt_bench, pairwise
from moa.evals import runner as eval_runner
from moa.evals.cli import app
from moa.evals.runner import Harness, wilson
from moa.recipe import load_recipe
from moa.types import Request

# llama.cpp's threads must not spin while other work shares the cores (the smoke tests)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PROBLEMS = [
    {"question": "Tom has 2 apples and gets 3 more. How many?", "answer": "2+3=5\n#### 5"},
    {"question": "A box holds 4 pens. How many in 3 boxes?", "answer": "4*3=12\n#### 12"},
    {"question": "Sam had 1,000 dollars and spent 250.", "answer": "#### 750"},
    {"question": "What is 9 minus 2?", "answer": "#### 7"},
]
GOLD = {"Tom": "5", "A box": "12", "Sam": "1,000", "What": "7"}


def gold_of(request: Request) -> str:
    text = next(m.content for m in request.messages if m.role == "user")
    return next(v for k, v in GOLD.items() if text.startswith(k))


def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return path


def scripted() -> FakeBackend:
    """`good` is always right, `bad` always says 1, `meh` right on the first two problems; the
    aggregator copies the majority it is shown, and the ranker picks response 1."""
    fake = FakeBackend()
    fake.respond("good", lambda r: f"Working...\nAnswer: {gold_of(r)}")
    fake.respond("bad", "I think\nAnswer: 1")
    fake.respond(
        "meh", lambda r: f"Answer: {gold_of(r) if 'apples' in str(r) or 'pens' in str(r) else 2}"
    )

    def aggregate(r: Request) -> str:
        system = r.messages[0].content
        if "pick the single best response" in system:
            return "1"
        found = re.findall(r"Answer: ([\d,]+)", system)
        return f"Synthesis.\nAnswer: {max(found, key=found.count)}" if found else "?"

    fake.respond("agg", aggregate)
    return fake


RECIPE = {
    "name": "trio",
    "layers": [["fake:good", "fake:bad", "fake:meh"]],
    "aggregator": "fake:agg",
    "proposer_defaults": {"temperature": 0.7, "seed": 0},
    "aggregator_defaults": {"temperature": 0},
}


def harness(tmp_path: Path, fake: FakeBackend, **kwargs: Any) -> Harness:
    return Harness(
        out_dir=tmp_path / "out",
        cache_path=tmp_path / "cache.sqlite3",
        backends={"fake": fake},
        progress=False,
        log=lambda _: None,
        **kwargs,
    )


def test_wilson() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) == (0.0, 0.0)


def test_gsm8k_loader_reads_the_reference_format() -> None:
    problems = gsm8k.load_problems(limit=3)
    assert [p["gold"] for p in problems] == ["18", "3", "70000"]
    assert gsm8k.load_problems(limit=2, offset=1)[0]["id"] == "1"


def test_variants_of_a_recipe() -> None:
    names = [(v.kind, v.name) for v in gsm8k.variants_for(load_recipe(RECIPE))]
    assert [k for k, _ in names] == ["alone", "alone", "alone", "vote", "rank", "recipe", "self"]
    assert names[0][1] == "good (T=0.7, seed 0) alone"
    self_twin = gsm8k.variants_for(load_recipe(RECIPE))[-1].recipe
    (agent,) = self_twin.layers[0].agents
    assert (agent.model, agent.n, agent.temperature) == ("fake:agg", 3, 0.7)


async def test_gsm8k_scores_every_variant_and_writes_the_report(tmp_path: Path) -> None:
    fake = scripted()
    h = harness(tmp_path, fake)
    report = await gsm8k.evaluate([RECIPE], h, data=data_file(tmp_path), limit=4)
    rows = {r["name"]: r for r in report.rows}
    assert rows["good (T=0.7, seed 0) alone"]["correct"] == 3  # '1,000' is not 750
    assert rows["bad (T=0.7, seed 0) alone"]["correct"] == 0
    assert rows["meh (T=0.7, seed 0) alone"]["correct"] == 2
    assert rows["trio: majority vote"]["correct"] == 3  # ties go to the first proposer
    assert rows["trio: LLM ranker"]["correct"] == 3
    assert rows["trio"]["correct"] == 3
    assert rows["trio"]["accuracy"] == 0.75 and rows["trio"]["n"] == 4
    lo, hi = wilson(3, 4)
    assert (rows["trio"]["ci_low"], rows["trio"]["ci_high"]) == (lo, hi)
    assert rows["trio"]["tokens"] > rows["good (T=0.7, seed 0) alone"]["tokens"]
    # every proposal was generated once: 3 models x 4 problems, then all from the cache
    proposals = [m for m, _ in fake.calls if m in ("good", "bad", "meh")]
    assert len(proposals) == 12
    # the report, three ways
    data = json.loads(report.files["json"].read_text())
    assert data["rows"][0]["name"] == "good (T=0.7, seed 0) alone"
    md = report.files["md"].read_text()
    assert "| trio | 75.0 | " in md and "| trio: LLM ranker | 75.0 |" in md
    assert report.files["png"].stat().st_size > 1000
    assert report.files["png"].read_bytes()[:4] == b"\x89PNG"
    # each row's results are on disk, one line per problem
    lines = (h.out_dir / rows["trio"]["file"]).read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["trace"]["calls"]
    await h.aclose()


async def test_gsm8k_resumes_and_reports_without_running(tmp_path: Path) -> None:
    fake = scripted()
    h = harness(tmp_path, fake)
    await gsm8k.evaluate([RECIPE], h, data=data_file(tmp_path), limit=2, kinds=["recipe"])
    calls = len(fake.calls)
    again = await gsm8k.evaluate([RECIPE], h, data=data_file(tmp_path), limit=2, kinds=["recipe"])
    assert len(fake.calls) == calls and again.rows[0]["correct"] == 2
    await h.aclose()
    quiet = harness(tmp_path, FakeBackend(), report_only=True)
    report = await gsm8k.evaluate(
        [RECIPE], quiet, data=data_file(tmp_path), limit=4, kinds=["recipe", "vote"]
    )
    assert [(r["name"], r["n"]) for r in report.rows] == [("trio", 2)]  # vote never ran
    await quiet.aclose()


async def test_wall_time_is_measured_never_estimated(tmp_path: Path) -> None:
    fake = scripted()
    fake.latency("good", 0.02)
    busy = harness(tmp_path / "busy", fake, concurrency=2)
    report = await gsm8k.evaluate([RECIPE], busy, data=data_file(tmp_path), limit=2)
    await busy.aclose()
    assert report.rows[0]["wall"] is None  # two questions at once: no latency figure
    h = harness(tmp_path, fake, concurrency=1)
    report = await gsm8k.evaluate([RECIPE], h, data=data_file(tmp_path), limit=2)
    rows = {r["name"]: r for r in report.rows}
    alone = rows["good (T=0.7, seed 0) alone"]
    assert alone["timed"] == 2 and alone["wall"] >= 0.02  # made afresh, alone: measured
    vote = rows["trio: majority vote"]
    assert vote["timed"] == 0 and vote["wall"] is None  # all from the cache: no time
    assert "| trio: majority vote | " in report.files["md"].read_text()
    await h.aclose()
    # an uncached run, one question at a time, gives the times to the cached report
    timing = Harness(
        out_dir=tmp_path / "time",
        cache=False,
        backends={"fake": fake},
        concurrency=1,
        progress=False,
        log=lambda _: None,
    )
    await gsm8k.evaluate([RECIPE], timing, data=data_file(tmp_path), limit=1, kinds=["vote"])
    await timing.aclose()
    quiet = harness(tmp_path, FakeBackend(), report_only=True)
    report = await gsm8k.evaluate(
        [RECIPE],
        quiet,
        data=data_file(tmp_path),
        limit=2,
        kinds=["vote"],
        timing=tmp_path / "time",
    )
    (row,) = report.rows
    assert row["timed"] == 1 and row["wall"] >= 0.02
    assert "(n=1)" in report.files["md"].read_text()
    await quiet.aclose()


# pairwise ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Assistant A is more helpful. [[A]]", "A"),
        ("[[B]]", "B"),
        ("Both fine. [[C]]", "C"),
        ("first [[A]] then on reflection [[B]]", "B"),
        ("B", "B"),
        ("Answer A is better.", "A"),
        ("It's a tie.", "C"),
        ("I cannot decide", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, verdict: str | None) -> None:
    assert pairwise.parse_verdict(text) == verdict


def test_length_control() -> None:
    # wins only where ours is longer: the win rate at equal length is lower than the raw one
    scores = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    ours = [300, 320, 310, 100, 90, 280, 110, 120]
    theirs = [200] * 8
    raw = sum(scores) / len(scores)
    assert pairwise.length_controlled(scores, ours, theirs) < raw
    # no length effect: about the raw win rate
    same = pairwise.length_controlled([1.0, 0.0, 1.0, 0.0], [100, 100, 100, 100], [100] * 4)
    assert same == pytest.approx(0.5, abs=1e-6)


async def test_pairwise_asks_both_orders_and_scores(tmp_path: Path) -> None:
    against = tmp_path / "ref.json"
    against.write_text(
        json.dumps(
            [
                {"instruction": f"Question {i}?", "output": f"Reference {i}.", "generator": "r"}
                for i in range(3)
            ]
        )
    )
    fake = FakeBackend()
    fake.respond("ours", lambda r: f"Our long and careful answer to {r.messages[-1].content}")
    verdicts = iter(["[[A]]", "[[A]]", "[[B]]", "[[B]]", "[[C]]", "garbage"])
    fake.respond("judge", lambda r: next(verdicts))
    h = harness(tmp_path, fake)
    recipe = {"name": "ours", "layers": [], "aggregator": {"model": "fake:ours", "temperature": 0}}
    report = await pairwise.evaluate(
        [recipe], h, against=against, judge="fake:judge", limit=3, judge_max_tokens=8
    )
    judged = fake.requests("judge")
    assert len(judged) == 6
    first, second = judged[0].messages[-1].content, judged[1].messages[-1].content
    assert first.index("Our long") < first.index("Reference 0.")  # ours as A
    assert second.index("Reference 0.") < second.index("Our long")  # ours as B
    assert judged[0].settings.temperature == 0 and judged[0].settings.max_tokens == 8
    assert "impartial judge" in judged[0].messages[0].content  # FastChat's pair-v2
    (row,) = report.rows
    # item 0: A then A = one win, one loss -> 0.5; item 1: B, B -> 0.5; item 2: tie, unread
    assert row["win_rate"] == pytest.approx(50.0)
    assert row["unparsed"] == 1 and row["n"] == 3
    assert row["length_ratio"] > 1
    assert "LC win rate" in report.files["md"].read_text()
    assert report.files["png"].exists()
    await h.aclose()


# MT-Bench ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("Good. Rating: [[7]]", 7.0),
        ("[[8.5]]", 8.5),
        ("Rating: [6]", 6.0),
        ("Rating: 4", 4.0),
        ("[[11]]", None),
        ("no rating", None),
        (None, None),
    ],
)
def test_parse_rating(text: str | None, rating: float | None) -> None:
    assert mt_bench.parse_rating(text) == rating


def test_mt_bench_questions_and_references() -> None:
    items = mt_bench.load_questions()
    assert len(items) == 80
    math = next(i for i in items if i["category"] == "math")
    assert math["reference"] and len(math["reference"]) == 2
    writing = next(i for i in items if i["category"] == "writing")
    assert writing["reference"] is None
    assert {i["category"] for i in mt_bench.load_questions(categories=["coding"])} == {"coding"}


async def test_mt_bench_two_turns_and_judged_per_turn(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.respond("bot", lambda r: f"reply #{len(r.messages)}")
    ratings = iter(["Fine. Rating: [[8]]", "[[6]]", "Rating: [[9]]", "nothing"])
    fake.respond("judge", lambda r: next(ratings))
    h = harness(tmp_path, fake)
    recipe = {"name": "bot", "layers": [], "aggregator": {"model": "fake:bot", "temperature": 0}}
    report = await mt_bench.evaluate(
        [recipe], h, judge="fake:judge", categories=["writing", "math"], limit=2, offset=9
    )
    asked = fake.requests("bot")
    assert [len(r.messages) for r in asked] == [1, 3, 1, 3]  # the second turn sees the first
    judged = fake.requests("judge")
    assert len(judged) == 4
    assert "reply #3" in judged[1].messages[-1].content  # turn 2 shows the conversation
    assert "Reference" not in judged[0].messages[-1].content  # writing: no reference
    assert "Reference" in judged[2].messages[-1].content  # math: the GPT-4 reference
    (row,) = report.rows
    assert (row["turn1"], row["turn2"]) == (8.5, 6.0)
    assert row["score"] == pytest.approx(23 / 3) and row["unparsed"] == 1
    assert "| bot | 7.67 |" in report.files["md"].read_text()
    await h.aclose()


# costs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cache", [True, False], ids=["cached", "no-cache"])
async def test_hosted_calls_are_counted_with_and_without_the_cache(
    tmp_path: Path, fault_server: FaultServer, cache: bool
) -> None:
    """An OpenAI-compatible endpoint (real HTTP on loopback) answers the recipe and the judge:
    both count their calls and seconds, whether answers are kept or not."""
    fault_server.respond("m", ok("Answer: 5", delay=0.05))
    ref = f"llama-server:m@{fault_server.base_url}"
    h = Harness(
        out_dir=tmp_path / "out",
        cache=cache,
        cache_path=tmp_path / "cache.sqlite3",
        progress=False,
        log=lambda _: None,
    )
    moa = h.moa(load_recipe({"layers": [], "aggregator": {"model": ref, "temperature": 0}}))
    for _ in range(2):
        _, cost, _ = await h.answer(moa, "What is 2+3?")
        _, judged = await h.judge(ref, "Rate it.", max_tokens=8)
    for item in (cost, judged):
        assert (item.calls, item.cached_calls) == (1, 1 if cache else 0)
        assert item.seconds >= 0.05  # as if uncached: a hit reports the seconds it first took
        assert item.input_tokens > 0 and item.output_tokens > 0
    assert len(fault_server.requests("m")) == (2 if cache else 4)
    await h.aclose()


# collaborativeness ---------------------------------------------------------------------------
async def test_collaborativeness(tmp_path: Path) -> None:
    fake = scripted()
    fake.respond("agg", lambda r: "Answer: 1")
    h = harness(tmp_path, fake)
    recipe = {**RECIPE, "layers": [["fake:good", "fake:meh"]]}
    report = await collab.evaluate(recipe, h, data=data_file(tmp_path), limit=4)
    rows = {r["name"]: r for r in report.rows}
    assert set(rows) == {"good", "meh"}
    # meh alone: 2 of 4; meh given good's answers (the scripted fake copies the majority)
    assert rows["meh"]["alone"] == 0.5
    assert rows["good"]["alone"] == 0.75
    helped = [r for m, r in fake.calls if m == "meh" and r.messages[0].role == "system"]
    assert helped and "good" not in helped[0].messages[0].content.split("\n1. ")[0]
    assert (
        report.files["png"].exists()
        and "with the others' answers" in report.files["md"].read_text()
    )
    await h.aclose()


async def test_collaborativeness_of_one_model_says_why(tmp_path: Path) -> None:
    fake = scripted()
    h = harness(tmp_path, fake)
    one = {**RECIPE, "layers": [["fake:good", {"model": "fake:good", "n": 2}]]}
    with pytest.raises(ConfigError, match=r"two or more models.*has 1: fake:good"):
        await collab.evaluate(one, h, data=data_file(tmp_path), limit=2)
    assert fake.calls == []  # said before any call
    await h.aclose()


def test_collaborativeness_defaults_to_a_recipe_of_several_models() -> None:
    default = inspect.signature(eval_cli.collaborativeness).parameters["recipe"].default
    assert len(collab.variants_for(load_recipe(default))) >= 2


# the command ---------------------------------------------------------------------------------
def test_cli_gsm8k(tmp_path: Path, tmp_cache: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["gsm8k", "-r", "fake", "--limit", "2", "--data", str(data_file(tmp_path))]
    result = runner.invoke(app, [*args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "| fake |" in result.output and (out / "report.png").exists()
    bad = runner.invoke(app, [*args, "--variants", "nope"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["gsm8k", "-r", "no-such-recipe"])
    assert missing.exit_code == 2 and "no built-in recipe" in missing.output


def test_cli_judged_commands(tmp_path: Path, tmp_cache: Path) -> None:
    against = tmp_path / "ref.json"
    against.write_text(json.dumps([{"instruction": "Hi?", "output": "Hello."}]))
    runner = CliRunner()
    common = ["-r", "fake", "--judge", "fake:judge", "--limit", "1", "--no-progress"]
    result = runner.invoke(
        app, ["pairwise", *common, "--against", str(against), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    assert "LC win rate" in result.output and (tmp_path / "p" / "report.json").exists()
    result = runner.invoke(app, ["mt-bench", *common, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "report.md").exists()
    result = runner.invoke(
        app,
        [
            "collaborativeness",
            "-r",
            "fake",
            "--limit",
            "2",
            "--no-progress",
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and (tmp_path / "c" / "report.png").exists()
    missing = runner.invoke(app, ["pairwise", *common, "--against", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def jsonl(tmp_path: Path, name: str, *rows: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_evaluation_input_is_a_config_error_naming_the_problem(tmp_path: Path) -> None:
    pairs = jsonl(tmp_path, "ref.jsonl", {"instruction": "Hi?", "output": "Hello."}, {"x": 1})
    with pytest.raises(ConfigError, match=r"ref\.jsonl: item 1: needs 'instruction' and 'output'"):
        pairwise.load_pairs(pairs)
    with pytest.raises(ConfigError, match=r"unknown judge prompt 'pair-v9'; use pair-v2, brief"):
        pairwise.judge_prompt("pair-v9")
    problems = jsonl(tmp_path, "gsm.jsonl", {"question": "1+1?", "answer": "#### 2"}, {"q": "?"})
    with pytest.raises(ConfigError, match=r"gsm\.jsonl: item 1: needs 'question'"):
        gsm8k.load_problems(problems)
    with pytest.raises(ConfigError, match=r"--prompt: .*\{answer\}.*only \{question\}"):
        gsm8k.template_of("{question} {answer}")
    questions = jsonl(tmp_path, "q.jsonl", {"question_id": "one", "category": "x", "turns": []})
    with pytest.raises(ConfigError, match=r"q\.jsonl: item 0: 'question_id' must be a number"):
        mt_bench.load_questions(questions)
    questions = jsonl(tmp_path, "q2.jsonl", {"question_id": 1, "turns": ["Hi"]})
    with pytest.raises(ConfigError, match=r"q2\.jsonl: item 0: needs 'question_id', 'category'"):
        mt_bench.load_questions(questions)
    refs = jsonl(tmp_path, "r.jsonl", {"question_id": 1, "choices": []})
    with pytest.raises(ConfigError, match=r"r\.jsonl: item 0: 'choices' must be a list of objects"):
        mt_bench.load_questions(references=refs)


def test_cli_bad_input_exits_2_and_a_bug_is_not_hidden(
    tmp_path: Path, tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    against = jsonl(tmp_path, "ref.jsonl", {"instruction": "Hi?"})
    common = ["-r", "fake", "--judge", "fake:judge", "--no-progress", "--out", str(tmp_path / "p")]
    bad = runner.invoke(app, ["pairwise", *common, "--against", str(against)])
    assert bad.exit_code == 2 and "needs 'instruction' and 'output'" in bad.output
    assert bad.exception is None or isinstance(bad.exception, SystemExit)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        empty: dict[str, Any] = {}
        return empty["a bug"]

    monkeypatch.setattr(eval_runner, "evaluate", broken)
    crashed = runner.invoke(app, ["gsm8k", "-r", "fake", "--out", str(tmp_path / "g")])
    assert isinstance(crashed.exception, KeyError)  # a bug stays a traceback, not "bad input"
    assert crashed.exit_code == 1


# the real judge (plumbing only: SmolLM2 judges badly) ----------------------------------------
@needs_llama_cpp
@pytest.mark.slow
async def test_pairwise_with_smollm2_as_judge(tmp_path: Path, smollm2_path: Path) -> None:
    against = tmp_path / "ref.json"
    against.write_text(json.dumps([{"instruction": "Name a colour.", "output": "Blue."}]))
    fake = FakeBackend()
    h = harness(tmp_path, fake, concurrency=1)
    recipe = {"name": "f", "layers": [], "aggregator": {"model": "fake:x", "temperature": 0}}
    report = await pairwise.evaluate(
        [recipe],
        h,
        against=against,
        judge="local:smollm2-135m-instruct",
        limit=1,
        judge_prompt_style="brief",
        judge_max_tokens=6,
    )
    (row,) = report.rows
    assert row["n"] == 1 and row["errors"] == 0
    record = json.loads(next((h.out_dir / "runs").glob("*.jsonl")).read_text())
    assert [v["ours_first"] for v in record["verdicts"]] == [True, False]
    assert all(c["role"] == "judge" and c["text"] is not None for c in record["judge_calls"])
    assert report.files["json"].exists() and report.files["md"].exists()
    await h.aclose()


@needs_llama_cpp
@pytest.mark.slow
async def test_mt_bench_with_smollm2_as_judge(tmp_path: Path, smollm2_path: Path) -> None:
    h = harness(tmp_path, FakeBackend(), concurrency=1)
    recipe = {"name": "f", "layers": [], "aggregator": {"model": "fake:x", "temperature": 0}}
    report = await mt_bench.evaluate(
        [recipe], h, judge="local:smollm2-135m-instruct", limit=1, judge_max_tokens=8
    )
    (row,) = report.rows
    assert row["n"] == 1 and row["errors"] == 0
    record = json.loads(next((h.out_dir / "runs").glob("*.jsonl")).read_text())
    assert len(record["ratings"]) == 2 and len(record["judge_calls"]) == 2
    assert report.files["md"].exists()
    await h.aclose()


def test_a_result_file_is_named_by_what_the_recipe_does() -> None:
    from moa.evals.runner import recipe_key

    base = {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:c"}
    key = recipe_key(load_recipe(base))
    # defaults spelt out, a name, a description: the same recipe, the same results
    same = {**base, "name": "x", "description": "y", "strategy": {"final": "synthesize"}}
    assert recipe_key(load_recipe(same)) == key
    assert recipe_key(load_recipe({**base, "strategy": {"final": "vote"}})) != key
    assert recipe_key(load_recipe({**base, "aggregator": "fake:d"})) != key
