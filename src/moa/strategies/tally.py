"""The one tally of final answers, and what decides a vote before every answer is in.

- `tally`: the plurality vote, optionally weighted. A tie goes to the greedy candidate's answer
  if it is among the tied, else to the tied answer given first. With `mean_weight` as weights
  it is CISC (arXiv 2502.06233): each answer counts by the model's length-normalised
  probability of its own tokens.
- `decide_early`: whether a vote can stop its remaining sequences, because they cannot change
  the outcome any more, or (optionally) because a window of answers is unanimous (ESC, arXiv
  2401.10480).

Conventions: candidates are indexed as produced; `greedy` is the index of the greedy (or first)
candidate, the one a tie goes to. An answer of None (nothing read) casts no vote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Early", "Tally", "decide_early", "mean_weight", "tally"]


@dataclass(frozen=True)
class Tally:
    """The winning answer (None if no candidate had one), the candidate that carries it, each
    answer's candidates (most votes first), each answer's score, the answers tied for first,
    and how many candidates there were."""

    winner: str | None
    index: int | None
    groups: dict[str, list[int]]
    scores: dict[str, float]
    tied: tuple[str, ...]
    total: int

    @property
    def votes(self) -> int:
        """How many candidates gave the winner."""
        return len(self.groups[self.winner]) if self.winner is not None else 0


def tally(
    answers: Sequence[str | None] | Mapping[int, str | None],
    weights: Sequence[float] | Mapping[int, float] | None = None,
    *,
    greedy: int = 0,
) -> Tally:
    """Plurality vote. A tie goes to the greedy candidate's answer if it is among the tied, else
    to the tied answer given first. The carrier is the greedy candidate if it gave the winning
    answer, else the first candidate that did. `answers` may be a mapping from candidate index
    to answer (the finished ones of a run)."""
    items = dict(answers) if isinstance(answers, Mapping) else dict(enumerate(answers))
    w = dict(weights) if isinstance(weights, Mapping) else dict(enumerate(weights or ()))
    groups: dict[str, list[int]] = {}
    scores: dict[str, float] = {}
    for index in sorted(items):
        answer = items[index]
        if answer is None:
            continue
        groups.setdefault(answer, []).append(index)
        scores[answer] = scores.get(answer, 0.0) + w.get(index, 1.0)
    order = sorted(groups, key=lambda a: (-scores[a], groups[a][0]))
    ordered = {a: groups[a] for a in order}
    if not ordered:
        return Tally(None, None, {}, {}, (), len(items))
    best = scores[order[0]]
    tied = tuple(a for a in order if math.isclose(scores[a], best))
    greedy_answer = items.get(greedy)
    winner = greedy_answer if greedy_answer in tied else tied[0]
    assert winner is not None
    index = greedy if greedy_answer == winner else groups[winner][0]
    return Tally(winner, index, ordered, scores, tied, len(items))


def mean_weight(mean_logprob: float | None, *, temperature: float = 1.0) -> float:
    """A vote's CISC weight before normalisation, exp(mean log-probability / temperature), in
    (0, 1] (softmax over the candidates divides all by one sum, so the winner is the same). A
    sequence without log-probabilities weighs 1, as in a plain vote."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return 1.0 if mean_logprob is None else math.exp(min(mean_logprob, 0.0) / temperature)


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
    vote = tally(done, weights, greedy=greedy)
    if vote.winner is None:
        return None
    lead = vote.scores[vote.winner]
    runner_up = max((v for a, v in vote.scores.items() if a != vote.winner), default=0.0)
    reach = runner_up + remaining * max_weight  # the most any other answer can still get
    # at equality the tie rule decides: safe only when the greedy answer is in and is the leader
    tie_is_ours = greedy in done and done[greedy] == vote.winner
    if lead > reach or (tie_is_ours and math.isclose(lead, reach)):
        return vote.winner
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
    for `mean_weight`) would change the winner, ties included. 'window unanimous' (ESC), only
    with `window`: the latest complete window of `window` answers, counted in finishing order,
    agree; the answer is then the vote over all answers so far. None: keep going."""
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
            vote = tally(done, w, greedy=greedy)
            if vote.winner is not None:
                return Early(vote.winner, "window unanimous", len(done), remaining)
    return None
