"""final: checks — constraints read from the prompt's own words, and the answer that meets the
most of them (ties to the first); decided early when the first meets them all."""

from __future__ import annotations

import pytest
from recipes import proposers, recipe, run

from moa import FakeBackend
from moa.strategies.constraints import choose, constraints, met

PROMPT = (
    "Write a haiku about the sea in all lowercase letters. Do not use any commas. "
    "Include a title wrapped in double angular brackets, i.e. <<title>>."
)


def test_constraints_are_read_from_the_prompts_words() -> None:
    assert [name for name, _ in constraints(PROMPT)] == ["no commas", "lowercase", "title"]
    tests = constraints("Answer in at least 5 words and end with the phrase 'Is there more?'")
    assert [n for n, _ in tests] == ["ends with", "words"]
    assert met(tests, "one two three four five. Is there more?") == 2
    assert met(tests, "Too short.") == 0
    assert constraints("What is the capital of France?") == []


@pytest.mark.parametrize(
    ("answers", "index"),
    [
        (["<<Sea>>\nwaves, foam", "<<sea>>\nwaves and foam", "waves and foam"], 1),
        (["<<sea>>\nwaves", "<<sea>>\nfoam"], 0),  # a tie: the first
        (["Waves, Foam", "waves, foam"], 1),  # meets one more, though neither meets all
    ],
)
def test_the_answer_that_meets_the_most_wins_ties_to_the_first(
    answers: list[str], index: int
) -> None:
    assert choose(PROMPT, answers) == index


CHECKS = {"final": {"rule": "auto", "prose": {"rule": "checks", "decide_early": True}}}


async def test_the_rule_takes_the_answer_that_meets_them() -> None:
    fake = FakeBackend()
    fake.respond("p0", "<<Sea>>\nWaves, foam and salt.").respond("p1", "<<sea>>\nwaves and foam")
    fake.respond("p2", "waves and foam").respond("p3", "The sea, it is big.")
    result = await run(fake, recipe(proposers(4), strategy=CHECKS), PROMPT)
    assert result.text == "<<sea>>\nwaves and foam"
    assert any("meeting 3 of 3 constraints" in note for note in result.trace.notes)


async def test_the_others_stop_once_the_first_meets_every_constraint() -> None:
    fake = FakeBackend()
    fake.respond("p0", "<<sea>>\nwaves and foam").respond("p1", "<<sea>>\nfoam")
    for name in ("p2", "p3"):
        fake.respond(name, "<<sea>>\nsalt").latency(name, 5)
    result = await run(fake, recipe(proposers(4), strategy=CHECKS), PROMPT)
    assert result.text == "<<sea>>\nwaves and foam"
    assert sorted(fake.cancelled) == ["p2", "p3"]
    assert any("meets all 3 constraints" in n for n in result.trace.notes)


async def test_a_greedy_answer_without_the_asked_answer_line_lets_the_others_vote() -> None:
    """Under start: 1 the kind is read from the greedy answer; one that reads as prose because it
    lacks the 'Answer: N' line its prompt asks for does not meet that constraint, so the others
    start and the four, read as numbers, vote."""
    local = {
        "final": {
            "rule": "auto",
            "number": {"rule": "vote", "decide_early": {"start": 1}},
            "prose": {"rule": "checks", "decide_early": True},
        }
    }
    prompt = "How many?\n\nSolve step by step, then give the final answer on the last line as 'Answer: <number>'."
    fake = FakeBackend()
    fake.respond("p0", "I lost count halfway.").respond("p1", "3 and 4.\nAnswer: 7")
    fake.respond("p2", "Answer: 7").respond("p3", "Answer: 8")
    result = await run(fake, recipe(proposers(4), strategy=local), prompt)
    assert result.text == "3 and 4.\nAnswer: 7"
    assert len(fake.calls) == 4
