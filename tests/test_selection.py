"""Selection without a model call: agreement, weighted votes, early decisions, USC parsing, and
code chosen by behaviour (run for real in the sandbox)."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moa.evals.data import packaged
from moa.strategies.agreement import most_agreed, similarity
from moa.strategies.behaviour import (
    assemble_program,
    examples,
    extract_code,
    function_prompt,
    probe_calls,
    select_by_behaviour,
    typed_calls,
)
from moa.strategies.judges import parse_usc, usc_prompt
from moa.strategies.read import answer_kind
from moa.strategies.tally import decide_early, mean_weight, tally
from moa.trace import confidence


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


def test_answer_kinds() -> None:
    code = "Here:\n```python\ndef f(x):\n    return x\n```"
    assert answer_kind([code, code, "I think 4.\nAnswer: 4"]) == "code"
    assert answer_kind(["so\nAnswer: 4", "Answer: 5", "no idea"]) == "number"
    worked = f"{code}\nprint(x)\n```output\n4\n```\nThe answer is \\(\\boxed{{4}}\\)."
    assert answer_kind([worked, worked, code]) == "number"  # a sum worked out in Python
    # numbers met in passing do not make prose numeric
    assert answer_kind(["In 1969 men walked on the moon.", "It was 1969.", "Yes."]) == "prose"
    assert answer_kind([]) == "prose"


def test_usc_prompt_and_reading() -> None:
    prompt = usc_prompt("What is 2+2?", ["4", "5"])
    assert "Response 1: 4" in prompt and "Response 2: 5" in prompt
    assert parse_usc("The most consistent response is Response 2.", 2) == 1
    assert parse_usc("The most consistent response is **Response 1**", 3) == 0
    assert parse_usc("I pick response 3", 3) == 2
    assert parse_usc("Response 7", 3) is None and parse_usc("none", 3) is None


# code ---------------------------------------------------------------------------------------
def problems() -> dict[str, dict[str, Any]]:
    with gzip.open(packaged("humaneval.jsonl.gz"), "rt") as f:
        rows = [json.loads(line) for line in f]
    return {r["task_id"]: r for r in rows}


def test_extract_code_prefers_the_block_that_defines_the_function() -> None:
    text = "Use\n```bash\npip x\n```\nthen\n```python\ndef helper():\n    pass\n```\n```python\ndef f(x):\n    return x\n```"
    assert extract_code(text, "f").startswith("def f(x)")
    assert extract_code(text).startswith("def helper")
    assert extract_code("def f(): pass") == "def f(): pass"
    assert (
        extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"
    )  # unclosed


def test_the_function_is_found_in_the_users_message() -> None:
    from moa.evals.humaneval import PROMPTS

    p = problems()["HumanEval/10"]  # a helper (is_palindrome) comes before the function
    message = PROMPTS["code-block"].format(prompt=p["prompt"])  # mentions ```python in prose too
    code, entry = function_prompt(message) or ("", "")
    assert entry == "make_palindrome" and code.strip() == p["prompt"].strip()
    assert function_prompt("What is the capital of France?") is None
    # a fence opens only at the start of a line
    assert (
        extract_code("Use ```python blocks.\n```python\ndef g():\n    pass\n```")
        == "def g():\n    pass\n"
    )


def test_examples_read_the_prompts_own_doctests() -> None:
    found = examples(problems()["HumanEval/0"]["prompt"], "has_close_elements")
    assert found == [
        ("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        ("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"),
    ]
    arrows = (
        'def f(x):\n    """\n    f(3) ==> 9\n    f(2) should return 4\n    f(1) -> 1\n    """\n'
    )
    assert examples(arrows, "f") == [("f(3)", "9"), ("f(2)", "4"), ("f(1)", "1")]
    assert probe_calls(["f(3)"], "f") == ["f(4)", "f(2)", "f(0)", "f(-3)"]


def test_other_example_forms_and_typed_inputs() -> None:
    assert examples(problems()["HumanEval/107"]["prompt"], "even_odd_palindrome") == [
        ("even_odd_palindrome(3)", "(1, 2)"),
        ("even_odd_palindrome(12)", "(4, 6)"),
    ]
    p = problems()["HumanEval/41"]  # no example at all: inputs from the annotation `n: int`
    assert examples(p["prompt"], "car_race_collision") == []
    calls = typed_calls(p["prompt"], "car_race_collision", limit=3)
    assert calls == ["car_race_collision(0)", "car_race_collision(1)", "car_race_collision(2)"]
    assert typed_calls("def f(x: dict):\n    pass\n", "f") == []  # no guess for a dict


def test_a_body_only_answer_continues_the_prompt() -> None:
    p = problems()["HumanEval/53"]
    program = assemble_program(p["prompt"], "    return x + y\n", "add")
    assert program.startswith(p["prompt"]) and program.rstrip().endswith("return x + y")


def test_code_is_chosen_by_behaviour() -> None:
    p = problems()["HumanEval/53"]
    wrong = "```python\ndef add(x: int, y: int):\n    return x * y\n```"
    right = "```python\ndef add(x: int, y: int):\n    return x + y\n```"
    other = "Sure:\n```python\ndef add(x, y):\n    total = x\n    total += y\n    return total\n```"
    broken = "```python\ndef add(x, y)\n    return x + y\n```"
    choice = select_by_behaviour(
        [wrong, broken, right, other], prompt=p["prompt"], entry_point="add"
    )
    assert choice.index == 2 and choice.scores[1] == -1.0 and choice.scores[0] < 1
    # no examples with results: the behaviour most candidates share wins
    bare = 'def inc(x):\n    """Add one to x, e.g. inc(4)."""\n'
    cands = [
        "def inc(x):\n    return x + 2",
        "def inc(x):\n    return x + 1",
        "def inc(x):\n    return 1 + x",
    ]
    assert select_by_behaviour(cands, prompt=bare, entry_point="inc").index == 1


def test_a_hanging_candidate_does_not_hang_the_choice() -> None:
    p = problems()["HumanEval/53"]
    hang = "def add(x, y):\n    while True:\n        pass"
    right = "def add(x, y):\n    return x + y"
    choice = select_by_behaviour([hang, right], prompt=p["prompt"], entry_point="add")
    assert choice.index == 1
