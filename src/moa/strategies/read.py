"""Reading answers: the final answer out of free text (for votes, agreement tests and
exact-match scoring), and the kind of a set of answers (numbers, code or prose).

    extract_number("... so she earns $1,234.50 a day.\\nAnswer: $1,234.50")   -> "1234.5"
    extract_number("#### 72")                                                -> "72"

The order of preference: GSM8K's `#### N`; else the last of the `Answer: N` lines (also
"final answer", "the answer is", bold markers) and `\\boxed{N}`; else the last number.
Numbers are normalised: no thousands separators, currency or units, no trailing zeros.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal

__all__ = [
    "KINDS",
    "Kind",
    "Reader",
    "answer_kind",
    "extract_number",
    "extract_strict",
    "extract_text",
    "extractor",
    "normalize_number",
]

Reader = Callable[[str | None], str | None]
"""A function that reads a final answer out of a response (None: it has none)."""
Kind = Literal["number", "code", "prose"]
KINDS: tuple[Kind, ...] = ("number", "code", "prose")

_NUM = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?"
_LAST = re.compile("(" + _NUM + ")")
_HASHES = re.compile(r"####\s*(" + _NUM + ")")
_ANSWER = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is)?\s*[:=]?\s*\**\s*(?:is\s*)?[:=]?\s*\**\s*(?:\\\()?\s*"
    r"(" + _NUM + ")",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{\s*(" + _NUM + r")\s*\}")


def normalize_number(raw: str) -> str | None:
    """'$1,234.50' -> '1234.5'; '3/4' -> '0.75'; '-7.0' -> '-7'; None if not a number."""
    text = raw.replace(",", "").replace("$", "").replace(" ", "").strip().rstrip(".")
    try:
        if "/" in text:
            top, bottom = text.split("/", 1)
            value = Decimal(top) / Decimal(bottom)
        else:
            value = Decimal(text)
    except (InvalidOperation, ZeroDivisionError):
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _last(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    """The value of the match that ends last in `text`, over all `patterns`."""
    found = [(m.end(), m.group(1)) for p in patterns for m in p.finditer(text)]
    for _, raw in sorted(found, reverse=True):
        value = normalize_number(raw)
        if value is not None:
            return value
    return None


def extract_number(text: str | None) -> str | None:
    """The final numeric answer of a response, normalised; None if it has no number."""
    if not text:
        return None
    for patterns in ((_HASHES,), (_ANSWER, _BOXED), (_LAST,)):
        value = _last(patterns, text)
        if value is not None:
            return value
    return None


def extract_strict(text: str | None) -> str | None:
    """Only an explicit final answer (`Answer: N`, `\\boxed{N}`, `#### N`), never a number
    met in passing: for votes on answers that may be prose."""
    if not text:
        return None
    for patterns in ((_HASHES,), (_ANSWER, _BOXED)):
        value = _last(patterns, text)
        if value is not None:
            return value
    return None


def extract_text(text: str | None) -> str | None:
    """For non-numeric tasks: the last non-empty line, lower-cased, spaces collapsed."""
    if not text:
        return None
    lines = [" ".join(line.split()).lower().strip(" .*") for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else None


def extractor(kind: str, pattern: str | None = None) -> Reader:
    """The extraction function for a strategy's `answer` setting (or a regex with a group)."""
    if pattern:
        compiled = re.compile(pattern, re.IGNORECASE | re.MULTILINE)

        def by_pattern(text: str | None) -> str | None:
            if not text:
                return None
            found = compiled.findall(text)
            if not found:
                return None
            last = found[-1]
            value = last if isinstance(last, str) else last[0]
            if kind in ("number", "strict"):
                return normalize_number(value)
            return " ".join(value.split()).lower()

        return by_pattern
    return {"number": extract_number, "strict": extract_strict}.get(kind, extract_text)


_CODE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n|^\s*(?:async\s+)?def\s+\w+\s*\(", re.M)


def answer_kind(texts: Sequence[str]) -> Kind:
    """'number' when at least half the answers end on an explicit numeric answer ('Answer: N',
    a boxed or '#### N' one), else 'code' when at least half hold a Python block or a function
    definition, else 'prose'. Numbers come first: a small coding model often works a sum out
    in Python and then states the result (2 of the first 10 GSM8K problems)."""
    half = max(1, math.ceil(len(texts) / 2))
    if sum(1 for t in texts if extract_strict(t) is not None) >= half:
        return "number"
    if sum(1 for t in texts if _CODE.search(t)) >= half:
        return "code"
    return "prose"
