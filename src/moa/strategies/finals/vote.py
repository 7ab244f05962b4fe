"""final: vote — the most common final answer wins (ties to the greedy answer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moa.strategies.base import Answers, StepContext
from moa.strategies.finals.base import FinalRule
from moa.strategies.read import Reader
from moa.strategies.tally import decide_early, mean_weight, tally
from moa.trace import Call

__all__ = ["DecideEarly", "Vote"]


class DecideEarly(BaseModel):
    """Stop the answers still running as soon as they cannot change the vote's outcome.
    `window` adds the ESC rule: stop also once the last `window` answers to finish all give
    the same final answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    window: int | None = Field(default=None, ge=2)
    start: int | None = Field(default=None, ge=1)
    """Start only the first `start` answers; the others start only if those do not decide the
    vote. On a machine that decodes several answers at once barely faster than one, the
    greedy answer and one sample that agree decide a 4-answer vote (ties go to the greedy
    answer) at little more than the time of one answer."""


class Vote(FinalRule):
    """The answer whose final answer most answers give (read by the strategy's `answer`
    reader); ties go to the greedy (first) answer. Votes count equally, or by the model's
    confidence in each answer (CISC: the mean log-probability of its tokens, asked of the
    backend; a backend that gives none leaves every answer at weight 1)."""

    name = "vote"
    weights: Literal["equal", "confidence"] = "equal"
    weight_temperature: float = Field(default=1.0, gt=0)
    """CISC's softmax temperature: lower trusts confidence more."""
    unread: Literal["first", "synthesize"] = "first"
    """When no final answer can be read (prose): return the first answer, or let the
    aggregator synthesise them as in the paper."""
    decide_early: DecideEarly | None = None

    @property
    def logprobs(self) -> bool:
        return self.weights == "confidence"

    @property
    def start(self) -> int | None:
        return self.decide_early.start if self.decide_early else None

    def _weights(self, calls: Sequence[Call]) -> list[float] | None:
        if self.weights != "confidence":
            return None
        return [mean_weight(c.logprob, temperature=self.weight_temperature) for c in calls]

    def settled(self, ctx: StepContext, calls: Sequence[Call], read: Reader) -> str | None:
        rule = self.decide_early
        if rule is None:
            return None
        ended = [i for i, c in enumerate(calls) if c.text is not None or c.error is not None]
        ended.sort(key=lambda i: calls[i].started_s + calls[i].latency_s)  # finishing order
        done = {i: read(calls[i].text) if calls[i].ok else None for i in ended}
        weights = self._weights([calls[i] for i in ended])
        weighed = dict(zip(ended, weights, strict=True)) if weights is not None else None
        early = decide_early(done, total=len(calls), window=rule.window, weights=weighed)
        if early is None:
            return None
        if early.reason == "cannot change":
            left = early.remaining
            return f"the vote is decided ({early.answer}) whatever the {left} still running say"
        return f"the last {rule.window} answers agree on {early.answer}"

    async def answer(self, ctx: StepContext, answers: Answers, read: Reader) -> str | None:
        texts = answers.texts
        weights = self._weights(answers.calls)
        vote = tally([read(t) for t in texts], weights)
        if vote.winner is None or vote.index is None:
            if self.unread == "synthesize":
                ctx.note("vote: no answer could be read; synthesising")
                return None
            ctx.note("vote: no answer could be read")
            return texts[0]
        if weights is None:
            ctx.note(f"vote: {vote.winner} with {vote.votes} of {len(texts)}")
        else:
            score, total = vote.scores[vote.winner], sum(vote.scores.values())
            ctx.note(f"vote weighted by confidence: {vote.winner} with {score:.2f} of {total:.2f}")
        return texts[vote.index]
