"""What a call is shown: the conversation, and other models' answers laid out in it.

    brief = briefed(messages, AGGREGATE_PROMPT, answers, notes=["Agreement: ..."])
    brief.render()                 # the messages, answers numbered in the system message
    brief.render(trimmed)          # the same with the answers cut to fit a context window

Every call that shows a model other answers (a later layer's proposers, the aggregator, a
judge, a council reviewer, a Self-MoA-Seq round) is given a `Brief`, so the caller can trim the
answers to the model's context window before it lays them out (`moa.call`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from moa.reference_view import digest
from moa.types import Message

__all__ = ["Brief", "Layout", "add_system", "briefed", "inject", "numbered"]


def numbered(prompt: str, references: Sequence[str]) -> str:
    """The prompt with the numbered answers, as the paper's code writes them: `{responses}` in
    the prompt is replaced by them, else they follow it."""
    block = "".join(f"\n{i}. {text}" for i, text in enumerate(references, 1))
    if "{responses}" in prompt:
        return prompt.replace("{responses}", block.lstrip("\n"))
    return prompt + block


def add_system(messages: Sequence[Message], text: str, *, first: bool = False) -> list[Message]:
    """Put `text` in the system message: appended to an existing one (prepended if `first`)."""
    if messages and messages[0].role == "system":
        old = messages[0].content
        joined = f"{text}\n\n{old}" if first else f"{old}\n\n{text}"
        return [Message("system", joined), *messages[1:]]
    return [Message("system", text), *messages]


def inject(messages: Sequence[Message], prompt: str, references: Sequence[str]) -> list[Message]:
    """The conversation with the previous layer's answers, exactly as the paper injects them."""
    return add_system(messages, numbered(prompt, references))


Layout = Callable[[Sequence[Message], Sequence[str]], list[Message]]
"""layout(messages, references): the messages a model is sent."""


@dataclass(frozen=True)
class Brief:
    """One call's input: the conversation, the answers it is shown, and how they are laid out
    in it. `references` are what the caller may trim to fit; everything else is kept whole."""

    messages: Sequence[Message]
    references: Sequence[str] = ()
    layout: Layout | None = None
    """None: the messages as they are (a call shown no answers)."""
    facts: Sequence[str] = ()
    """What tools returned, for a call that sees the conversation without its tool turns
    (`moa.reference_view`): shown after the references, trimmed with them."""

    def render(
        self, references: Sequence[str] | None = None, facts: Sequence[str] | None = None
    ) -> list[Message]:
        """The messages to send, with `references` and `facts` (trimmed ones) in place of the
        brief's own."""
        refs = self.references if references is None else references
        shown = list(self.messages) if self.layout is None else self.layout(self.messages, refs)
        facts = self.facts if facts is None else facts
        return add_system(shown, digest(facts)) if facts else shown

    def with_messages(self, messages: Sequence[Message]) -> Brief:
        return replace(self, messages=tuple(messages))

    def with_facts(self, facts: Sequence[str]) -> Brief:
        return replace(self, facts=tuple(facts))


def briefed(
    messages: Sequence[Message],
    prompt: str,
    references: Sequence[str],
    notes: Sequence[str] = (),
) -> Brief:
    """The paper's layout: the prompt and the numbered answers in the system message, then any
    notes (the votes as evidence, a council's review, the Self-MoA-Seq note). With no answers
    and no notes, the conversation as it is."""
    extra = tuple(notes)
    if not references and not extra:
        return Brief(tuple(messages))

    def layout(msgs: Sequence[Message], refs: Sequence[str]) -> list[Message]:
        return add_system(msgs, "\n\n".join([numbered(prompt, refs), *extra]))

    return Brief(tuple(messages), tuple(references), layout)
