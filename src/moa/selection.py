"""Choosing one answer among several without another model call: pure functions.

- `most_agreed`: the answer closest to all the others by word or character n-gram overlap
  (Agent Forest, arXiv 2402.05120; Jain et al., arXiv 2307.06857). For free text.
- `plurality`: the answer most candidates give, optionally weighted; ties go to the greedy
  candidate's answer. With `confidence_weight` as weights it is CISC (arXiv 2502.06233): each
  answer counts by the model's length-normalised probability of its own tokens.
- `decide_early`: whether a vote can stop its remaining sequences, because they cannot change the
  outcome any more, or (optionally) because a window of answers is unanimous (ESC, arXiv
  2401.10480).
- `answer_kind`: whether a set of answers is numbers, code or prose, so that each kind can be
  chosen by its own rule.
- `usc_prompt` / `parse_usc`: the prompt and the reading of Universal Self-Consistency (arXiv
  2311.17311), for the variant that asks a model to select (the call itself is the caller's).

Code is chosen by behaviour in `moa.behaviour` (it runs the candidates in the sandbox).

Conventions: candidates are indexed as produced; `greedy` is the index of the greedy (or first)
candidate, the one a tie goes to. An answer of None (nothing extracted) casts no vote.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from moa.extract import extract_strict

__all__ = [
    "Choice",
    "Early",
    "Vote",
    "answer_kind",
    "cisc_weights",
    "confidence",
    "confidence_weight",
    "decide_early",
    "mean_weight",
    "most_agreed",
    "parse_usc",
    "plurality",
    "similarity",
    "usc_prompt",
]

Unit = Literal["word", "char"]


# agreement ----------------------------------------------------------------------------------
def _grams(text: str, n: int, unit: Unit) -> Counter[tuple[str, ...]]:
    items: Sequence[str]
    if unit == "word":
        items = re.findall(r"\w+|[^\w\s]", text.lower())
    else:
        items = " ".join(text.lower().split())
    return Counter(tuple(items[i : i + n]) for i in range(len(items) - n + 1))


def similarity(a: str, b: str, *, n: int = 2, unit: Unit = "word") -> float:
    """Overlap of two texts in [0, 1]: the F1 of their n-gram multisets, averaged over the
    orders 1..n (words, or characters with whitespace collapsed)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    scores = []
    for order in range(1, n + 1):
        ga, gb = _grams(a, order, unit), _grams(b, order, unit)
        total = sum(ga.values()) + sum(gb.values())
        scores.append(2 * sum((ga & gb).values()) / total if total else 0.0)
    return sum(scores) / len(scores)


@dataclass(frozen=True)
class Choice:
    """The chosen candidate, each candidate's score, and how it was chosen."""

    index: int
    scores: tuple[float, ...]
    reason: str


def most_agreed(
    texts: Sequence[str], *, n: int = 2, unit: Unit = "word", greedy: int = 0
) -> Choice:
    """The text with the highest mean similarity to the others; ties go to `greedy`, then to
    the earliest. Empty texts score 0 and are chosen only if all are empty."""
    if not texts:
        raise ValueError("no candidates to choose from")
    count = len(texts)
    if count == 1:
        return Choice(0, (1.0,), "only candidate")
    scores = []
    for i, a in enumerate(texts):
        others = [similarity(a, b, n=n, unit=unit) for j, b in enumerate(texts) if j != i]
        scores.append(sum(others) / len(others) if a.strip() else 0.0)
    best = max(scores)
    tied = [i for i, s in enumerate(scores) if math.isclose(s, best, abs_tol=1e-12)]
    index = greedy if greedy in tied else tied[0]
    return Choice(index, tuple(scores), f"most {unit} {n}-gram agreement ({best:.3f})")


# answer kinds ---------------------------------------------------------------------------------
_CODE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n|^\s*(?:async\s+)?def\s+\w+\s*\(", re.M)


def answer_kind(texts: Sequence[str]) -> Literal["number", "code", "prose"]:
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


# USC ------------------------------------------------------------------------------------------
def usc_prompt(question: str, responses: Sequence[str]) -> str:
    """Universal Self-Consistency's selection prompt (the paper's wording, lightly adapted)."""
    parts = [f"I have generated the following responses to the question: {question}", ""]
    for i, text in enumerate(responses, 1):
        parts += [f"Response {i}: {text}", ""]
    parts.append(
        "Evaluate these responses. Select the most consistent response based on majority "
        'consensus. Start your answer with "The most consistent response is Response X" '
        "(without quotes)."
    )
    return "\n".join(parts)


def parse_usc(text: str, count: int) -> int | None:
    """The 0-based index a USC selector named, or None if it named none of 1..count."""
    found = re.search(r"most consistent response is\s*\**\s*response\s*(\d+)", text, re.I)
    found = found or re.search(r"\bresponse\s*(\d+)", text, re.I)
    if found and 1 <= int(found.group(1)) <= count:
        return int(found.group(1)) - 1
    return None


# weighted votes -------------------------------------------------------------------------------
def confidence(logprobs: Sequence[float] | None) -> float | None:
    """The length-normalised log-probability of a sequence: the mean of its token logprobs."""
    if not logprobs:
        return None
    return sum(logprobs) / len(logprobs)


def confidence_weight(logprobs: Sequence[float] | None, *, temperature: float = 1.0) -> float:
    """exp(confidence / temperature), in (0, 1]: a vote's CISC weight before normalisation
    (softmax over the candidates divides all by one sum, so the winner is the same). A sequence
    without logprobs weighs 1, as in a plain vote."""
    return mean_weight(confidence(logprobs), temperature=temperature)


def mean_weight(mean_logprob: float | None, *, temperature: float = 1.0) -> float:
    """`confidence_weight` from the mean log-probability itself (what a trace keeps)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return 1.0 if mean_logprob is None else math.exp(min(mean_logprob, 0.0) / temperature)


def cisc_weights(
    logprobs: Sequence[Sequence[float] | None], *, temperature: float = 1.0
) -> list[float] | None:
    """CISC's softmax-normalised weights of the candidates (they sum to 1), or None when any
    candidate has no logprobs (then a plain vote is the honest fallback)."""
    if not logprobs or any(not lp for lp in logprobs):
        return None
    raw = [confidence_weight(lp, temperature=temperature) for lp in logprobs]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True)
class Vote:
    """The winning answer (None if no candidate had one), the candidate that carries it, the
    tally by answer, and the answers that tied for first."""

    answer: str | None
    index: int | None
    tally: dict[str, float]
    tied: tuple[str, ...]


def plurality(
    answers: Sequence[str | None] | Mapping[int, str | None],
    weights: Sequence[float] | Mapping[int, float] | None = None,
    *,
    greedy: int = 0,
) -> Vote:
    """Plurality vote. A tie goes to the greedy candidate's answer if it is among the tied,
    else to the tied answer given first. The carrier is the greedy candidate if it gave the
    winning answer, else the first candidate that did. `answers` may be a mapping from
    candidate index to answer (the finished ones of a run)."""
    items = dict(answers) if isinstance(answers, Mapping) else dict(enumerate(answers))
    w = dict(weights) if isinstance(weights, Mapping) else dict(enumerate(weights or ()))
    tally: dict[str, float] = {}
    first: dict[str, int] = {}
    for index in sorted(items):
        answer = items[index]
        if answer is None:
            continue
        tally[answer] = tally.get(answer, 0.0) + w.get(index, 1.0)
        first.setdefault(answer, index)
    if not tally:
        return Vote(None, None, {}, ())
    best = max(tally.values())
    tied = tuple(a for a in sorted(tally, key=first.__getitem__) if math.isclose(tally[a], best))
    greedy_answer = items.get(greedy)
    winner = greedy_answer if greedy_answer in tied else tied[0]
    assert winner is not None
    index = greedy if greedy_answer == winner else first[winner]
    return Vote(winner, index, tally, tied)


# early decision -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Early:
    """A vote decided before every sequence finished: the answer, why ('cannot change' or
    'window unanimous'), how many answers were in, and how many sequences can stop."""

    answer: str
    reason: str
    seen: int
    remaining: int


def _cannot_change(
    done: Mapping[int, str | None],
    weights: Mapping[int, float],
    remaining: int,
    max_weight: float,
    greedy: int,
) -> str | None:
    vote = plurality(done, weights, greedy=greedy)
    if vote.answer is None:
        return None
    lead = vote.tally[vote.answer]
    runner_up = max((v for a, v in vote.tally.items() if a != vote.answer), default=0.0)
    reach = runner_up + remaining * max_weight  # the most any other answer can still get
    # at equality the tie rule decides: safe only when the greedy answer is in and is the leader
    tie_is_ours = greedy in done and done[greedy] == vote.answer
    if lead > reach or (tie_is_ours and math.isclose(lead, reach)):
        return vote.answer
    return None


def decide_early(
    done: Mapping[int, str | None],
    *,
    total: int,
    greedy: int = 0,
    weights: Mapping[int, float] | None = None,
    max_weight: float = 1.0,
    window: int | None = None,
) -> Early | None:
    """Whether a vote over `total` sequences is decided, given the answers of those `done`
    (candidate index -> answer, in the order they finished). 'cannot change': no answers the
    remaining sequences could give (each weighing at most `max_weight`; 1 for plain votes and
    for `confidence_weight`) would change the winner, ties included. 'window unanimous' (ESC),
    only with `window`: the latest complete window of `window` answers, counted in finishing
    order, agree; the answer is then the vote over all answers so far. None: keep going."""
    remaining = total - len(done)
    if remaining <= 0:
        return None
    w = weights or {}
    answer = _cannot_change(done, w, remaining, max_weight, greedy)
    if answer is not None:
        return Early(answer, "cannot change", len(done), remaining)
    if window is not None and window > 0 and len(done) % window == 0:
        last = list(done.values())[-window:]
        if last[0] is not None and all(a == last[0] for a in last):
            vote = plurality(done, w, greedy=greedy)
            if vote.answer is not None:
                return Early(vote.answer, "window unanimous", len(done), remaining)
    return None
