"""The answer most in agreement with the others, without a call."""

from __future__ import annotations

import pytest

from moa.strategies.agreement import most_agreed, similarity


def test_similarity_is_overlap_in_zero_one() -> None:
    assert similarity("the cat sat", "the cat sat") == 1.0
    assert similarity("the cat sat", "a dog ran") == 0.0
    near = similarity("the cat sat on the mat", "the cat sat on a mat")
    far = similarity("the cat sat on the mat", "dogs bark at the moon")
    assert 0 < far < near < 1
    assert similarity("abc", "abd", unit="char", n=1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="n must be"):
        similarity("a", "b", n=0)


def test_most_agreed_picks_the_consensus_text() -> None:
    texts = [
        "Paris is the capital of France.",
        "The capital of France is Paris.",
        "Lyon is the capital of France, I believe.",
        "Bananas are yellow.",
        "France's capital is Paris.",
    ]
    choice = most_agreed(texts)
    assert choice.index in (0, 1) and choice.scores[3] == min(choice.scores)
    assert most_agreed(["same", "same", "other"], greedy=1).index == 1  # tie goes to greedy
    assert most_agreed(["only"]).index == 0
    assert most_agreed(["", "x y", "x y"]).index == 1
    with pytest.raises(ValueError, match="no candidates"):
        most_agreed([])
