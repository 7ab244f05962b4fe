"""/v1/responses with the real `openai` client on loopback (scripted models): text, function
calls and their outputs both ways, JSON schemas, the SSE lifecycle and its sequence numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

pytest.importorskip("fastapi")

from moa.backends.fake import FakeBackend, Reply, call
from moa.server import create_app
from moa.server.responses import ResponsesFormat, parse_responses_request
from moa.server.testing import ServerThread
from moa.types import Request

LOOKUP: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Look up a key.",
    "parameters": {
        "type": "object",
        "properties": {"key": {"type": "string"}},
        "required": ["key"],
    },
}


def agent(request: Request) -> Reply:
    last = request.messages[-1]
    if last.role == "tool":
        return Reply(f"alpha is {last.content}", reasoning="the tool said so")
    if request.act is not None and request.act.calls_tools:
        return Reply(tool_calls=[call("lookup", {"key": "alpha"}, "call_abc")])
    if request.act is not None and request.act.response_format is not None:
        return Reply('{"value": 391}')
    return Reply("hello there")


@pytest.fixture(scope="module")
def fake() -> FakeBackend:
    return FakeBackend().respond("agg", agent)


@pytest.fixture(scope="module")
def client(fake: FakeBackend) -> Iterator[openai.OpenAI]:
    recipes = {"lite": {"layers": [["fake:a"]], "aggregator": "fake:agg"}}
    with (
        ServerThread(
            create_app(api_key="", recipes=recipes, backends={"fake": fake}, env={})
        ) as server,
        openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as c,
    ):
        yield c


def test_text_in_and_out(client: openai.OpenAI) -> None:
    response = client.responses.create(model="lite", input="Say hello", instructions="Be kind.")
    assert response.status == "completed" and response.output_text == "hello there"
    assert response.usage is not None and response.usage.total_tokens > 0


def test_a_function_call_and_its_output_round_trip(
    client: openai.OpenAI, fake: FakeBackend
) -> None:
    first = client.responses.create(model="lite", input="What is alpha?", tools=[LOOKUP])
    (item,) = first.output
    assert item.type == "function_call" and item.name == "lookup" and item.call_id == "call_abc"
    assert json.loads(item.arguments) == {"key": "alpha"}
    follow: list[Any] = [
        {"role": "user", "content": "What is alpha?"},
        item.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": item.call_id, "output": "391"},
    ]
    second = client.responses.create(model="lite", input=follow, tools=[LOOKUP])
    assert second.output_text == "alpha is 391"
    reasoning = [o for o in second.output if o.type == "reasoning"]
    assert reasoning and reasoning[0].content and reasoning[0].content[0].text == "the tool said so"
    final = fake.requests("agg")[-1]
    assert [m.role for m in final.messages][-3:] == ["user", "assistant", "tool"]
    assert (
        final.messages[-2].tool_calls[0].id == "call_abc"
        and final.messages[-1].tool_call_id == "call_abc"
    )
    assert fake.requests("a")[-1].act is None  # the reference saw no tools


def test_a_streamed_call_has_the_lifecycle_events_in_sequence(client: openai.OpenAI) -> None:
    with client.responses.stream(model="lite", input="What is alpha?", tools=[LOOKUP]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    progress = [e for e in events if e.type == "response.reasoning_text.delta"]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the references' progress, as thinking
        *["response.reasoning_text.delta"] * len(progress),
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    thinking, item = final.output
    assert item.type == "function_call" and json.loads(item.arguments) == {"key": "alpha"}
    assert thinking.type == "reasoning" and thinking.content is not None
    shown = thinking.content[0].text
    assert shown == "".join(e.delta for e in progress) and "a" in shown
    assert len(progress) >= 2  # a line as each reference starts and as it ends


def test_streamed_text_has_its_parts(client: openai.OpenAI) -> None:
    with client.responses.stream(model="lite", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    start = kinds.index("response.reasoning_text.done") + 2  # after the references' progress
    assert kinds[:2] + kinds[start : start + 2] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "response.output_text.delta" not in kinds[:start]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "hello there"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_a_json_schema_through_text_format(client: openai.OpenAI, fake: FakeBackend) -> None:
    schema = {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}
    form: Any = {"format": {"type": "json_schema", "name": "v", "schema": schema}}
    response = client.responses.create(model="lite", input="How far?", text=form)
    assert json.loads(response.output_text) == {"value": 391}
    act = fake.requests("agg")[-1].act
    assert (
        act is not None and act.response_format is not None and act.response_format.schema == schema
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"type": "image", "url": "x"}]}, "input[0].type"),
        ({"input": "q", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "q", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"input": [{"type": "function_call_output", "call_id": "nope", "output": "1"}]},
            "messages[0].tool_call_id",
        ),
        ({"input": "q", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_bad_responses_requests_are_400_naming_the_field(
    client: openai.OpenAI, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(str(client.base_url) + "responses", json={"model": "lite", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_the_mapping_both_ways_without_a_server() -> None:
    raw = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "a and b?"}]},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "lookup",
                "arguments": '{"key": "a"}',
            },
            {
                "type": "function_call",
                "call_id": "c2",
                "name": "lookup",
                "arguments": '{"key": "b"}',
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call_output", "call_id": "c1", "output": "1"},
            {"type": "function_call_output", "call_id": "c2", "output": "2"},
        ],
        "tools": [LOOKUP],
        "tool_choice": {"type": "function", "name": "lookup"},
    }
    request = parse_responses_request(json.dumps(raw).encode())
    messages = request.conversation()
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assert [c.id for c in messages[2].tool_calls] == ["c1", "c2"]  # consecutive calls: one turn
    assert request.act is not None and request.act.tool_choice == "lookup"
    from moa.events import Result
    from moa.trace import Trace
    from moa.types import ToolCall

    result = Result(
        text="",
        trace=Trace(recipe="m", started_at=0),
        tool_calls=(ToolCall("call_9", "lookup", '{"key": "c"}'),),
    )
    body = ResponsesFormat(request).body(result, include_trace=False)
    assert body["output"] == [
        {
            "type": "function_call",
            "id": "fc_9",
            "call_id": "call_9",
            "name": "lookup",
            "arguments": '{"key": "c"}',
            "status": "completed",
        }
    ]
    assert body["tool_choice"] == {"type": "function", "name": "lookup"}
    assert body["tools"][0]["name"] == "lookup"


def test_a_streamed_answer_with_reasoning_and_a_schema(client: openai.OpenAI) -> None:
    follow: list[Any] = [
        {"role": "user", "content": "What is alpha?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "lookup",
            "arguments": '{"key": "alpha"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "391"},
    ]
    with client.responses.stream(model="lite", input=follow, tools=[LOOKUP]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"]  # the thinking first, as its own item
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output_text == "alpha is 391"
    schema = {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}
    form: Any = {"format": {"type": "json_schema", "name": "v", "schema": schema}}
    with client.responses.stream(model="lite", input="How far?", text=form) as stream:
        assert json.loads(stream.get_final_response().output_text) == {"value": 391}
