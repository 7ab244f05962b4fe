"""Reading answers: final answers out of text, and the kind of a set of answers."""

from __future__ import annotations

import pytest

from moa.strategies import Strategy
from moa.strategies.read import answer_kind, extract_number, normalize_number


# answer extraction ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Janet sells 9 eggs.\n#### 72", "72"),
        ("so 1,234.5 in all.\nAnswer: 1,234.5", "1234.5"),
        ("She earns $18 a day.\nAnswer: $18", "18"),
        ("**Answer:** $1,234.50", "1234.5"),
        ("The answer is 42 apples.", "42"),
        ("Answer: 15 dollars\n\nCheck: 3 + 12 = 15, and 2 more", "15"),
        ("The final answer is \\boxed{1,000}.", "1000"),
        ("It has 5 cats and 3 dogs, so 8 pets in total.", "8"),
        ("Answer: -7.0", "-7"),
        ("Answer: 3/4", "0.75"),
        ("Answer:\n\n  12 cm", "12"),
        ("She answered 3 questions. In total 10 minutes.", "10"),
        ("The total is 10,000,000 grains.", "10000000"),
        ("Answer: 13 eggs remain.\nThen 13 * 2 = 26.\n\\boxed{26}", "26"),
        ("\\boxed{5} is wrong; the answer is 6", "6"),
        ("no digits at all", None),
        ("", None),
    ],
)
def test_extract_number(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


def test_normalize_number() -> None:
    assert normalize_number("$1,000.00") == "1000"
    assert normalize_number("0.50") == "0.5"
    assert normalize_number("abc") is None
    assert normalize_number("1/0") is None


def test_strict_answers_ignore_numbers_in_passing() -> None:
    read = Strategy(answer="strict").read()
    assert read("Founded in 1969, it has 3 campuses.") is None
    assert read("So...\nAnswer: 1,200") == "1200"
    assert read("The answer is \\boxed{7}.") == "7"
    assert Strategy().read()("Founded in 1969, it has 3 campuses.") == "3"


def test_answer_pattern() -> None:
    s = Strategy(answer="text", answer_pattern=r"^Verdict:\s*(\w+)")
    read = s.read()
    assert read("blah\nVerdict: Yes\n") == "yes"
    assert read("nothing") is None


def test_answer_kinds() -> None:
    code = "Here:\n```python\ndef f(x):\n    return x\n```"
    assert answer_kind([code, code, "I think 4.\nAnswer: 4"]) == "code"
    assert answer_kind(["so\nAnswer: 4", "Answer: 5", "no idea"]) == "number"
    worked = f"{code}\nprint(x)\n```output\n4\n```\nThe answer is \\(\\boxed{{4}}\\)."
    assert answer_kind([worked, worked, code]) == "number"  # a sum worked out in Python
    # numbers met in passing do not make prose numeric
    assert answer_kind(["In 1969 men walked on the moon.", "It was 1969.", "Yes."]) == "prose"
    assert answer_kind([]) == "prose"
