"""Tools and response formats as a request gives them, checked into an `Act`; the canonical
form of tool calls (for votes and loop detection).

    act = make_act(tools=[{"type": "function", "function": {...}}], tool_choice="required")
    canonical(calls)          -> one text per distinct set of calls (same function, same args)
    repeated_rounds(messages) -> how many of the last assistant turns made the same calls

Everything here raises ConfigError naming the field (`tools[2].function.name: ...`), so the
library, the CLI and the server all say the same thing about the same mistake.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from moa.errors import ConfigError
from moa.schema import check_schema
from moa.types import TOOL_NAME, Act, Message, ResponseFormat, Tool, ToolCall

__all__ = [
    "ACTING_NOTE",
    "ACT_FIELDS",
    "MAX_TOOLS",
    "act_from",
    "canonical",
    "canonical_arguments",
    "loop_guard",
    "make_act",
    "make_response_format",
    "make_tools",
    "repeated_rounds",
    "turn_key",
]

MAX_TOOLS = 128
"""The most tools one request may declare (OpenAI's limit)."""
CHOICES = ("auto", "none", "required")


def _tool(raw: Any, where: str) -> Tool:
    if isinstance(raw, Tool):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected {{type: function, function: {{name, parameters}}}}")
    kind = raw.get("type", "function")
    if kind != "function":
        raise ConfigError(f"{where}.type: only function tools are supported, got {kind!r}")
    # the chat form nests the function; the Responses API's form is flat
    if "function" not in raw and "name" not in raw:
        raise ConfigError(f"{where}.function: expected {{name, description, parameters}}")
    function = raw.get("function", raw)
    at = f"{where}.function" if "function" in raw else where
    if not isinstance(function, Mapping):
        raise ConfigError(f"{at}: expected an object with name and parameters")
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ConfigError(
            f"{at}.name: a tool's name is 1 to 64 letters, digits, '_' or '-', got {name!r}"
        )
    description = function.get("description") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{at}.description: expected text")
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    check_schema(parameters, f"{at}.parameters")
    if parameters.get("type", "object") != "object":
        raise ConfigError(f"{at}.parameters.type: a tool's parameters are an object")
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ConfigError(f"{at}.strict: expected true or false")
    return Tool(name=name, description=description, parameters=dict(parameters), strict=strict)


def make_tools(tools: Sequence[Any]) -> tuple[Tool, ...]:
    """Tools in OpenAI's chat form, the Responses API's flat form, or as `Tool`s."""
    if not isinstance(tools, (list, tuple)):
        raise ConfigError("tools: expected a list of tools")
    if len(tools) > MAX_TOOLS:
        raise ConfigError(f"tools: at most {MAX_TOOLS} tools, got {len(tools)}")
    out = tuple(_tool(t, f"tools[{i}]") for i, t in enumerate(tools))
    names = [t.name for t in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"tools[{i}].function.name: {name!r} is declared twice")
    return out


def _choice(value: Any, tools: Sequence[Tool]) -> str:
    """'auto', 'none', 'required' or the name of the one tool that must be called."""
    if value is None:
        return "auto"
    name: Any = value
    if isinstance(value, Mapping):  # {"type": "function", "function": {"name": X}} or flat
        function = value.get("function", value)
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            raise ConfigError("tool_choice.function.name: name the tool that must be called")
    elif not isinstance(value, str):
        raise ConfigError(f"tool_choice: expected auto, none, required or a tool, got {value!r}")
    if name in CHOICES:
        if name == "required" and not tools:
            raise ConfigError("tool_choice: 'required' needs tools")
        return str(name)
    if not any(t.name == name for t in tools):
        known = ", ".join(t.name for t in tools) or "none are declared"
        raise ConfigError(f"tool_choice: {name!r} is not a declared tool ({known})")
    return str(name)


def make_response_format(value: Any) -> ResponseFormat | None:
    """`{"type": "text"}` (None), `{"type": "json_object"}`, or `{"type": "json_schema",
    "json_schema": {"name", "schema", "strict"}}` (the Responses API's flat form too)."""
    if value is None or isinstance(value, ResponseFormat):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError("response_format: expected {type: text | json_object | json_schema}")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    if kind != "json_schema":
        raise ConfigError(
            f"response_format.type: expected text, json_object or json_schema, got {kind!r}"
        )
    spec = value.get("json_schema", value)
    at = "response_format.json_schema" if "json_schema" in value else "response_format"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{at}: expected {{name, schema}}")
    schema = spec.get("schema")
    check_schema(schema, f"{at}.schema")
    assert isinstance(schema, Mapping)
    name = spec.get("name") or "response"
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ConfigError(f"{at}.name: 1 to 64 letters, digits, '_' or '-', got {name!r}")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ConfigError(f"{at}.strict: expected true or false")
    return ResponseFormat(type="json_schema", schema=dict(schema), name=name, strict=strict)


def make_act(
    *,
    tools: Sequence[Any] | None = None,
    tool_choice: Any = None,
    parallel_tool_calls: bool | None = None,
    response_format: Any = None,
) -> Act | None:
    """The `Act` of a request's fields, checked; None when it asks for plain text."""
    declared = make_tools(tools) if tools else ()
    if tool_choice is not None and not declared and tool_choice not in ("auto", "none"):
        raise ConfigError("tool_choice: a tool choice needs tools")
    choice = _choice(tool_choice, declared)
    if parallel_tool_calls is not None and not isinstance(parallel_tool_calls, bool):
        raise ConfigError("parallel_tool_calls: expected true or false")
    form = make_response_format(response_format)
    if not declared and form is None:
        return None
    return Act(
        tools=declared,
        tool_choice=choice,
        parallel_tool_calls=parallel_tool_calls,
        response_format=form,
    )


def _whole(value: Any) -> Any:
    """Whole floats as ints, inside lists and objects too: 2.0 and 2 are one argument."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    return value


def canonical_arguments(arguments: str) -> str:
    """Arguments written one way: keys sorted, no spaces, whole floats as ints (the text itself
    if it is not JSON)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments.strip()
    return json.dumps(_whole(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(calls: Sequence[ToolCall]) -> str:
    """One text for a set of calls, whatever their ids, order or spacing: equal texts are the
    same action (the same functions with the same arguments)."""
    return "\n".join(sorted(f"{c.name}({canonical_arguments(c.arguments)})" for c in calls))


def repeated_rounds(messages: Sequence[Message]) -> int:
    """How many assistant turns in a row, counting back from the last, made the same tool
    calls (a turn in between that made none ends the run of them; tool results don't)."""
    keys: list[str] = []
    for m in reversed(messages):
        if m.role == "tool":
            continue
        if m.role == "assistant" and m.tool_calls:
            keys.append(canonical(m.tool_calls))
            continue
        break
    if not keys:
        return 0
    same = 1
    while same < len(keys) and keys[same] == keys[0]:
        same += 1
    return same


ACT_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")
"""The keyword arguments of a run that make its final call act (`make_act`)."""
ACTING_NOTE = (
    "You can call the tools you are given. The other models' responses are advice: they could "
    "not call tools, and nothing they say has been run."
)
"""Told to an aggregator that acts with tools and is shown other answers."""


def act_from(given: dict[str, Any]) -> Act | None:
    """The act of a run's keyword arguments, taken out of them."""
    return make_act(**{k: given.pop(k) for k in ACT_FIELDS if k in given})


def turn_key(messages: Sequence[Message]) -> str:
    """The conversation up to its last user message: what a tool loop's requests share."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    text = json.dumps([m.to_dict() for m in messages[: last + 1]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def loop_guard(
    messages: Sequence[Message], act: Act | None, limit: int
) -> tuple[Act | None, str | None]:
    """The act, and why it lost its tools: once the last `limit` assistant turns made the
    same calls, the final answers without tools (it may still be shown them)."""
    if act is None or not act.calls_tools or (repeats := repeated_rounds(messages)) < limit:
        return act, None
    why = (
        f"the last {repeats} assistant turns made the same tool calls (limit {limit}): "
        "the final answers without tools"
    )
    return act.without_tools(), why
