"""How a recipe turns its layers' answers into one answer: the `strategy:` section.

    strategy:
      final: synthesize        # synthesize (the paper) | vote | rank
      evidence: votes          # show the aggregator how the answers agree
      seq: {window: 3}         # Self-MoA-Seq: aggregate in rounds, 3 new answers a round
      select: {top_k: 2}       # sparse MoA: a judge forwards the best 2 answers of a layer
      council: {}              # agents rank each other's anonymised answers first
      early_stop: {agree: 1.0, skip_aggregator: true}
      decide_early: {}         # final: vote/auto: stop answers that can no longer change the vote
      answer: number           # how final answers are read for votes and agreement

This module holds the typed configuration; `moa.strategies.steps` runs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from moa.extract import extractor
from moa.providers import check_ref

__all__ = [
    "RANK_PROMPT",
    "REVIEW_PROMPT",
    "SEQ_NOTE",
    "ByKind",
    "Council",
    "DecideEarly",
    "EarlyStop",
    "Rule",
    "Select",
    "Seq",
    "Strategy",
]

RANK_PROMPT = (
    "You have been provided with a set of responses from various models to the latest user "
    "query. Your task is to pick the single best response: the most accurate, helpful and "
    "complete one. Reply with its number only, for example '2'.\n\nResponses from models:"
)
"""The ranker's prompt (the paper's LLM-ranker baseline): the answers follow, numbered."""

REVIEW_PROMPT = (
    "You have been provided with anonymised responses to the latest user query. Review them "
    "critically and rank them from best to worst by accuracy and helpfulness. Reply with the "
    "numbers only, best first, separated by '>', for example '2 > 3 > 1'.\n\nResponses:"
)
"""The prompt of a sparse-selection judge and of a council reviewer."""

SEQ_NOTE = (
    "Response 1 is the synthesis of earlier responses; the others are new. Refine the "
    "synthesis with what the new responses get right."
)
"""Added to the aggregate prompt in the later rounds of Self-MoA-Seq."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Judged(_Strict):
    judge: str | None = None
    """The judge's model; None: the aggregator's."""
    max_tokens: int = Field(default=32, gt=0)

    @field_validator("judge")
    @classmethod
    def _valid_judge(cls, value: str | None) -> str | None:
        return None if value is None else check_ref(value)


class Select(_Judged):
    """Sparse selection: a judge ranks a layer's answers; only the top `top_k` go on."""

    top_k: int = Field(default=2, ge=1)


class Council(_Strict):
    """LLM-Council review: each agent of the layer ranks the anonymised answers (its own among
    them); the answers go on in the order of their total (Borda) score, the review shown to
    the aggregator. `top_k` keeps only the best ones."""

    top_k: int | None = Field(default=None, ge=1)
    max_tokens: int = Field(default=32, gt=0)


class Seq(_Strict):
    """Self-MoA-Seq: aggregate `window` new answers a round, with the running synthesis."""

    window: int = Field(default=3, ge=1)


class EarlyStop(_Strict):
    """Stop adding layers once at least `agree` of a layer's answers give the same final
    answer (and there are `min_answers`). `skip_aggregator` also skips the aggregator then,
    returning the agreed answer."""

    agree: float = Field(default=1.0, gt=0, le=1)
    min_answers: int = Field(default=2, ge=1)
    skip_aggregator: bool = False


class DecideEarly(_Strict):
    """final: vote, in the last layer: stop the answers still running as soon as they cannot
    change the vote's outcome (final: auto: once the answers that finished read as numbers,
    whose rule is then the vote). `window` adds the ESC rule: stop also once the last `window`
    answers to finish all give the same final answer."""

    window: int | None = Field(default=None, ge=2)
    start: int | None = Field(default=None, ge=1)
    """Start only the first `start` answers; the others start only if those do not decide the
    vote. On a machine that decodes several answers at once barely faster than one, the
    greedy answer and one sample that agree decide a 4-answer vote (ties go to the greedy
    answer) at little more than the time of one answer."""


Rule = Literal["vote", "rank", "synthesize", "agreement", "usc", "behaviour", "first"]
"""How one answer is made of several: a vote on final answers, the LLM ranker, the paper's
synthesis, the answer most in agreement with the others (no call), Universal Self-Consistency
(a model selects), code chosen by its behaviour in the sandbox, or the first (greedy) answer."""


class ByKind(_Strict):
    """final: auto: the rule for each kind of answer, read from the answers themselves
    (`moa.selection.answer_kind`)."""

    number: Rule = "vote"
    code: Rule = "behaviour"
    prose: Rule = "agreement"


class Strategy(_Strict):
    """The `strategy:` section of a recipe. Every part is optional; the default is the paper's
    MoA."""

    final: Literal["synthesize", "vote", "rank", "select", "auto"] = "synthesize"
    select_by: Literal["agreement", "usc", "behaviour"] = "agreement"
    """final: select: how the one answer is picked."""
    by_kind: ByKind = Field(default_factory=ByKind)
    """final: auto: the rule for numbers, code and prose."""
    weights: Literal["equal", "confidence"] = "equal"
    """Votes count equally, or by the model's confidence in each answer (CISC: the mean
    log-probability of its tokens, asked of the backend); a backend that gives no
    log-probabilities leaves every answer at weight 1."""
    weight_temperature: float = Field(default=1.0, gt=0)
    """CISC's softmax temperature: lower trusts confidence more."""
    evidence: Literal["none", "votes"] = "none"
    seq: Seq | None = None
    select: Select | None = None
    council: Council | None = None
    early_stop: EarlyStop | None = None
    decide_early: DecideEarly | None = None
    drop_unanswered: bool = False
    """Drop answers with no readable final answer (keeping at least one)."""
    unread: Literal["first", "synthesize"] = "first"
    """final: vote, when no final answer can be read (prose): return the first answer, or let
    the aggregator synthesise them as in the paper."""
    answer: Literal["number", "strict", "text"] = "number"
    """How a final answer is read: `number` (an answer line, else the last number), `strict`
    (an explicit answer line or \\boxed{} only: prose gives no vote), `text` (the last line)."""
    answer_pattern: str | None = None
    """A regex whose first group is the final answer, instead of the `answer` reader."""
    rank_prompt: str = RANK_PROMPT
    review_prompt: str = REVIEW_PROMPT
    judge: str | None = None
    """The ranker's model (final: rank); None: the aggregator's."""
    judge_max_tokens: int = Field(default=16, gt=0)
    """The ranker's answer budget: it is asked for a number only."""

    @field_validator("judge")
    @classmethod
    def _valid_judge(cls, value: str | None) -> str | None:
        return None if value is None else check_ref(value)

    @field_validator("answer_pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Strategy:
        if self.unread == "synthesize" and self.final != "vote":
            raise ValueError(f"unread: synthesize is for final: vote, not {self.final}")
        early = self.decide_early is not None
        if early and self.final not in ("vote", "auto"):
            raise ValueError(f"decide_early is for final: vote or auto, not {self.final}")
        if early and self.final == "auto" and self.by_kind.number != "vote":
            raise ValueError(
                f"decide_early with final: auto needs by_kind.number: vote, not "
                f"{self.by_kind.number}"
            )
        if self.final != "synthesize" and self.seq is not None:
            raise ValueError(
                f"seq aggregates in rounds; it needs final: synthesize, not {self.final}"
            )
        return self

    def read(self) -> Callable[[str | None], str | None]:
        """The function that reads a final answer out of a response."""
        return extractor(self.answer, self.answer_pattern)

    def judges(self) -> list[str]:
        """The judge models the strategy names (None in a field: the aggregator judges)."""
        return [r for r in (self.judge, self.select.judge if self.select else None) if r]
