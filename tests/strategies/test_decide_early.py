"""Final rules that settle the last layer early: the answers still running stop once they cannot change the outcome."""

from __future__ import annotations

import time

import pytest
from recipes import proposers, recipe, run

from moa import FakeBackend, LayerFinished, MoA
from moa.errors import BackendError

AUTO = {"final": "auto", "decide_early": {}}  # code: behaviour, prose: agreement


STAGED = {"final": "vote", "decide_early": {"start": 2}}


async def test_the_rest_stop_once_the_vote_is_decided() -> None:
    fake = FakeBackend()
    fake.respond("p0", "Answer: 5").respond("p1", "Answer: 5")
    fake.respond("p2", "Answer: 7").respond("p3", "Answer: 7")
    fake.latency("p2", 5).latency("p3", 5)
    start = time.monotonic()
    result = await run(fake, recipe(proposers(4), strategy={"final": "vote", "decide_early": {}}))
    assert time.monotonic() - start < 2
    assert result.text == "Answer: 5"
    assert sorted(fake.cancelled) == ["p2", "p3"]
    stopped = [c for c in result.trace.calls if c.error_type == "Cancelled"]
    assert [c.agent for c in stopped] == ["fake:p2", "fake:p3"]
    assert all("the vote is decided (5)" in (c.error or "") for c in stopped)
    assert any("stopped 2 of 4 calls" in note for note in result.trace.notes)
    assert not fake.requests("agg")


async def test_the_layer_event_counts_the_stopped_calls() -> None:
    fake = FakeBackend()
    fake.respond("p0", "Answer: 5").respond("p1", "Answer: 5").latency("p2", 5).latency("p3", 5)
    data = recipe(proposers(4), strategy={"final": "vote", "decide_early": {}})
    async with MoA(data, backends={"fake": fake}) as moa:
        events = [e async for e in moa.astream("q")]
    (layer,) = [e for e in events if isinstance(e, LayerFinished)]
    assert (layer.answered, layer.failed, layer.stopped) == (2, 2, 2)
    assert not fake.requests("agg")


async def test_no_early_decision_while_the_rest_could_win() -> None:
    fake = FakeBackend()
    fake.respond("p1", "Answer: 5").respond("p2", "Answer: 5")
    fake.respond("p0", "Answer: 7").respond("p3", "Answer: 7")
    fake.latency("p0", 0.2).latency("p3", 0.2)
    result = await run(fake, recipe(proposers(4), strategy={"final": "vote", "decide_early": {}}))
    assert fake.cancelled == []  # p0 and p3 could (and do) win the tie: they were waited for
    assert result.text == "Answer: 7"


async def test_the_esc_window_stops_once_the_last_answers_agree() -> None:
    fake = FakeBackend()
    for i in range(5):
        fake.respond(f"p{i}", "Answer: 5" if i in (1, 2) else "Answer: 9")
    for i in (0, 3, 4):
        fake.latency(f"p{i}", 5)
    fake.latency("p2", 0.05)
    result = await run(
        fake, recipe(proposers(5), strategy={"final": "vote", "decide_early": {"window": 2}})
    )
    assert result.text == "Answer: 5"
    assert sorted(fake.cancelled) == ["p0", "p3", "p4"]
    assert any("the last 2 answers agree on 5" in note for note in result.trace.notes)


async def test_auto_decides_early_when_the_answers_read_as_numbers() -> None:
    fake = FakeBackend()
    fake.respond("p0", "So 5.\nAnswer: 5").respond("p1", "Answer: 5")
    fake.respond("p2", "Answer: 7").respond("p3", "Answer: 7")
    fake.latency("p2", 5).latency("p3", 5)
    result = await run(fake, recipe(proposers(4), strategy=AUTO))
    assert result.text == "So 5.\nAnswer: 5"
    assert sorted(fake.cancelled) == ["p2", "p3"]
    assert "the answers read as number: vote" in result.trace.notes


@pytest.mark.parametrize(
    "text", ["```python\ndef f():\n    return 5\n```", "Five is a fine number, 5 even."]
)
async def test_auto_waits_for_every_answer_that_is_not_a_number(text: str) -> None:
    fake = FakeBackend()
    for i in range(4):
        fake.respond(f"p{i}", text)
    fake.latency("p2", 0.3).latency("p3", 0.3)
    result = await run(fake, recipe(proposers(4), strategy=AUTO))
    assert fake.cancelled == []
    assert result.text == text
    assert sum(1 for c in result.trace.calls if c.ok) == 4


async def test_the_rest_do_not_start_when_the_first_answers_decide() -> None:
    fake = FakeBackend()
    for i in range(4):
        fake.respond(f"p{i}", "Answer: 5" if i < 2 else "Answer: 7")
    result = await run(fake, recipe(proposers(4), strategy=STAGED))
    assert result.text == "Answer: 5"
    assert [m for m, _ in fake.calls] == ["p0", "p1"]  # p2 and p3 never asked
    assert any("stopped 0 (and did not start 2) of 4 calls" in n for n in result.trace.notes)
    held = [c for c in result.trace.calls if c.error_type == "Cancelled"]
    assert [c.agent for c in held] == ["fake:p2", "fake:p3"]


async def test_the_rest_start_when_the_first_answers_disagree() -> None:
    fake = FakeBackend()
    for i, answer in enumerate(["5", "7", "7", "8"]):
        fake.respond(f"p{i}", f"Answer: {answer}")
    result = await run(fake, recipe(proposers(4), strategy=STAGED))
    assert result.text == "Answer: 7"  # the full vote's outcome
    assert sorted(m for m, _ in fake.calls) == ["p0", "p1", "p2", "p3"]
    assert any("the first 2 answers did not decide" in n for n in result.trace.notes)


async def test_the_rest_start_when_the_first_answers_fail() -> None:
    fake = FakeBackend()
    fake.fail("p0", RuntimeError("boom")).fail("p1", RuntimeError("boom"))
    fake.respond("p2", "Answer: 3").respond("p3", "Answer: 3")
    result = await run(fake, recipe(proposers(4), strategy=STAGED))
    assert result.text == "Answer: 3"


async def test_auto_stops_the_rest_once_prose_takes_the_first_answer() -> None:
    fake = FakeBackend()
    fake.respond("p0", "A calm lake at dawn.").respond("p1", "Leaves fall.")
    fake.respond("p2", "Answer: 3").respond("p3", "Answer: 3")
    fake.latency("p2", 5).latency("p3", 5)
    strategy = {"final": "auto", "decide_early": {}, "by_kind": {"prose": "first"}}
    result = await run(fake, recipe(proposers(4), strategy=strategy))
    assert result.text == "A calm lake at dawn."
    assert sorted(fake.cancelled) == ["p2", "p3"]
    assert any(
        "read as prose, whose rule is first: the first answer is in" in n
        for n in result.trace.notes
    )


async def test_one_prose_answer_is_not_enough_to_stop_the_rest() -> None:
    fake = FakeBackend()
    fake.respond("p0", "I think it is three.").latency("p1", 0.2).latency("p2", 0.2)
    fake.respond("p1", "Answer: 3").respond("p2", "Answer: 3").respond("p3", "Answer: 4")
    fake.latency("p3", 0.2)
    strategy = {"final": "auto", "decide_early": {}, "by_kind": {"prose": "first"}}
    result = await run(fake, recipe(proposers(4), strategy=strategy))
    assert result.text == "Answer: 3"  # the others read as numbers, and voted


async def test_an_agent_on_its_fallback_is_still_running_for_the_early_decision() -> None:
    # a = 5; b fails and its fallback says 7; c = 7: the vote is 7, decided early or not
    fake = FakeBackend()
    fake.respond("a", "Answer: 5").fail("b", BackendError("HTTP 503: down", status=503))
    fake.respond("b2", "Answer: 7").latency("b2", 0.2)
    fake.respond("c", "Answer: 7").latency("c", 0.1)
    layers = [["fake:a", {"model": "fake:b", "fallbacks": ["fake:b2"]}, "fake:c"]]
    for strategy in ({"final": "vote"}, {"final": "vote", "decide_early": {}}):
        result = await run(fake, recipe(layers, strategy=strategy))
        assert result.text == "Answer: 7", strategy
        assert not any("stopped" in note for note in result.trace.notes)


async def test_prose_read_from_the_one_answer_started_first_starts_no_other() -> None:
    """Under `start: 1`, the greedy answer alone says the kind: prose, whose rule takes it, so
    the other answers never start; numbers still start them, for the vote."""
    local = {
        "final": {
            "rule": "auto",
            "number": {"rule": "vote", "decide_early": {"start": 1}},
            "prose": {"rule": "first", "decide_early": True},
        }
    }
    fake = FakeBackend()
    fake.respond("p0", "Here is a poem about the sea.").respond("p1", "Answer: 3")
    result = await run(fake, recipe(proposers(4), strategy=local))
    assert result.text == "Here is a poem about the sea."
    assert [m for m, _ in fake.calls] == ["p0"]
    assert any("stopped 0 (and did not start 3) of 4 calls" in n for n in result.trace.notes)
    numbers = FakeBackend()
    numbers.respond("p0", "Answer: 3").respond("p1", "Answer: 3").respond("p2", "Answer: 4")
    result = await run(numbers, recipe(proposers(4), strategy=local))
    assert result.text == "Answer: 3" and len(numbers.calls) >= 2
