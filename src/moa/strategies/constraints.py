"""Constraints that a prompt states in words ("no commas", "at least 300 words", "in all
lowercase letters", "wrap your entire response in double quotation marks", "end with the
phrase ..."), read from its text by the regular expressions here, each turned into a test of
an answer: what the `checks` final rule chooses by. No benchmark's checker and no instruction
ids are used, only what the user's prompt says, so it runs on any prompt (most state none;
then every answer passes everything and the first is taken).

    tests = constraints(prompt)                   # [(name, test), ...]
    index = choose(prompt, answers)               # the answer that meets the most, ties first
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

__all__ = ["Test", "choose", "constraints", "met"]

Test = Callable[[str], bool]
WORD = re.compile(r"\w+")
NUMBERS = {
    w: i
    for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    )
}
N = r"(\d+|" + "|".join(NUMBERS) + r")"
MORE = r"at least|more than|over|no less than|a minimum of"
LESS = r"less than|fewer than|under|at most|no more than|a maximum of"
REL = rf"({MORE}|{LESS}|exactly)"
Q = "\"'\u201c\u201d"  # quotation marks a prompt puts around a word
QUOTED = re.compile(rf"[{Q}]([^{Q}]+)[{Q}]")

NO_COMMAS = re.compile(
    r"\b(?:no|without|not use any|n't use any)\s+commas?\b|commas? (?:are|is) not"
)
LOWER = re.compile(r"lower ?case|no capital letters")
UPPER = re.compile(r"all capital letters|all caps|in capital letters|uppercase letters only")
CAPITAL_WORDS = re.compile(rf"words? (?:with|in) all capital letters[^.]*?({MORE}|{LESS})\s+{N}")
QUOTE_ALL = re.compile(r"(?:wrap|enclose|put)[^.]*(?:double quotation marks|double quotes)")
ENDS = re.compile(rf"(?:end|finish)[^.]*with (?:this|the) (?:exact )?phrase[:\s]*[{Q}]?([^{Q}]+)")
POSTSCRIPT = re.compile(r"post\s?script starting with (P\.P\.S|P\.S\.?)", re.I)
PLACEHOLDERS = re.compile(rf"(?:{MORE}) {N} placeholders?")
BULLETS = re.compile(rf"exactly {N} (?:[a-z ]+ )?bullet points?")
HIGHLIGHTS = re.compile(rf"highlight[^.]*?(?:{MORE}) {N} sections?|{N} or more sections")
SECTIONS = re.compile(
    rf"{N} sections?[^.]*?(?:with|mark[^.]*with) (SECTION|PART|PARAGRAPH) X", re.I
)
PARAGRAPHS = re.compile(rf"exactly {N} paragraphs?")
WORDS = re.compile(rf"{REL} {N} words")
WORD_RANGE = re.compile(r"(\d+) to (\d+) words")
WORDS_PLUS = re.compile(r"(\d+)\+ words")
WORDS_OR_LESS = re.compile(r"(\d+) or less words|(\d+) words or less")
SENTENCES = re.compile(rf"{REL} {N} sentences")
INCLUDE = re.compile(
    rf"(?:include|including|use|mention)[^.]*?keywords?\s+((?:[{Q}][^{Q}]+[{Q}][,\s]*(?:and\s+)?)+)",
    re.I,
)
FORBID = re.compile(
    r"(?:do not|don't|avoid|without|not) (?:include|use|using|mention)[^.]*?(?:keywords?|words?)"
    rf"[:\s]+((?:[{Q}]?[\w-]+[{Q}]?(?:,\s*|\s+and\s+|\s+or\s+)?)+)",
    re.I,
)
FREQUENCY = re.compile(
    rf"(?:word|keyword)\s+[{Q}]?([\w-]+)[{Q}]?\s+(?:should|must)?\s*(?:appear|be used|occur)?\s*"
    rf"({MORE}|{LESS})\s+{N}\s+times",
    re.I,
)
LETTERS = re.compile(
    rf"letter\s+[{Q}]?([a-z])[{Q}]?\s+(?:should\s+)?(?:appear\s+)?({MORE}|{LESS})\s+{N}\s+times"
)
PARAGRAPH_START = re.compile(
    rf"(?:first|second|third|fourth|fifth|sixth|last)[^.]*paragraph must start with the word "
    rf"[{Q}]?(\w+)",
    re.I,
)
CHOICES = re.compile(r"'(My answer is [^']+)'")
ANSWER_LINE = re.compile(r"answer on the last line as '([^'<]*)<number>'")
CODE_BLOCK = re.compile(r"in (?:one|a) ```(\w+) code block")


def _n(text: str) -> int:
    return int(text) if text.isdigit() else NUMBERS[text.lower()]


def _compare(relation: str, limit: int) -> Callable[[int], bool]:
    r = relation.lower()
    if re.fullmatch(MORE, r):
        return (lambda n: n > limit) if r in ("more than", "over") else (lambda n: n >= limit)
    if re.fullmatch(LESS, r):
        strict = r in ("less than", "fewer than", "under")
        return (lambda n: n < limit) if strict else (lambda n: n <= limit)
    return lambda n: n == limit


def _occurrences(word: str) -> Callable[[str], int]:
    """How often `word` stands as a word in a text, in any case."""
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    return lambda text: len(pattern.findall(text.lower()))


def _substrings(part: str) -> Callable[[str], int]:
    """How often `part` (lower case) stands in a text, in any case, inside words too."""
    return lambda text: text.lower().count(part)


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])


def _paragraphs(text: str, divider: bool) -> int:
    parts = re.split(r"\s*\*\*\*\s*" if divider else r"\n\s*\n", text)
    return len([x for x in parts if x.strip()])


def _json(text: str) -> bool:
    body = re.sub(r"^```(?:json|JSON)?\s*|\s*```$", "", text.strip())
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _ends(phrase: str) -> Test:
    tail = phrase.strip().rstrip(".!?").lower()
    return lambda t: t.strip().strip('"').lower().rstrip(".!?").endswith(tail)


def _measured(count: Callable[[str], int], holds: Callable[[int], bool]) -> Test:
    return lambda t: holds(count(t))


def _placeholders(t: str) -> int:
    return len(re.findall(r"\[[^\]]+\]", t))


def _bullets(t: str) -> int:
    return len(re.findall(r"^\s*[*-] ", t, re.M))


def _highlights(t: str) -> int:
    return len(re.findall(r"\*[^\n*]+\*", t))


def _words(t: str) -> int:
    return len(WORD.findall(t))


def constraints(prompt: str) -> list[tuple[str, Test]]:
    """The tests of an answer that the prompt's words ask for (none when it asks for none)."""
    p, low = prompt, prompt.lower()
    out: list[tuple[str, Test]] = []

    def add(name: str, count: Callable[[str], int], holds: Callable[[int], bool]) -> None:
        out.append((name, _measured(count, holds)))

    def has(name: str, test: Test) -> None:
        out.append((name, test))

    if NO_COMMAS.search(low):
        has("no commas", lambda t: "," not in t)
    if LOWER.search(low):
        has("lowercase", lambda t: t == t.lower())
    elif UPPER.search(low) and not CAPITAL_WORDS.search(low):
        has("capitals", lambda t: t == t.upper())
    if QUOTE_ALL.search(low):
        has("quoted", lambda t: t.strip().startswith('"') and t.strip().endswith('"'))
    if m := ENDS.search(p):
        has("ends with", _ends(m.group(1)))
    if m := POSTSCRIPT.search(p):
        marker = m.group(1).lower()
        has("postscript", lambda t: marker in t.lower())
    if "<<" in p and ">>" in p:
        has("title", lambda t: re.search(r"<<[^\n]+>>", t) is not None)
    if m := PLACEHOLDERS.search(low):
        add("placeholders", _placeholders, _compare("at least", _n(m.group(1))))
    if m := BULLETS.search(low):
        add("bullets", _bullets, _compare("exactly", _n(m.group(1))))
    if m := HIGHLIGHTS.search(low):
        add("highlights", _highlights, _compare("at least", _n(m.group(1) or m.group(2))))
    elif re.search(r"italic text|highlighted section", low):
        add("highlights", _highlights, _compare("at least", 1))
    if m := SECTIONS.search(p):
        mark = m.group(2).upper()
        add(
            "sections",
            lambda t: len(re.findall(rf"{mark}\s+\d+", t)),
            _compare("exactly", _n(m.group(1))),
        )
    if "json" in low and re.search(r"wrap|format|block", low):
        has("json", _json)
    if re.search(r"two different responses|separated by 6 asterisk", low):
        has("two responses", lambda t: len([x for x in t.split("******") if x.strip()]) == 2)
    if m := PARAGRAPHS.search(low):
        divider = "***" in p or "markdown divider" in low
        add("paragraphs", lambda t: _paragraphs(t, divider), _compare("exactly", _n(m.group(1))))
    for m in WORDS.finditer(low):
        add("words", _words, _compare(m.group(1), _n(m.group(2))))
    if m := WORD_RANGE.search(low):
        a, b = int(m.group(1)), int(m.group(2))
        add("words", _words, lambda n: a <= n <= b)
    if m := WORDS_PLUS.search(low):
        add("words", _words, _compare("at least", int(m.group(1))))
    if m := WORDS_OR_LESS.search(low):
        add("words", _words, _compare("at most", int(m.group(1) or m.group(2))))
    for m in SENTENCES.finditer(low):
        add("sentences", _sentences, _compare(m.group(1), _n(m.group(2))))
    for m in INCLUDE.finditer(p):
        for word in QUOTED.findall(m.group(1)):
            add("keyword", _substrings(word.lower()), _compare("at least", 1))
    for m in FORBID.finditer(p):
        for word in re.findall(rf"[{Q}]?([\w-]+)[{Q}]?", m.group(1)):
            if word.lower() not in {"and", "or", "the", "in", "your", "response"}:
                add("forbidden", _occurrences(word.lower()), _compare("exactly", 0))
    for m in FREQUENCY.finditer(p):
        word, holds = m.group(1).lower(), _compare(m.group(2).lower(), _n(m.group(3).lower()))
        add("frequency", _occurrences(word), holds)
    for m in LETTERS.finditer(low):
        letter, holds = m.group(1), _compare(m.group(2), _n(m.group(3)))
        add("letters", _substrings(letter), holds)
    if m := CAPITAL_WORDS.search(low):
        capitals = _compare(m.group(1), _n(m.group(2)))
        add("capital words", lambda t: len(re.findall(r"\b[A-Z]{2,}\b", t)), capitals)
    if m := PARAGRAPH_START.search(p):
        first = m.group(1).lower()
        has(
            "paragraph start",
            lambda t: any(
                x.strip().lower().lstrip("\"'*#").startswith(first) for x in re.split(r"\n\s*\n", t)
            ),
        )
    if options := CHOICES.findall(p):
        has("constrained", lambda t: any(x in t for x in options))
    if m := ANSWER_LINE.search(p):
        line = re.compile(rf"{re.escape(m.group(1).strip())}\s*\$?-?[\d,]*\.?\d+")
        has(
            "answer line",
            lambda t: bool(t.strip()) and line.search(t.strip().splitlines()[-1]) is not None,
        )
    if m := CODE_BLOCK.search(p):
        fence = "```" + m.group(1).lower()
        has("code block", lambda t: fence in t.lower())
    return out


def met(tests: Sequence[tuple[str, Test]], answer: str) -> int:
    """How many of the tests an answer passes."""
    return sum(1 for _, test in tests if _safe(test, answer))


def choose(prompt: str, answers: Sequence[str]) -> int:
    """The answer that passes the most of the prompt's tests; ties go to the first."""
    tests = constraints(prompt)
    if not tests:
        return 0
    scores = [met(tests, a) for a in answers]
    return scores.index(max(scores))


def _safe(test: Test, text: str) -> bool:
    try:
        return bool(test(text))
    except (ValueError, IndexError, KeyError, re.error):
        return False
