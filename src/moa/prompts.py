"""How answers are shown to a model: the numbered references, put in the system message."""

from __future__ import annotations

from collections.abc import Sequence

from moa.types import Message

__all__ = ["add_system", "inject", "numbered"]


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
