"""What judges are asked and how their answers are read: the ranker, reviewers, USC."""

from __future__ import annotations

import pytest

from moa.strategies.judges import (
    borda,
    parse_choice,
    parse_ranking,
    parse_usc,
    usc_prompt,
)


# ranker --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 1),
        ("Response 3 is the best.", 2),
        ("**1**", 0),
        ("I pick 7, no wait, 2", 1),
        ("none of them", None),
        ("0", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_choice(text: str | None, expected: int | None) -> None:
    assert parse_choice(text, 3) == expected


# sparse selection, council, early stop, filters ----------------------------------------------
def test_parse_ranking_and_borda() -> None:
    assert parse_ranking("2 > 3 > 1", 3) == [1, 2, 0]
    assert parse_ranking("3", 3) == [2, 0, 1]
    assert parse_ranking("Response 9 then 2", 3) == [1, 0, 2]
    assert parse_ranking("none", 3) is None
    assert borda([[0, 1, 2], [1, 0, 2], [1, 2, 0]], 3) == [1, 0, 2]
    assert borda([[0, 1], [1, 0]], 2) == [0, 1]  # a tie: the lower index first


def test_usc_prompt_and_reading() -> None:
    prompt = usc_prompt("What is 2+2?", ["4", "5"])
    assert "Response 1: 4" in prompt and "Response 2: 5" in prompt
    assert parse_usc("The most consistent response is Response 2.", 2) == 1
    assert parse_usc("The most consistent response is **Response 1**", 3) == 0
    assert parse_usc("I pick response 3", 3) == 2
    assert parse_usc("Response 7", 3) is None and parse_usc("none", 3) is None
