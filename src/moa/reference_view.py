"""What the references (the calls that advise, not act) are shown of a conversation with tools.

    view, facts = reference_view(messages)

A strict, tool-free conversation: no `tool` turns, no `tool_calls` arrays (strict providers
reject them without the tools, and the references get no tools), turns of one role merged,
and ending on the user's turn. What the tools returned is not lost: each result becomes a
fact, written as a sentence about what the tool returned, shown in the system message under a
heading that says the tools were run by the application (`digest`). Never as an assistant
turn, and never in a call syntax: a weak model shown `[called tool: lookup(...)]` in its own
turns writes more such lines and invents their results. The caller trims long facts to each
model's own context window, like the other answers a call is shown (`moa.call`).
"""

from __future__ import annotations

from collections.abc import Sequence

from moa.types import Message, ToolCall

__all__ = ["DIGEST_HEADING", "describe_calls", "digest", "reference_view"]

DIGEST_HEADING = (
    "The application has already run some tools for this conversation; you cannot run tools "
    "yourself. What they returned, for your answer:"
)


def _fact(name: str, arguments: str, result: str) -> str:
    args = arguments.strip()
    given = f", given {args}," if args and args not in ("{}", "null") else ""
    return f'The tool "{name}"{given} returned: {result.strip() or "(nothing)"}'


def reference_view(messages: Sequence[Message]) -> tuple[tuple[Message, ...], tuple[str, ...]]:
    """(the tool-free conversation, the facts the tools returned, in order)."""
    if not any(m.role == "tool" or m.tool_calls for m in messages):
        return tuple(messages), ()
    calls = {c.id: c for m in messages for c in m.tool_calls}
    facts: list[str] = []
    kept: list[Message] = []
    for m in messages:
        if m.role == "tool":
            call = calls.get(m.tool_call_id or "")
            name, args = (call.name, call.arguments) if call else (m.name or "tool", "")
            facts.append(_fact(name, args, m.content))
            continue
        if m.role == "assistant" and not m.content.strip():
            continue  # a turn that only called tools
        turn = Message(m.role, m.content)
        if kept and kept[-1].role == turn.role and turn.role != "system":
            turn = Message(turn.role, f"{kept[-1].content}\n\n{turn.content}")
            kept[-1] = turn
        else:
            kept.append(turn)
    while kept and kept[-1].role == "assistant":  # the view ends on the user's turn
        kept.pop()
    return tuple(kept), tuple(facts)


def digest(facts: Sequence[str]) -> str:
    """The facts as the system message shows them."""
    return DIGEST_HEADING + "".join(f"\n- {f}" for f in facts)


def describe_calls(calls: Sequence[ToolCall]) -> str:
    """An answer that calls tools, as a later call is shown it: a proposal, in a sentence."""
    parts = [f'the tool "{c.name}" with {c.arguments.strip() or "{}"}' for c in calls]
    return "(Proposes calling " + " and ".join(parts) + ".)"
