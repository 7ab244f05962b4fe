"""What the aggregator is shown besides the answers: the votes as evidence, a council's review,
and the rounds and note of Self-MoA-Seq. Every brief is built by `moa.prompts.briefed`, so the
call trims the answers to the aggregator's context window whatever else it is shown."""

from __future__ import annotations

from collections.abc import Sequence

from moa.prompts import Brief, briefed
from moa.strategies.tally import Tally
from moa.types import Message

__all__ = ["SEQ_NOTE", "aggregator_brief", "evidence_text", "review_note", "seq_rounds"]

SEQ_NOTE = (
    "Response 1 is the synthesis of earlier responses; the others are new. Refine the "
    "synthesis with what the new responses get right."
)
"""Added to the aggregate prompt in the later rounds of Self-MoA-Seq."""


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


def review_note(review: str) -> str:
    """The council's ranking, as the aggregator is told it."""
    return (
        "Peer review: the agents ranked these responses anonymously, best first: "
        f"{review}. Responses are numbered in that order."
    )


def aggregator_brief(
    messages: Sequence[Message],
    prompt: str,
    references: Sequence[str],
    *,
    evidence: Tally | None = None,
    review: str | None = None,
    seq: bool = False,
) -> Brief:
    """The aggregator's input: the prompt and the numbered answers, then the Seq note, the
    votes as evidence and the council's review, where the strategy adds them."""
    notes = [SEQ_NOTE] if seq else []
    if evidence is not None and (votes := evidence_text(evidence)):
        notes.append(votes)
    if review is not None:
        notes.append(review_note(review))
    return briefed(messages, prompt, references, notes)


def seq_rounds(count: int, window: int) -> list[list[int]]:
    """The answers (0-based) each round adds: `window` new ones a round, in order. Every round
    after the first also sees the running synthesis, so no round sees more than window + 1."""
    return [list(range(i, min(i + window, count))) for i in range(0, count, window)] or [[]]
