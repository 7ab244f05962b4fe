"""final: synthesize — the paper's: the aggregator writes the answer from all of them."""

from __future__ import annotations

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import FinalRule
from moa.strategies.read import Reader

__all__ = ["Synthesize"]


class Synthesize(FinalRule):
    """The aggregator synthesises the answers (Aggregate-and-Synthesize): no choice here."""

    name = "synthesize"

    @property
    def chooses(self) -> bool:
        return False

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        return None
