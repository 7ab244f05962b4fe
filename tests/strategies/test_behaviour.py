"""Code chosen by its behaviour on the prompt's examples, run for real in the sandbox."""

from __future__ import annotations

import gzip
import json
from typing import Any

from moa.evals.data import packaged
from moa.strategies.behaviour import (
    assemble_program,
    examples,
    extract_code,
    function_prompt,
    probe_calls,
    select_by_behaviour,
    typed_calls,
)


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
