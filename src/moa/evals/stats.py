"""The statistics every report uses: Wilson intervals for a share, the normal interval of a
mean, and the paired difference of two rules on the same items."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Paired", "mean_interval", "paired", "wilson"]


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default)."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean and its normal-approximation 95% interval."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Paired:
    """One rule against a baseline on the same items: the mean difference of their scores with
    its 95% interval, and the items won and lost."""

    mean: float
    low: float
    high: float
    won: int
    lost: int


def paired(ours: Sequence[bool], baseline: Sequence[bool]) -> Paired:
    """`ours` against `baseline`, item by item (the same items, in the same order)."""
    diffs = [int(a) - int(b) for a, b in zip(ours, baseline, strict=True)]
    mean, low, high = mean_interval(diffs)
    won = sum(1 for d in diffs if d > 0)
    return Paired(mean, low, high, won, sum(1 for d in diffs if d < 0))
