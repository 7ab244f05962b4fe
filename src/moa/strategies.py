"""How a recipe turns its layers' answers into one answer: the `strategy:` section.

    strategy:
      final: synthesize        # synthesize (the paper) | vote | rank
      evidence: votes          # show the aggregator how the answers agree
      seq: {window: 3}         # Self-MoA-Seq: aggregate in rounds, 3 new answers a round
      select: {top_k: 2}       # sparse MoA: a judge forwards the best 2 answers of a layer
      council: {}              # agents rank each other's anonymised answers first
      early_stop: {agree: 1.0, skip_aggregator: true}
      answer: number           # how final answers are read for votes and agreement

This module holds the typed configuration and the pure parts (prompts, votes, parsing); the
engine's `_layers_then_aggregate` runs them. It must not import the engine or the recipe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from moa.extract import extractor

__all__ = [
    "RANK_PROMPT",
    "REVIEW_PROMPT",
    "SEQ_NOTE",
    "Council",
    "EarlyStop",
    "Select",
    "Seq",
    "Strategy",
    "Tally",
    "aggregate_block",
    "agreement",
    "borda",
    "evidence_text",
    "numbered",
    "parse_choice",
    "parse_ranking",
    "review_text",
    "seq_rounds",
    "tally",
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


def _check_ref(ref: str) -> str:
    # the recipe's validator knows the providers a recipe defines; imported late: no cycle
    from moa.errors import ModelRefError
    from moa.providers import parse_ref
    from moa.recipe import _custom_providers

    try:
        parse_ref(ref, _custom_providers.get({}))
    except ModelRefError as exc:
        raise ValueError(str(exc)) from None
    return ref


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Judged(_Strict):
    judge: str | None = None
    """The judge's model; None: the aggregator's."""
    max_tokens: int = Field(default=32, gt=0)

    @field_validator("judge")
    @classmethod
    def _valid_judge(cls, value: str | None) -> str | None:
        return None if value is None else _check_ref(value)


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


class Strategy(_Strict):
    """The `strategy:` section of a recipe. Every part is optional; the default is the paper's
    MoA."""

    final: Literal["synthesize", "vote", "rank"] = "synthesize"
    evidence: Literal["none", "votes"] = "none"
    seq: Seq | None = None
    select: Select | None = None
    council: Council | None = None
    early_stop: EarlyStop | None = None
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
        return None if value is None else _check_ref(value)

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
        if self.final != "synthesize" and self.seq is not None:
            raise ValueError(
                f"seq aggregates in rounds; it needs final: synthesize, not {self.final}"
            )
        return self

    @property
    def is_default(self) -> bool:
        return self == Strategy()

    def read(self) -> Callable[[str | None], str | None]:
        """The function that reads a final answer out of a response."""
        return extractor(self.answer, self.answer_pattern)

    def models(self) -> list[str]:
        """Model references the strategy calls besides the recipe's agents."""
        refs = [self.judge, self.select.judge if self.select else None]
        return [r for r in refs if r]


# prompts -------------------------------------------------------------------------------------
def numbered(prompt: str, references: Sequence[str]) -> str:
    """The prompt with the numbered answers, as the paper's code writes them: `{responses}` in
    the prompt is replaced by them, else they follow it."""
    block = "".join(f"\n{i}. {text}" for i, text in enumerate(references, 1))
    if "{responses}" in prompt:
        return prompt.replace("{responses}", block.lstrip("\n"))
    return prompt + block


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


def agreement(texts: Sequence[str], read: Callable[[str | None], str | None]) -> float:
    """The share of responses that give the most common answer (0 with no answers)."""
    t = tally(texts, read)
    return t.votes / t.total if t.total else 0.0


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


def dump(strategy: Strategy) -> dict[str, Any]:
    """The strategy as recipe data, without the defaults."""
    return strategy.model_dump(exclude_defaults=True)
