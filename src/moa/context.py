"""The context guard: fit injected answers into the aggregator's context window, fairly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Counter = Callable[[str], int]
MARK = " [... trimmed to fit the context window]"


def estimate_tokens(text: str) -> int:
    """A cautious estimate where no tokenizer is known: about 3 characters a token."""
    return len(text) // 3 + 1


@dataclass(frozen=True)
class Trim:
    index: int
    tokens_before: int
    tokens_after: int


def _cut(text: str, target: int, count: Counter) -> str:
    if target <= count(MARK):
        return MARK.strip()
    tokens = max(count(text), 1)
    chars = int(len(text) * target / tokens)
    while chars > 0:
        head = text[:chars]
        space = head.rfind(" ")
        if space > chars * 0.8:
            head = head[:space]
        candidate = head.rstrip() + MARK
        if count(candidate) <= target:
            return candidate
        chars = int(chars * 0.9)
    return MARK.strip()


def fit(references: Sequence[str], budget: int, count: Counter) -> tuple[list[str], list[Trim]]:
    """Trim `references` so their tokens sum to at most `budget`.

    Fair share by water-filling: answers shorter than an equal share stay whole and the room
    they leave goes to the longer ones, which are cut at the end to the same size.
    """
    sizes = [count(r) for r in references]
    if sum(sizes) <= budget:
        return list(references), []
    allot = dict.fromkeys(range(len(sizes)), 0)
    remaining = max(budget, 0)
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for position, i in enumerate(order):
        share = remaining // (len(order) - position)
        allot[i] = min(sizes[i], share)
        remaining -= allot[i]
    fitted: list[str] = []
    trims: list[Trim] = []
    for i, text in enumerate(references):
        if allot[i] >= sizes[i]:
            fitted.append(text)
            continue
        cut = _cut(text, allot[i], count)
        fitted.append(cut)
        trims.append(Trim(i + 1, sizes[i], count(cut)))
    return fitted, trims
