"""An acting call's answer, checked against its request's `Act`: the one place that reads tool
calls out of text and holds every answer to the tool-call and JSON contracts.

    done = checked(completion, act)       # raises BadAnswer, or returns the answer as it is meant
    repair(messages, error)               # the messages of the one retry that shows the mistake

Small models write a call as JSON in their text (fenced, bare, in `<tool_call>` tags, one per
line) instead of the provider's structured `tool_calls`; `read_calls` finds such JSON when it
looks like a call (`name` with `arguments` or `parameters`, or OpenAI's own shape). A call must
name a declared tool and carry a JSON object of arguments valid against the tool's schema;
anything that looks like a call but is not a valid one is a `BadAnswer`, never passed off as
text. Ids are made where the model gave none (or repeated one), unique within the answer.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from moa.errors import BadAnswer, BadResponse
from moa.reasoning import split_thinking
from moa.schema import problems
from moa.types import Act, Completion, Message, ToolCall

__all__ = ["checked", "echoes", "finished", "json_text", "new_call_id", "read_calls", "repair"]

MAX_SCAN = 65536
"""Longer texts are not searched for calls (the search tries each brace)."""
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_TAGS = re.compile(r"</?tool_call>|</?function_call>")


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _objects(text: str) -> list[Any]:
    """Every JSON object or array that appears whole in `text`, outermost only."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    at = 0
    while at < len(text):
        start = min((i for i in (text.find("{", at), text.find("[", at)) if i != -1), default=-1)
        if start == -1:
            break
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            at = start + 1
            continue
        found.append(value)
        at = end
    return found


def _looks_like_call(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("function"), dict):
        return "name" in value["function"]
    return "name" in value and ("arguments" in value or "parameters" in value)


def _flatten(value: Any) -> list[dict[str, Any]] | None:
    """The call objects `value` holds (a call, a list of calls, {tool_calls: [...]}), or None
    if it is not call-shaped."""
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    if isinstance(value, list):
        return value if value and all(_looks_like_call(v) for v in value) else None
    return [value] if _looks_like_call(value) else None


def _arguments(raw: Any, name: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            problem = f"the arguments of the call of {name!r} are not valid JSON: {exc}"
            raise BadAnswer(problem) from None
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        raise BadAnswer(f"the arguments of the call of {name!r} must be a JSON object, not {kind}")
    return raw


def read_calls(text: str) -> list[tuple[Any, Any]] | None:
    """(name, raw arguments) of each call written in `text`; None when it holds none. Prose
    around the calls is not part of them."""
    if len(text) > MAX_SCAN or ("{" not in text and "[" not in text):
        return None
    blocks = [m.group(1) for m in _FENCE.finditer(text)] or [_TAGS.sub("\n", text)]
    calls: list[tuple[Any, Any]] = []
    for block in blocks:
        for value in _objects(block):
            for call in _flatten(value) or ():
                function = call["function"] if isinstance(call.get("function"), dict) else call
                args = function.get("arguments", function.get("parameters"))
                calls.append((function.get("name"), args))
    return calls or None


def _check_call(name: Any, raw: Any, act: Act) -> tuple[str, str]:
    """The call's name and canonical arguments text, or BadAnswer saying what is wrong."""
    known = ", ".join(t.name for t in act.tools)
    if not isinstance(name, str) or not name.strip():
        raise BadAnswer(f"a tool call has an empty name (declared tools: {known})")
    tool = act.tool(name)
    if tool is None:
        raise BadAnswer(f"the model called {name!r}, which is not a declared tool ({known})")
    forced = act.tool_choice not in ("auto", "required", "none")
    if forced and name != act.tool_choice:
        raise BadAnswer(f"tool_choice requires a call of {act.tool_choice!r}, not {name!r}")
    args = _arguments(raw, name)
    wrong = problems(args, tool.parameters)
    if wrong:
        raise BadAnswer(f"the arguments of {name!r} do not fit its schema: {'; '.join(wrong)}")
    return name, json.dumps(args, ensure_ascii=False)


def _calls(done: Completion, act: Act) -> tuple[ToolCall, ...]:
    """The answer's calls, checked, each with a unique id."""
    if done.tool_calls:
        raw: list[tuple[Any, Any, str]] = [(c.name, c.arguments, c.id) for c in done.tool_calls]
    else:
        raw = [(n, a, "") for n, a in read_calls(done.text) or ()]
    out: list[ToolCall] = []
    seen: set[str] = set()
    for name, args, cid in raw:
        name, arguments = _check_call(name, args, act)
        if not cid or cid in seen:
            cid = new_call_id()
        seen.add(cid)
        out.append(ToolCall(cid, name, arguments))
    if len(out) > 1 and act.parallel_tool_calls is False:
        raise BadAnswer(f"parallel_tool_calls is false, but the model made {len(out)} calls")
    return tuple(out)


def _writes_a_call(text: str, act: Act) -> bool:
    """Whether `text` is a call of one of the act's tools written out: not an answer where
    no call is allowed (a loop stopped, or tool_choice none)."""
    return any(act.tool(str(name)) is not None for name, _ in read_calls(text) or ())


def json_text(text: str) -> str:
    """The JSON of an answer written as JSON, without a fence around it."""
    stripped = text.strip()
    fenced = _FENCE.fullmatch(stripped)
    return fenced.group(1).strip() if fenced else stripped


def _structured(done: Completion, act: Act) -> Completion:
    form = act.response_format
    assert form is not None
    body = json_text(done.text)
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise BadAnswer(f"the answer is not valid JSON ({exc})", text=done.text) from None
    if form.type == "json_object" and not isinstance(value, dict):
        raise BadAnswer("the answer must be a JSON object", text=done.text)
    if form.schema is not None:
        wrong = problems(value, form.schema)
        if wrong:
            raise BadAnswer(
                f"the answer does not fit the schema {form.name!r}: {'; '.join(wrong)}",
                text=done.text,
            )
    return replace(done, text=body)


def checked(done: Completion, act: Act) -> Completion:
    """`done` as the contract means it: tool calls (structured, or read from its text) with
    `finish_reason` 'tool_calls' and no text, or text (JSON valid against the response format
    where there is one). BadAnswer for a call that breaks the rules, text where a call was
    required, a call where none was allowed, or JSON that does not fit."""
    try:
        if act.calls_tools:
            calls = _calls(done, act)
            if calls:
                return replace(done, text="", tool_calls=calls, finish_reason="tool_calls")
            if act.tool_choice != "auto":
                raise BadAnswer(f"tool_choice is {act.tool_choice!r}, but the model answered text")
        elif done.tool_calls or _writes_a_call(done.text, act):
            raise BadAnswer(
                "the model called a tool where tools are not allowed (tool_choice: none)"
            )
        if done.finish_reason == "tool_calls":
            done = replace(done, finish_reason="stop")
        if act.response_format is not None and done.text.strip():
            return _structured(done, act)
    except BadAnswer as exc:
        exc.text = exc.text or done.text
        if not exc.text and done.tool_calls:
            exc.text = json.dumps([c.to_dict() for c in done.tool_calls])
        raise
    return done


_REPAIR = (
    "Your last answer could not be used: {problem}. Answer again, following the instructions "
    "exactly{how}."
)


_EMPTY = "Your last answer was empty. Answer the request now: {how}."


def repair(messages: Sequence[Message], error: BadAnswer, act: Act) -> list[Message]:
    """The messages of the one retry after a `BadAnswer`: the conversation, the answer as it
    came, and what was wrong with it. An empty answer is not shown (a turn saying "no answer"
    is one more thing to imitate) and the note says what to do: the 1.5B model, told after a
    tool result to follow the calling rules, wrote the rules out as its answer."""
    if not error.text.strip():
        if act.calls_tools and act.tool_choice == "auto":
            how = "call a tool if one is still needed, else reply in text"
        elif act.calls_tools:
            how = f"call {'a tool' if act.tool_choice == 'required' else act.tool_choice}"
        elif act.response_format is not None:
            how = "only the JSON, nothing around it"
        else:
            how = "reply in text"
        if messages and messages[-1].role == "tool":
            how += ", using the tool results above"
        return [*messages, Message("user", _EMPTY.format(how=how))]
    if act.calls_tools:
        names = ", ".join(t.name for t in act.tools)
        how = f": to call a tool ({names}), give its name and a JSON object of arguments"
        if act.tool_choice == "auto":  # never pushed into a call where none fits
            how += "; if none of them fits, answer in text without calling a tool"
    elif act.response_format is not None:
        how = ": only the JSON, nothing around it"
    elif act.tools:
        how = ": answer in text, without calling a tool"
    else:
        how = ""
    note = _REPAIR.format(problem=error.message.rstrip("."), how=how)
    return [*messages, Message("assistant", error.text), Message("user", note)]


def echoes(text: str, note: str, span: int = 30) -> bool:
    """Whether `text` repeats a stretch of `note` (a weak model answering a correction with
    the correction itself)."""
    said = " ".join(text.lower().split())
    told = " ".join(note.lower().split())
    return any(
        told[i : i + span] in said for i in range(0, max(len(told) - span, 0) + 1, span // 2)
    )


def finished(
    done: Completion, act: Act | None, model: str, correction: str | None = None
) -> Completion:
    """A call's answer as the run uses it: thinking apart (`moa.reasoning`), held to the
    act's contract (`checked`), never empty (nothing to synthesise from), and, after a
    repair (`correction`: what the model was told), not that correction repeated."""
    if done.reasoning is None:
        thought, text = split_thinking(done.text)
        if thought is not None:
            done = replace(done, text=text, reasoning=thought)
    if act is not None:
        try:
            done = checked(done, act)
        except BadAnswer as exc:
            exc.model = model
            raise
    if correction is not None and not done.tool_calls and echoes(done.text, correction):
        raise BadAnswer("the model repeated the correction instead of answering", model=model)
    if not done.text.strip() and not done.tool_calls:
        if act is not None:  # an acting call is asked again, told so (at temperature 0 a
            raise BadAnswer("the answer was empty", model=model)  # plain retry repeats it)
        raise BadResponse("the model answered with empty text", model=model)
    return done
