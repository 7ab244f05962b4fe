"""Choosing one answer among several without a model call, by how much they agree: the answer
closest to all the others by word or character n-gram overlap (Agent Forest, arXiv 2402.05120;
Jain et al., arXiv 2307.06857). For free text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Choice", "most_agreed", "similarity"]

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
