"""Judges: models asked to pick or rank answers. Their prompts, the agent that judges, and the
reading of what they answer (the LLM ranker, sparse selection and council reviewers, Universal
Self-Consistency). The calls themselves are the strategy's (`StepContext.call`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator

from moa.agent import Agent
from moa.prompts import Brief
from moa.providers import check_ref
from moa.types import Message

__all__ = [
    "RANK_PROMPT",
    "REVIEW_PROMPT",
    "JudgeRef",
    "borda",
    "judge_agent",
    "parse_choice",
    "parse_ranking",
    "parse_usc",
    "review_text",
    "usc_brief",
    "usc_prompt",
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


JudgeRef = Annotated[str | None, AfterValidator(lambda v: None if v is None else check_ref(v))]
"""A judge's model reference, checked like an agent's; None: the aggregator's model."""


def judge_agent(ref: str | None, max_tokens: int, aggregator: Agent) -> Agent:
    """A judge at temperature 0 with a small answer budget: `ref`, else the aggregator's model."""
    base = aggregator if ref is None else Agent(model=ref)
    update: dict[str, Any] = {"temperature": 0, "max_tokens": max_tokens, "seed": None, "n": 1}
    return base.model_copy(update=update)


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


def review_text(order: Sequence[int], reviewers: int) -> str:
    """The council's verdict as shown to the aggregator: 1-based numbers, best first."""
    ranking = " > ".join(str(i + 1) for i in order)
    noun = "reviewer" if reviewers == 1 else "reviewers"
    return f"{ranking} (by total score of {reviewers} {noun})"


# Universal Self-Consistency (arXiv 2311.17311) -------------------------------------------------
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


def usc_brief(question: str, responses: Sequence[str]) -> Brief:
    """The USC selector's input: one user message with the responses (which the caller may
    trim to the selector's context window)."""

    def layout(messages: Sequence[Message], refs: Sequence[str]) -> list[Message]:
        return [*messages, Message("user", usc_prompt(question, refs))]

    return Brief((), tuple(responses), layout)


def parse_usc(text: str, count: int) -> int | None:
    """The 0-based index a USC selector named, or None if it named none of 1..count."""
    found = re.search(r"most consistent response is\s*\**\s*response\s*(\d+)", text, re.I)
    found = found or re.search(r"\bresponse\s*(\d+)", text, re.I)
    if found and 1 <= int(found.group(1)) <= count:
        return int(found.group(1)) - 1
    return None
