"""A reasoning model's thinking, kept apart from its answer.

Providers send it apart (`reasoning_content`, `reasoning`), or inline as `<think>...</think>`
at the start of the text (DeepSeek-R1, QwQ, Qwen3 through plain templates). Either way it ends
up in `Completion.reasoning`: the final's goes out as `reasoning_content`, never as content,
and a reference's is never shown to the calls after it.

    split_thinking("<think>2+2</think>4")   -> ("2+2", "4")
    t = ThinkSplitter(); t.feed("<thi"); t.feed("nk>x</think>y"); t.flush()   # streamed
"""

from __future__ import annotations

__all__ = ["ThinkSplitter", "split_thinking"]

OPEN, CLOSE = "<think>", "</think>"


def split_thinking(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a text that may open with a `<think>` block; an unclosed block
    is all reasoning."""
    stripped = text.lstrip()
    if not stripped.startswith(OPEN):
        return None, text
    body = stripped[len(OPEN) :]
    thought, closed, rest = body.partition(CLOSE)
    return thought.strip(), rest.lstrip() if closed else ""


class ThinkSplitter:
    """Splits a streamed text into reasoning and answer as it arrives: `feed` returns the
    (reasoning, answer) pieces it can already tell apart, `flush` what is left."""

    def __init__(self) -> None:
        self._held = ""
        self._state = "start"  # start | thinking | answer

    def feed(self, piece: str) -> tuple[str, str]:
        if self._state == "answer":
            return "", piece
        self._held += piece
        if self._state == "start":
            head = self._held.lstrip()
            if not head or (len(head) < len(OPEN) and OPEN.startswith(head)):
                return "", ""  # it may still become <think>
            if not head.startswith(OPEN):
                self._state = "answer"
                out, self._held = self._held, ""
                return "", out
            self._state, self._held = "thinking", head[len(OPEN) :]
        thought, closed, rest = self._held.partition(CLOSE)
        if closed:
            self._state, self._held = "answer", ""
            return thought, rest.lstrip()
        keep = next((k for k in range(len(CLOSE) - 1, 0, -1) if thought.endswith(CLOSE[:k])), 0)
        out = thought[: len(thought) - keep]
        self._held = thought[len(thought) - keep :]
        return out, ""

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return (held, "") if self._state == "thinking" else ("", held)
