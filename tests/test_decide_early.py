"""A vote that stops the answers still running once they cannot change its outcome."""

from __future__ import annotations

import time
from typing import Any

import pytest

from moa import FakeBackend, MoA
from moa.errors import RecipeError
from moa.extract import extract_number
from moa.recipe import load_recipe
from moa.strategies import settled, tally


@pytest.mark.parametrize(
    ("values", "pending", "winner"),
    [
        ({0: "5", 1: "5"}, [2, 3], "5"),  # 2 votes; 2 more could only tie, and lose the tie
        ({1: "5", 2: "5"}, [0, 3], None),  # 0 and 3 agreeing on 7 would win the tie (first)
        ({0: "5", 1: "7"}, [2], None),
        ({0: "5", 1: "7", 2: "5"}, [3], "5"),
        ({0: None, 1: None}, [2], None),  # nothing readable yet
        ({0: "5", 1: "7"}, [], "5"),  # nothing pending: the tally's own winner
        ({0: "7", 1: "5", 2: "5"}, [], "5"),
    ],
)
def test_settled(values: dict[int, str | None], pending: list[int], winner: str | None) -> None:
    assert settled(values, pending) == winner


def test_settled_agrees_with_the_tally_whatever_the_rest_say() -> None:
    import itertools

    options = ["5", "7", None]
    for done in itertools.product(options, repeat=3):
        values = dict(enumerate(done))
        if (winner := settled(values, [3, 4])) is None:
            continue
        for rest in itertools.product(options, repeat=2):
            texts = [f"Answer: {v}" if v else "no idea" for v in (*done, *rest)]
            assert tally(texts, extract_number).winner == winner, (done, rest)


def recipe(strategy: dict[str, Any], n: int = 4) -> dict[str, Any]:
    return {
        "layers": [[f"fake:p{i}" for i in range(n)]],
        "aggregator": "fake:agg",
        "strategy": {"final": "vote", **strategy},
    }


async def test_the_rest_stop_once_the_vote_is_decided() -> None:
    fake = FakeBackend()
    fake.respond("p0", "Answer: 5").respond("p1", "Answer: 5")
    fake.respond("p2", "Answer: 7").respond("p3", "Answer: 7")
    fake.latency("p2", 5).latency("p3", 5)
    start = time.monotonic()
    async with MoA(recipe({"decide_early": {}}), backends={"fake": fake}) as moa:
        result = await moa.arun("q")
    assert time.monotonic() - start < 2
    assert result.text == "Answer: 5"
    assert sorted(fake.cancelled) == ["p2", "p3"]
    stopped = [c for c in result.trace.calls if c.error_type == "Cancelled"]
    assert [c.agent for c in stopped] == ["fake:p2", "fake:p3"]
    assert all("the vote is decided (5)" in (c.error or "") for c in stopped)
    assert any("stopped 2 of 4 calls" in note for note in result.trace.notes)
    assert not fake.requests("agg")


async def test_no_early_decision_while_the_rest_could_win() -> None:
    fake = FakeBackend()
    fake.respond("p1", "Answer: 5").respond("p2", "Answer: 5")
    fake.respond("p0", "Answer: 7").respond("p3", "Answer: 7")
    fake.latency("p0", 0.2).latency("p3", 0.2)
    async with MoA(recipe({"decide_early": {}}), backends={"fake": fake}) as moa:
        result = await moa.arun("q")
    assert fake.cancelled == []  # p0 and p3 could (and do) win the tie: they were waited for
    assert result.text == "Answer: 7"


async def test_the_esc_window_stops_once_the_last_answers_agree() -> None:
    fake = FakeBackend()
    for i in range(5):
        fake.respond(f"p{i}", "Answer: 5" if i in (1, 2) else "Answer: 9")
    for i in (0, 3, 4):
        fake.latency(f"p{i}", 5)
    fake.latency("p2", 0.05)
    async with MoA(recipe({"decide_early": {"window": 2}}, n=5), backends={"fake": fake}) as moa:
        result = await moa.arun("q")
    assert result.text == "Answer: 5"
    assert sorted(fake.cancelled) == ["p0", "p3", "p4"]
    assert any("the last 2 answers agree on 5" in note for note in result.trace.notes)


def test_decide_early_is_for_votes() -> None:
    with pytest.raises(RecipeError, match="decide_early is for final: vote"):
        load_recipe({**recipe({"decide_early": {}}), "strategy": {"decide_early": {}}})
