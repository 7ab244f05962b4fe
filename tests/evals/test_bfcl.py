"""BFCL: our reader of prompted calls and our checker on the rules bfcl-eval documents (the full
agreement is benchmarks/bfcl_fidelity.sh), the splits and the category mix, the vote on calls,
and `moa eval bfcl` on scripted models over a small copy of the data's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from moa import FakeBackend
from moa.backends.fake import Reply, call
from moa.errors import ConfigError
from moa.evals import bfcl_data
from moa.evals.bfcl import BFCL, canonical, number_of, read_calls, tools_of, write_calls
from moa.evals.bfcl_check import check
from moa.evals.cli import app
from moa.evals.harness import Harness
from moa.evals.runner import evaluate
from moa.types import Request, ToolCall

AREA = {
    "name": "geometry.area",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer"},
            "height": {"type": "float"},
            "unit": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["base", "height"],
    },
}
ANSWER = [
    {"geometry.area": {"base": [10], "height": [5.0], "unit": ["square meters", ""], "tags": [""]}}
]


def verdict(text: str, category: str = "simple_python", answer: Any = ANSWER) -> bool:
    return check(category, [AREA], read_calls(text), answer).valid


def test_calls_are_read_as_bfcl_reads_a_prompted_answer() -> None:
    assert read_calls("[geometry.area(base=10, height=2*2.5, unit=meters)]") == [
        {"geometry.area": {"base": 10, "height": 5.0, "unit": "meters"}}  # a name reads as text
    ]
    assert read_calls("geometry.area(base=-3)") == [{"geometry.area": {"base": -3}}]
    assert read_calls("[]") == [] and read_calls("I would call nothing.") is None
    assert read_calls("```python\n[f(x=1)]\n```") is None  # BFCL does not read fenced code
    assert read_calls("[f(x=__import__('os').system('true'))]") == [
        {"f": {"x": "__import__('os').system('true')"}}  # read as text, never run
    ]


@pytest.mark.parametrize(
    ("text", "right"),
    [
        ("[geometry.area(base=10, height=5.0)]", True),  # optional left out
        ("[geometry.area(base=10, height=5)]", True),  # an int passes for a float
        ("[geometry.area(base=10, height=5.0, unit='Square-Meters')]", True),  # case, punctuation
        ("[geometry.area(base=10, height=5.0, unit='acres')]", False),
        ("[geometry.area(base='10', height=5.0)]", False),  # a string for an int
        ("[geometry.area(base=10.0, height=5.0)]", False),  # a float for an int
        ("[geometry.area(base=10)]", False),  # a required parameter missing
        ("[geometry.area(base=10, height=5.0, colour='red')]", False),  # unexpected
        ("[geometry_area(base=10, height=5.0)]", False),  # another name
        ("[geometry.area(base=10, height=5.0), geometry.area(base=10, height=5.0)]", False),
        ("no call", False),
    ],
)
def test_a_call_is_right_by_name_parameters_types_and_values(text: str, right: bool) -> None:
    assert verdict(text) is right


def test_parallel_calls_match_in_any_order_and_relevance_by_calling_or_not() -> None:
    answer = [
        {"geometry.area": {"base": [1], "height": [1.0], "unit": [""], "tags": [""]}},
        {"geometry.area": {"base": [2], "height": [2.0], "unit": [""], "tags": [""]}},
    ]
    both = "[geometry.area(base=2, height=2.0), geometry.area(base=1, height=1.0)]"
    assert verdict(both, "parallel", answer)
    assert not verdict("[geometry.area(base=2, height=2.0)]", "parallel", answer)
    assert verdict("[]", "irrelevance", None) and verdict("Sorry, no.", "irrelevance", None)
    assert not verdict("[geometry.area(base=1)]", "irrelevance", None)
    assert verdict("[geometry.area(base=1)]", "live_relevance", None)


def test_splits_by_the_number_in_the_id_and_the_vote_on_calls() -> None:
    assert [number_of(i) for i in ("simple_python_12", "live_simple_3-1-0", "parallel_0")] == [
        12,
        3,
        0,
    ]
    same = canonical(read_calls("[f(b='Los Angeles', a=2.0), g(x=1)]"))
    assert same == canonical(read_calls("[g(x=1), f(a=2, b='los angeles')]"))
    bench = BFCL()
    texts = ["[f(x=1)]", "[f(x=2)]", "[f(x=2.0)]", "[f(x=1)]"]
    assert bench.select({}, texts) == 0  # a tie of two and two goes to the greedy answer
    assert bench.select({}, ["[f(x=1)]", "[f(x=2)]", "[f(x=2.0)]", "nothing"]) == 1


def write_data(folder: Path) -> Path:
    """Two categories in the layout of bfcl-eval's data folder."""
    (folder / "possible_answer").mkdir(parents=True)
    rows = {
        "simple_python": [
            {
                "id": f"simple_python_{i}",
                "question": [[{"role": "user", "content": f"Area of base {i}, height 2?"}]],
                "function": [AREA],
            }
            for i in range(4)
        ],
        "irrelevance": [
            {
                "id": f"irrelevance_{i}",
                "question": [[{"role": "user", "content": "What is the weather?"}]],
                "function": [AREA],
            }
            for i in range(4)
        ],
    }
    answers = [
        {
            "id": f"simple_python_{i}",
            "ground_truth": [
                {"geometry.area": {"base": [i], "height": [2.0], "unit": [""], "tags": [""]}}
            ],
        }
        for i in range(4)
    ]
    for category, items in rows.items():
        (folder / f"BFCL_v4_{category}.json").write_text(
            "".join(json.dumps(r) + "\n" for r in items)
        )
    (folder / "possible_answer" / "BFCL_v4_simple_python.json").write_text(
        "".join(json.dumps(a) + "\n" for a in answers)
    )
    return folder


def caller(request: Request) -> str:
    assert "geometry.area" in request.messages[0].content  # the functions, offered in words
    question = request.messages[-1].content
    if "weather" in question:
        return "[geometry.area(base=1, height=1.0)]"  # calls where none fits: wrong
    base = int(question.split("base ")[1].split(",")[0])
    return f"[geometry.area(base={base}, height=2)]"


async def test_evaluate_mixes_categories_and_scores_by_category(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    fake = FakeBackend()
    fake.respond("caller", caller)
    recipe = {"name": "c", "layers": [], "aggregator": {"model": "fake:caller", "temperature": 0}}
    h = Harness(
        out_dir=tmp_path / "out",
        cache=False,
        backends={"fake": fake},
        progress=False,
        log=lambda _: None,
    )
    bench = BFCL(offer="words")
    report = await evaluate(bench, [recipe], h, data=data, split="dev", kinds=["recipe"])
    await h.aclose()
    (row,) = report.rows
    # dev: ids 0 and 2 of each category, taken in turn
    assert (row["n"], row["correct"]) == (4, 2)
    assert row["categories"] == {"irrelevance": 0.0, "simple_python": 1.0}
    records = [json.loads(line) for line in (h.out_dir / row["file"]).read_text().splitlines()]
    assert [r["id"] for r in records] == [
        "simple_python_0",
        "irrelevance_0",
        "simple_python_2",
        "irrelevance_2",
    ]
    assert records[1]["reason"] == "a call was made"


def test_functions_become_tools_and_tool_calls_are_written_as_bfcls_list() -> None:
    (tool,) = tools_of([AREA])
    assert tool["function"]["name"] == "geometry_area"  # tool APIs allow no '.'
    assert tool["function"]["parameters"]["type"] == "object"  # BFCL's 'dict'
    assert tool["function"]["parameters"]["properties"]["height"] == {"type": "number"}
    made = [ToolCall("a", "geometry_area", '{"base": 10, "height": 5, "unit": "square meters"}')]
    text = write_calls(made)
    assert text == "[geometry_area(base=10, height=5, unit='square meters')]"
    assert BFCL().score({"category": "simple_python", "function": [AREA], "answer": ANSWER}, text)[
        "correct"
    ]
    assert write_calls([ToolCall("a", "f", "[1]")]) is None  # arguments must be an object
    assert BFCL().answer_text("I cannot help with that.", []) == "[]"  # no call made
    assert BFCL(offer="words").answer_text("[f(x=1)]", []) == "[f(x=1)]"


def tool_caller(request: Request) -> Reply:
    assert [t.name for t in request.act.tools] == ["geometry_area"] if request.act else False
    question = str(request.messages[-1].content)
    if "weather" in question:
        return Reply("No function fits.")  # none called where none fits: right
    base = int(question.split("base ")[1].split(",")[0])
    return Reply(tool_calls=[call("geometry_area", {"base": base, "height": 2})])


async def test_a_mixtures_tool_calls_are_scored_and_its_proposers_vote(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    fake = FakeBackend()
    fake.respond("caller", tool_caller)
    fake.respond("wrong", Reply(tool_calls=[call("geometry_area", {"base": 99, "height": 2})]))
    recipe = {
        "name": "tv",
        "layers": [{"agents": ["fake:caller", "fake:wrong", "fake:caller"]}],
        "aggregator": "fake:caller",
        "strategy": {"final": "tool_vote"},
    }
    h = Harness(
        out_dir=tmp_path / "out",
        cache=False,
        backends={"fake": fake},
        progress=False,
        log=lambda _: None,
    )
    kinds = ["recipe", "alone", "select"]
    report = await evaluate(BFCL(), [recipe], h, data=data, split="dev", kinds=kinds)
    await h.aclose()
    rows = {r["name"]: r for r in report.rows}
    assert (rows["tv"]["n"], rows["tv"]["correct"]) == (4, 4)
    assert rows["tv"]["categories"] == {"irrelevance": 1.0, "simple_python": 1.0}
    assert rows["wrong (T=0.7) alone"]["categories"] == {"irrelevance": 0.0, "simple_python": 0.0}
    assert rows["tv: vote on calls"]["correct"] == 4  # two of three proposers make the call
    record = json.loads((h.out_dir / rows["tv"]["file"]).read_text().splitlines()[0])
    assert record["text"] == "[geometry_area(base=0, height=2)]" and record["reply"] == ""
    assert [c["name"] for c in record["trace"]["calls"][0]["tool_calls"]] == ["geometry_area"]


def test_cli_bfcl_and_a_bad_category(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    data = write_data(tmp_path / "data")
    runner = CliRunner()
    args = ["bfcl", "-r", "fake", "--data", str(data), "--variants", "recipe", "--no-progress"]
    result = runner.invoke(app, [*args, "--category", "irrelevance", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "BFCL (dev)" in result.output and "| fake |" in result.output
    bad = runner.invoke(app, [*args, "--category", "java"])
    assert bad.exit_code == 2 and "unknown BFCL category 'java'" in bad.output
    bad = runner.invoke(app, [*args, "--offer", "telepathy"])
    assert bad.exit_code == 2 and "--offer: use tools or words" in bad.output
    with pytest.raises(ConfigError, match="unknown BFCL category"):
        bfcl_data.load_category("java", data)


@pytest.mark.slow
def test_the_data_is_fetched_from_the_wheel_and_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Needs PyPI: the wheel is downloaded without its dependencies and checked by sha256."""
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path))
    folder = bfcl_data.data_dir()
    counts = {c: len(bfcl_data.load_category(c, folder)) for c in bfcl_data.CATEGORIES}
    assert sum(counts.values()) == 3491 and counts["simple_python"] == 400
    assert "sha256" in (folder / "complete").read_text()
    assert bfcl_data.data_dir(fetch=False) == folder  # found again without fetching
