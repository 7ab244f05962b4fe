"""Tools as requests give them, tool calls as models write them, JSON schemas, reasoning, and
the tool-free view references get: the pure parts, without a run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moa.errors import BadAnswer, ConfigError
from moa.reasoning import ThinkSplitter, split_thinking
from moa.reference_view import DIGEST_HEADING, describe_calls, reference_view
from moa.schema import check_schema, problems
from moa.toolcalls import checked, read_calls
from moa.tools import canonical, make_act, repeated_rounds
from moa.types import Completion, Message, ToolCall, to_messages

LOOKUP: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up a key.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
            "additionalProperties": False,
        },
    },
}
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def act(**given: Any) -> Any:
    made = make_act(tools=[LOOKUP, WEATHER], **given)
    assert made is not None
    return made


def answer(text: str = "", calls: tuple[ToolCall, ...] = ()) -> Completion:
    return Completion(text=text, tool_calls=calls, finish_reason="stop")


# requests' tools -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type: only function tools"),
        (
            {"tools": [{"type": "function", "function": {"name": "has space"}}]},
            "tools[0].function.name",
        ),
        ({"tools": [LOOKUP, LOOKUP]}, "tools[1].function.name: 'lookup' is declared twice"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "tools[0].function.parameters: a JSON schema must be an object",
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "strnig"}},
                    }
                ]
            },
            "tools[0].function.parameters.type: unknown type 'strnig'",
        ),
        ({"tools": [LOOKUP], "tool_choice": "sometimes"}, "tool_choice: 'sometimes' is not"),
        (
            {"tools": [LOOKUP], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice: 'x' is not a declared tool",
        ),
        ({"tool_choice": "required"}, "tool_choice: a tool choice needs tools"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema: a JSON schema must be an object",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"$ref": "http://elsewhere/x.json"}},
                }
            },
            "response_format.json_schema.schema.$ref",
        ),
        ({"tools": [LOOKUP] * 129}, "tools: at most 128 tools"),
    ],
)
def test_bad_tools_are_errors_naming_the_field(given: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_act(**given)
    assert str(info.value).startswith(problem)


def test_an_act_keeps_what_was_asked_and_says_it_back_in_openai_form() -> None:
    made = make_act(
        tools=[LOOKUP],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {}}},
    )
    assert made is not None and made.tool_choice == "lookup"
    wire = made.to_dict()
    assert wire["tools"] == [LOOKUP]
    assert wire["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert wire["parallel_tool_calls"] is False
    assert wire["response_format"]["json_schema"]["name"] == "r"
    assert make_act() is None and make_act(response_format={"type": "text"}) is None
    # the Responses API's flat tools and choice mean the same
    flat = {"type": "function", **LOOKUP["function"]}
    assert make_act(
        tools=[flat], tool_choice={"type": "function", "name": "lookup"}
    ) == made.__class__(tools=made.tools, tool_choice="lookup")


def test_conversations_pair_tool_results_with_calls_by_id() -> None:
    call: dict[str, Any] = {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": "{}"},
    }
    good: list[dict[str, Any]] = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "391"},
    ]
    messages = to_messages(good)
    assert messages[1].tool_calls == (ToolCall("c1", "lookup", "{}"),)
    assert messages[2].to_dict() == {"role": "tool", "content": "391", "tool_call_id": "c1"}
    orphan = [*good[:1], {"role": "tool", "tool_call_id": "zz", "content": "1"}]
    with pytest.raises(ConfigError, match=r"messages\[1\].tool_call_id: 'zz' answers no earlier"):
        to_messages(orphan)
    twice = [*good, {"role": "tool", "tool_call_id": "c1", "content": "again"}]
    with pytest.raises(ConfigError, match=r"messages\[3\].tool_call_id: 'c1'"):
        to_messages(twice)
    same_ids = [good[0], {"role": "assistant", "content": None, "tool_calls": [call, call]}]
    with pytest.raises(ConfigError, match=r"messages\[1\].tool_calls\[1\].id: 'c1' is used"):
        to_messages([*same_ids, *good[2:]])
    with pytest.raises(ConfigError, match=r"messages\[1\].tool_calls\[0\].id"):
        to_messages([good[0], {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}])


# calls read from text, and checked ----------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "lookup", "arguments": {"key": "a"}}\n```',
        '{"name": "lookup", "arguments": {"key": "a"}}',
        'I will look it up.\n<tool_call>\n{"name": "lookup", "arguments": {"key": "a"}}\n</tool_call>',
        '{"name": "lookup", "parameters": {"key": "a"}}',
        '{"type": "function", "function": {"name": "lookup", "arguments": "{\\"key\\": \\"a\\"}"}}',
        '{"tool_calls": [{"name": "lookup", "arguments": {"key": "a"}}]}',
    ],
)
def test_a_call_written_as_json_in_text_is_a_tool_call(text: str) -> None:
    done = checked(answer(text), act())
    assert done.text == "" and done.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in done.tool_calls] == [
        ("lookup", {"key": "a"})
    ]
    assert done.tool_calls[0].id.startswith("call_")


def test_parallel_calls_are_all_kept_each_with_its_own_id() -> None:
    text = (
        '```json\n{"name": "lookup", "arguments": {"key": "a"}}\n```\n'
        '```json\n{"name": "weather", "arguments": {"city": "Oslo"}}\n```'
    )
    calls = checked(answer(text), act()).tool_calls
    assert [c.name for c in calls] == ["lookup", "weather"]
    assert len({c.id for c in calls}) == 2
    lines = '{"name": "lookup", "arguments": {"key": "a"}}\n{"name": "lookup", "arguments": {"key": "b"}}'
    assert len(checked(answer(lines), act()).tool_calls) == 2
    with pytest.raises(BadAnswer, match="parallel_tool_calls is false, but the model made 2"):
        checked(answer(lines), act(parallel_tool_calls=False))


def test_structured_calls_keep_their_ids_and_get_one_where_missing_or_repeated() -> None:
    given = (
        ToolCall("x1", "lookup", '{"key": "a"}'),
        ToolCall("x1", "lookup", '{"key": "b"}'),
        ToolCall("", "weather", "{}"),
    )
    calls = checked(answer(calls=given), act()).tool_calls
    assert calls[0].id == "x1"
    assert len({c.id for c in calls}) == 3 and all(c.id for c in calls)


@pytest.mark.parametrize(
    ("done", "problem"),
    [
        (answer('{"name": "", "arguments": {}}'), "a tool call has an empty name"),
        (
            answer('{"name": "delete_all", "arguments": {}}'),
            "'delete_all', which is not a declared tool (lookup, weather)",
        ),
        (answer(calls=(ToolCall("c", "lookup", "{key: a}"),)), "are not valid JSON"),
        (answer(calls=(ToolCall("c", "lookup", "[1]"),)), "must be a JSON object, not list"),
        (answer('{"name": "lookup", "arguments": {}}'), "the field 'key' is required"),
        (
            answer('{"name": "lookup", "arguments": {"key": 5}}'),
            "$.key: expected string, got integer",
        ),
        (answer('{"name": "lookup", "arguments": {"key": "a", "x": 1}}'), "unexpected field 'x'"),
    ],
)
def test_a_malformed_call_is_a_bad_answer_that_says_why(done: Completion, problem: str) -> None:
    with pytest.raises(BadAnswer) as info:
        checked(done, act())
    assert problem in info.value.message
    assert info.value.text  # what the model wrote, for the repair


def test_tool_choice_is_held_to() -> None:
    text_answer = answer("Paris is sunny.")
    assert checked(text_answer, act()).text == "Paris is sunny."  # auto: text is fine
    with pytest.raises(BadAnswer, match="tool_choice is 'required', but the model answered text"):
        checked(text_answer, act(tool_choice="required"))
    forced = act(tool_choice={"type": "function", "function": {"name": "weather"}})
    with pytest.raises(BadAnswer, match="requires a call of 'weather', not 'lookup'"):
        checked(answer('{"name": "lookup", "arguments": {"key": "a"}}'), forced)
    with pytest.raises(BadAnswer, match="tools are not allowed"):
        checked(answer(calls=(ToolCall("c", "lookup", "{}"),)), act(tool_choice="none"))
    # with no tool allowed, a call written as text is no answer either; other JSON is text
    with pytest.raises(BadAnswer, match="tools are not allowed"):
        checked(answer('{"name": "lookup", "arguments": {"key": "a"}}'), act(tool_choice="none"))
    shaped = '{"name": "Ada", "arguments": ["x"]}'
    assert checked(answer(shaped), act(tool_choice="none")).text == shaped


def test_prose_and_json_that_is_no_call_stay_text() -> None:
    for text in ("The answer is 4.", '```json\n{"city": "Oslo"}\n```', "use {braces} freely"):
        assert read_calls(text) is None
        assert checked(answer(text), act()).tool_calls == ()


SCHEMA = {
    "type": "object",
    "properties": {"value": {"type": "integer", "minimum": 0}, "unit": {"enum": ["m", "s"]}},
    "required": ["value"],
}


def test_json_answers_are_checked_against_the_schema() -> None:
    form = make_act(response_format={"type": "json_schema", "json_schema": {"schema": SCHEMA}})
    assert form is not None
    assert checked(answer('```json\n{"value": 391}\n```'), form).text == '{"value": 391}'
    for text, problem in [
        ("391", "$: expected object"),
        ('{"value": -1}', "$.value: -1 is below 0"),
        ('{"value": 1, "unit": "kg"}', "$.unit: expected one of"),
        ("{value: 1}", "not valid JSON"),
    ]:
        with pytest.raises(BadAnswer) as info:
            checked(answer(text), form)
        assert problem in info.value.message
    plain = make_act(response_format={"type": "json_object"})
    assert plain is not None
    with pytest.raises(BadAnswer, match="must be a JSON object"):
        checked(answer("[1, 2]"), plain)
    # tools and a schema: a call, or JSON that fits the schema
    both = make_act(
        tools=[LOOKUP], response_format={"type": "json_schema", "json_schema": {"schema": SCHEMA}}
    )
    assert both is not None
    assert checked(answer('{"name": "lookup", "arguments": {"key": "a"}}'), both).tool_calls
    assert checked(answer('{"value": 2}'), both).text == '{"value": 2}'


def test_schema_problems_follow_refs_and_combinations() -> None:
    schema = {
        "$defs": {
            "point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
        },
        "type": "array",
        "items": {"$ref": "#/$defs/point"},
        "maxItems": 2,
    }
    check_schema(schema, "s")
    assert problems([{"x": 1}, {"x": 2.5}], schema) == []
    assert problems([{"x": "1"}], schema) == ["$[0].x: expected number, got string"]
    assert "more than 2 items" in problems([{"x": 1}] * 3, schema)[0]
    either = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert problems(None, either) == [] and problems(3, either) != []
    with pytest.raises(ConfigError, match="nested more than 32 deep"):
        deep: dict[str, Any] = {"type": "object"}
        for _ in range(40):
            deep = {"type": "object", "properties": {"a": deep}}
        check_schema(deep, "s")


def test_a_property_may_be_called_type_and_enum_values_are_data() -> None:
    schema = {
        "type": "object",
        "properties": {
            "type": {"enum": ["black", {"type": "anything"}]},
            "$ref": {"type": "integer"},
        },
        "required": ["type"],
    }
    check_schema(schema, "s")  # BFCL's uber_ride has a parameter named "type"
    assert problems({"type": "black", "$ref": 1}, schema) == []
    with pytest.raises(ConfigError, match=r"s\.properties\.type\.type: unknown type 'str'"):
        check_schema({"type": "object", "properties": {"type": {"type": "str"}}}, "s")
    with pytest.raises(ConfigError, match=r"s\.type: expected a type name"):
        check_schema({"type": {"type": "string"}}, "s")


# canonical calls and loops ---------------------------------------------------------------
def test_calls_are_the_same_action_whatever_their_ids_order_or_spacing() -> None:
    a = [ToolCall("1", "lookup", '{"key": "a", "n": 1}'), ToolCall("2", "weather", "{}")]
    b = [ToolCall("9", "weather", "{ }"), ToolCall("8", "lookup", '{"n":1,"key":"a"}')]
    assert canonical(a) == canonical(b)
    assert canonical(a) != canonical([ToolCall("1", "lookup", '{"key": "b", "n": 1}')])


def test_repeated_rounds_counts_the_same_calls_in_a_row() -> None:
    def rounds(*args: str) -> list[Message]:
        out = [Message("user", "go")]
        for i, key in enumerate(args):
            out.append(
                Message("assistant", "", (ToolCall(f"c{i}", "lookup", json.dumps({"key": key})),))
            )
            out.append(Message("tool", "nothing", tool_call_id=f"c{i}"))
        return out

    assert repeated_rounds([Message("user", "go")]) == 0
    assert repeated_rounds(rounds("a", "a", "a")) == 3
    assert repeated_rounds(rounds("a", "b", "b")) == 2
    assert repeated_rounds(rounds("a", "a", "b")) == 1


# the references' view --------------------------------------------------------------------
def test_references_see_no_tool_turns_only_a_digest_of_results() -> None:
    call = ToolCall("c1", "lookup", '{"key": "alpha"}')
    messages = [
        Message("system", "Be brief."),
        Message("user", "What is alpha?"),
        Message("assistant", "", (call,)),
        Message("tool", "391", tool_call_id="c1"),
        Message("assistant", "Let me check once more.", (ToolCall("c2", "lookup", "{}"),)),
        Message("tool", "x" * 50, tool_call_id="c2"),
    ]
    view, facts = reference_view(messages)
    assert [m.role for m in view] == ["system", "user"]  # ends on the user's turn
    assert all(not m.tool_calls and m.tool_call_id is None for m in view)
    assert facts == (
        'The tool "lookup", given {"key": "alpha"}, returned: 391',
        'The tool "lookup" returned: ' + "x" * 50,
    )
    assert "[called" not in " ".join(facts)  # no call syntax a model could imitate
    assert DIGEST_HEADING.startswith("The application has already run some tools")
    assert describe_calls([call]) == '(Proposes calling the tool "lookup" with {"key": "alpha"}.)'
    plain = [Message("user", "hi")]
    assert reference_view(plain) == (tuple(plain), ())


def test_user_turns_around_dropped_tool_turns_are_merged() -> None:
    messages = [
        Message("user", "first"),
        Message("assistant", "", (ToolCall("c", "lookup", "{}"),)),
        Message("tool", "1", tool_call_id="c"),
        Message("user", "second"),
    ]
    view, _ = reference_view(messages)
    assert view == (Message("user", "first\n\nsecond"),)


# reasoning -------------------------------------------------------------------------------
def test_thinking_is_split_from_the_answer_whole_or_streamed() -> None:
    assert split_thinking("<think>2 + 2</think>\n4") == ("2 + 2", "4")
    assert split_thinking("4") == (None, "4")
    assert split_thinking("<think>unfinished") == ("unfinished", "")
    text = "<think>first 2, then 2</think>The answer is 4."
    for size in (1, 3, 7, len(text)):
        splitter = ThinkSplitter()
        thought, said = "", ""
        for i in range(0, len(text), size):
            t, s = splitter.feed(text[i : i + size])
            thought, said = thought + t, said + s
        t, s = splitter.flush()
        assert (thought + t, said + s) == ("first 2, then 2", "The answer is 4.")
    splitter = ThinkSplitter()
    assert splitter.feed("<th") == ("", "")
    assert splitter.feed("ank you") == ("", "<thank you")  # not a think tag after all
