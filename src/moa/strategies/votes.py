"""The pure parts of the strategies: prompts with numbered answers, votes, judges' output."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from moa.prompts import numbered
from moa.strategies.config import SEQ_NOTE, Strategy

__all__ = [
    "Tally",
    "aggregate_block",
    "borda",
    "evidence_text",
    "parse_choice",
    "parse_ranking",
    "review_text",
    "seq_rounds",
    "tally",
]


# prompts -------------------------------------------------------------------------------------
def review_text(order: Sequence[int], reviewers: int) -> str:
    """The council's verdict as shown to the aggregator: 1-based numbers, best first."""
    ranking = " > ".join(str(i + 1) for i in order)
    noun = "reviewer" if reviewers == 1 else "reviewers"
    return f"{ranking} (by total score of {reviewers} {noun})"


def aggregate_block(
    prompt: str,
    references: Sequence[str],
    strategy: Strategy,
    review: str | None = None,
    *,
    seq: bool = False,
) -> str:
    """The aggregator's system text: the prompt, the numbered answers, then the evidence the
    strategy adds (the Seq note, the votes, the council's ranking)."""
    parts = [numbered(prompt, references)]
    if seq:
        parts.append(SEQ_NOTE)
    if strategy.evidence == "votes" and (
        votes := evidence_text(tally(references, strategy.read()))
    ):
        parts.append(votes)
    if review is not None:
        parts.append(
            "Peer review: the agents ranked these responses anonymously, best first: "
            f"{review}. Responses are numbered in that order."
        )
    return "\n\n".join(parts)


# votes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tally:
    """The final answers of a set of responses: which won, and who gave what."""

    winner: str | None
    """The most common answer; ties go to the answer given first."""
    index: int | None
    """The first response (0-based) that gave the winner."""
    groups: dict[str, list[int]]
    """Each answer and the responses (0-based) that gave it, most votes first."""
    total: int

    @property
    def votes(self) -> int:
        return len(self.groups[self.winner]) if self.winner is not None else 0


def tally(texts: Sequence[str], read: Callable[[str | None], str | None]) -> Tally:
    """Majority vote on the answers read from `texts`; unreadable ones do not vote."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        value = read(text)
        if value is not None:
            groups.setdefault(value, []).append(i)
    ordered = dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0])))
    winner = next(iter(ordered), None)
    return Tally(winner, ordered[winner][0] if winner else None, ordered, len(texts))


def evidence_text(t: Tally) -> str:
    """How the answers agree, as the aggregator is shown it (votes as evidence); empty when
    no final answer could be read."""
    if not t.groups:
        return ""
    parts = []
    for value, members in t.groups.items():
        who = ", ".join(str(i + 1) for i in members)
        noun = "response" if len(members) == 1 else "responses"
        parts.append(f"{value} ({noun} {who}: {len(members)} of {t.total})")
    lines = ["Agreement between the responses: their final answers are " + "; ".join(parts) + "."]
    if len(t.groups) == 1 and t.votes == t.total:
        lines.append(
            f"All responses agree on {t.winner}; agreement between independent responses "
            "is strong evidence, but still check the reasoning."
        )
    else:
        lines.append(
            f"The most common answer is {t.winner}. Agreement between independent responses "
            "is evidence of correctness, but a majority can be wrong: check the reasoning."
        )
    return "\n".join(lines)


# judges' output ------------------------------------------------------------------------------
def parse_choice(text: str | None, n: int) -> int | None:
    """The 0-based index a ranker picked ('2', 'Response 2', '**2**'), None if unreadable."""
    for raw in re.findall(r"\d+", text or ""):
        k = int(raw)
        if 1 <= k <= n:
            return k - 1
    return None


def parse_ranking(text: str | None, n: int) -> list[int] | None:
    """A judge's ranking as 0-based indices, best first; unranked ones follow in order.
    None when no valid number is found."""
    seen: list[int] = []
    for raw in re.findall(r"\d+", text or ""):
        k = int(raw) - 1
        if 0 <= k < n and k not in seen:
            seen.append(k)
    if not seen:
        return None
    return seen + [i for i in range(n) if i not in seen]


def borda(rankings: Sequence[Sequence[int]], n: int) -> list[int]:
    """Indices ordered by total Borda score over the rankings (ties: lower index first)."""
    score = [0] * n
    for ranking in rankings:
        for place, i in enumerate(ranking):
            score[i] += n - 1 - place
    return sorted(range(n), key=lambda i: (-score[i], i))


# Self-MoA-Seq --------------------------------------------------------------------------------
def seq_rounds(count: int, window: int) -> list[list[int]]:
    """The answers (0-based) each round adds: `window` new ones a round, in order. Every round
    after the first also sees the running synthesis, so no round sees more than window + 1."""
    return [list(range(i, min(i + window, count))) for i in range(0, count, window)] or [[]]
