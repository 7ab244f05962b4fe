"""The one tally (ties, weights, confidence) and the early decision of a vote, as pure functions."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moa.strategies.read import extract_number
from moa.strategies.tally import decide_early, mean_weight, tally
from moa.trace import confidence


# votes ---------------------------------------------------------------------------------------
def test_tally_ties_go_to_the_answer_given_first() -> None:
    t = tally(
        [extract_number(a) for a in ["Answer: 5", "Answer: 7", "Answer: 7", "Answer: 5", "nothing"]]
    )
    assert t.winner == "5" and t.index == 0 and t.votes == 2 and t.total == 5
    assert t.groups == {"5": [0, 3], "7": [1, 2]}
    assert tally([extract_number("x"), extract_number("y")]).winner is None


def test_tally_with_ties_to_the_greedy_answer() -> None:
    vote = tally(["4", "5", "5", "4", None])
    assert (vote.winner, vote.index, vote.tied) == ("4", 0, ("4", "5"))
    assert vote.groups == {"4": [0, 3], "5": [1, 2]} and vote.total == 5 and vote.votes == 2
    assert tally(["4", "5", "5"]).winner == "5"
    # the greedy candidate had no answer: a tie goes to the answer given first
    assert tally([None, "7", "8"]).winner == "7"
    assert tally([None, None]).winner is None
    # the carrier is the first candidate with the winning answer when greedy lost
    assert tally(["1", "2", "2"]).index == 1


def test_weights_change_the_winner() -> None:
    answers = ["4", "5", "5"]
    assert tally(answers, [3.0, 1.0, 1.0]).winner == "4"
    assert tally(answers, [1.0, 1.0, 1.0]).winner == "5"
    assert tally({2: "5", 0: "4"}, {0: 0.2, 2: 0.9}).winner == "5"
    # groups are ordered by score, not by count
    assert list(tally(answers, [3.0, 1.0, 1.0]).groups) == ["4", "5"]


def test_confidence_is_length_normalised() -> None:
    assert confidence([-1.0, -3.0]) == -2.0
    assert confidence([]) is None and confidence(None) is None
    # a long answer is not penalised for its length: same mean, same weight
    short, long = confidence([-0.5] * 3), confidence([-0.5] * 300)
    assert mean_weight(short) == pytest.approx(mean_weight(long))
    assert mean_weight(confidence([-0.5]), temperature=0.5) == pytest.approx(math.exp(-1.0))
    assert mean_weight(None) == 1.0
    with pytest.raises(ValueError, match="temperature"):
        mean_weight(-1.0, temperature=0)


def test_cisc_weights_need_no_softmax_and_fall_back_without_logprobs() -> None:
    lps = [[-0.05] * 10, [-3.0] * 10, [-3.0] * 10]
    raw = [mean_weight(confidence(lp)) for lp in lps]
    normalised = [w / sum(raw) for w in raw]  # CISC's softmax: the same winner
    # a confident minority beats an unsure majority
    assert tally(["12", "13", "13"], raw).winner == "12"
    assert tally(["12", "13", "13"], normalised).winner == "12"
    # an answer without logprobs weighs 1, as in a plain vote
    assert tally(["12", "13", "13"], [mean_weight(None)] * 3).winner == "13"


def test_early_when_the_rest_cannot_change_the_outcome() -> None:
    # 3 of 5 agree: two remaining votes cannot overturn it
    early = decide_early({0: "4", 1: "4", 2: "4"}, total=5)
    assert early is not None and (early.answer, early.reason, early.seen, early.remaining) == (
        "4",
        "cannot change",
        3,
        2,
    )
    # 2 of 4 with 2 remaining: a 2-2 tie is possible, and it goes to the greedy answer (index 0)
    assert decide_early({0: "4", 1: "4"}, total=4) is not None
    assert decide_early({1: "4", 2: "4"}, total=4) is None  # the greedy answer is not in yet
    assert decide_early({0: "5", 1: "4", 2: "4"}, total=5) is None
    assert decide_early({0: "4", 1: "4"}, total=2) is None  # nothing left to stop
    assert decide_early({0: None, 1: None}, total=4) is None


def test_esc_window_rule() -> None:
    done = {2: "9", 0: "9"}
    assert decide_early(done, total=8) is None
    early = decide_early(done, total=8, window=2)
    assert early is not None and (early.answer, early.reason) == ("9", "window unanimous")
    assert decide_early({2: "9", 0: "8"}, total=8, window=2) is None
    assert decide_early({2: "9", 0: "9", 1: "9"}, total=8, window=2) is None  # window incomplete


@settings(max_examples=300, deadline=None)
@given(
    answers=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=2, max_size=6),
    order=st.randoms(use_true_random=False),
    weights=st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=6, max_size=6),
    weighted=st.booleans(),
)
def test_an_early_decision_is_the_final_outcome_whatever_the_rest_say(
    answers: list[str | None], order: Any, weights: list[float], weighted: bool
) -> None:
    total = len(answers)
    arrival = list(range(total))
    order.shuffle(arrival)
    w = dict(enumerate(weights)) if weighted else None
    for seen in range(1, total):
        done = {i: answers[i] for i in arrival[:seen]}
        early = decide_early(done, total=total, weights=w)
        if early is None:
            continue
        pending = arrival[seen:]
        # every way the pending sequences could still answer, at any weight up to 1
        for rest in itertools.product(["a", "b", "c", "d", None], repeat=len(pending)):
            final = {**done, **dict(zip(pending, rest, strict=True))}
            heavy = {**(w or {}), **dict.fromkeys(pending, 1.0)}
            assert tally(final, heavy if weighted else None).winner == early.answer
        break
