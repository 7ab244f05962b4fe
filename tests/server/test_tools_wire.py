"""Tools, tool results, JSON schemas and reasoning over /v1/chat/completions, with the real
`openai` client on loopback against scripted (fake) models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

pytest.importorskip("fastapi")

from moa import depth
from moa.backends.fake import FakeBackend, Reply, call
from moa.backends.openai_compat import OpenAICompatBackend
from moa.errors import BackendError
from moa.server import create_app
from moa.server.testing import ServerThread
from moa.types import Message, Request

LOOKUP: Any = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up a key.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    },
}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
RECIPES: dict[str, Any] = {
    "lite": {"layers": [["fake:a", "fake:b"]], "aggregator": "fake:agg"},
    "vote": {
        "layers": [["fake:v1", "fake:v2", "fake:v3"]],
        "aggregator": "fake:agg",
        "strategy": {"final": "auto"},
    },
}


def agent(request: Request) -> Reply:
    """A scripted agent: calls lookup for a question, answers from a tool result, calls two
    tools when asked for both."""
    last = request.messages[-1]
    if last.role == "tool":
        return Reply(f"The value is {last.content}.")
    if request.act is None or not request.act.calls_tools:
        return Reply("no tools here")
    if "both" in last.content:
        return Reply(
            tool_calls=[
                call("lookup", {"key": "alpha"}, "c1"),
                call("weather", {"city": "Oslo"}, "c2"),
            ]
        )
    return Reply('```json\n{"name": "lookup", "arguments": {"key": "alpha"}}\n```')


@pytest.fixture(scope="module")
def fake() -> FakeBackend:
    backend = FakeBackend()
    for name in ("agg", "v1", "v2", "v3"):
        backend.respond(name, agent)
    return backend


@pytest.fixture(scope="module")
def server(fake: FakeBackend) -> Iterator[ServerThread]:
    app = create_app(api_key="", recipes=RECIPES, backends={"fake": fake}, env={})
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def ask(text: str = "What is alpha?") -> Any:
    return [{"role": "user", "content": text}]


def function_calls(message: Any) -> list[Any]:
    """A message's tool calls (the SDK types them as function or custom calls)."""
    return list(message.tool_calls or [])


def streamed(client: openai.OpenAI, **kwargs: Any) -> tuple[dict[str, Any], list[Any]]:
    """A streamed answer reassembled as a client does: content, and tool calls by index."""
    chunks = list(
        client.chat.completions.create(
            stream=True, stream_options={"include_usage": True}, **kwargs
        )
    )
    content, finish = "", None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for piece in choice.delta.tool_calls or ():
                slot = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = piece.id or slot["id"]
                slot["name"] += piece.function.name or "" if piece.function else ""
                slot["arguments"] += piece.function.arguments or "" if piece.function else ""
            finish = choice.finish_reason or finish
    return {
        "content": content,
        "calls": [calls[i] for i in sorted(calls)],
        "finish": finish,
    }, chunks


@pytest.mark.parametrize("model", ["lite", "vote"])
def test_a_tool_call_streamed_or_not_is_the_same_call(client: openai.OpenAI, model: str) -> None:
    whole = client.chat.completions.create(model=model, messages=ask(), tools=[LOOKUP])
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (tool_call,) = function_calls(choice.message)
    assert tool_call.function.name == "lookup" and json.loads(tool_call.function.arguments) == {
        "key": "alpha"
    }
    got, chunks = streamed(client, model=model, messages=ask(), tools=[LOOKUP])
    assert got["finish"] == "tool_calls" and got["content"] == ""
    assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
        ("lookup", {"key": "alpha"})
    ]
    assert got["calls"][0]["id"].startswith("call_")
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["tool_calls"]  # never a stop after tool calls
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_parallel_calls_keep_their_index_and_ids(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="lite", messages=ask("both please"), tools=[LOOKUP, WEATHER]
    )
    assert [(c.id, c.function.name) for c in function_calls(whole.choices[0].message)] == [
        ("c1", "lookup"),
        ("c2", "weather"),
    ]
    got, _ = streamed(client, model="lite", messages=ask("both please"), tools=[LOOKUP, WEATHER])
    assert [(c["id"], c["name"]) for c in got["calls"]] == [("c1", "lookup"), ("c2", "weather")]


@pytest.mark.parametrize("tools", [[LOOKUP], None])
def test_a_tool_result_turn_with_or_without_tools(client: openai.OpenAI, tools: Any) -> None:
    first = client.chat.completions.create(model="lite", messages=ask(), tools=[LOOKUP])
    message = first.choices[0].message
    (tool_call,) = function_calls(message)
    follow = [
        *ask(),
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "391"},
    ]
    extra = {"tools": tools} if tools else {}
    second = client.chat.completions.create(model="lite", messages=follow, **extra)
    assert second.choices[0].message.content == "The value is 391."
    assert second.choices[0].finish_reason == "stop"


def test_progress_goes_in_reasoning_content_never_in_content(client: openai.OpenAI) -> None:
    _, chunks = streamed(client, model="lite", messages=ask("hello"))
    thinking = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "layer 1: fake:a answered" in thinking and "layer 1: 2 answers" in thinking
    assert content == "no tools here"  # the answer alone


def test_reasoning_of_the_final_is_reasoning_content(
    client: openai.OpenAI, fake: FakeBackend
) -> None:
    fake.enqueue("agg", Reply("4", reasoning="2 + 2 is 4"))
    whole = client.chat.completions.create(model="lite", messages=ask("2 + 2?"))
    assert whole.choices[0].message.content == "4"
    assert (whole.choices[0].message.model_extra or {})["reasoning_content"] == "2 + 2 is 4"


class Value(BaseModel):
    value: int
    unit: str


def test_parse_with_a_pydantic_model(client: openai.OpenAI, fake: FakeBackend) -> None:
    fake.enqueue("agg", 'Sure: {"value": "x"}', '{"value": 391, "unit": "m"}')
    parsed = client.chat.completions.parse(
        model="lite", messages=ask("How far?"), response_format=Value
    )
    assert parsed.choices[0].message.parsed == Value(value=391, unit="m")
    (first, second) = [
        r
        for r in fake.requests("agg")
        if r.messages[-1].content.startswith(("How far", "Your last"))
    ][-2:]
    assert first.act is not None and first.act.response_format is not None
    schema = first.act.response_format.schema
    assert schema is not None and schema["required"] == ["value", "unit"]
    assert "not valid JSON" in second.messages[-1].content  # the repair


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [LOOKUP], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
        ({"tools": [LOOKUP] * 129}, "tools"),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "obj"}}}
                ]
            },
            "tools[0].function.parameters.type",
        ),
        ({"functions": [{"name": "f"}]}, "functions"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": 3}}},
            "response_format.json_schema.schema",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "description": "x" * 300_000}}
                ]
            },
            "tools",
        ),
    ],
)
def test_bad_tool_fields_are_400_naming_the_field(
    server: ServerThread, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "lite", "messages": ask(), **extra}
    response = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["message"].startswith(param)


def test_tool_turns_that_do_not_pair_are_400(server: ServerThread) -> None:
    messages = [*ask(), {"role": "tool", "tool_call_id": "ghost", "content": "1"}]
    response = httpx.post(
        server.url + "/v1/chat/completions", json={"model": "lite", "messages": messages}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[1].tool_call_id"


def test_a_request_from_a_nested_moa_run_is_refused(
    server: ServerThread, fake: FakeBackend
) -> None:
    before = len(fake.calls)
    body = {"model": "lite", "messages": ask()}
    deep = httpx.post(server.url + "/v1/chat/completions", json=body, headers={depth.HEADER: "2"})
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "moa_depth_exceeded"
    assert len(fake.calls) == before  # nothing ran
    assert (
        httpx.post(
            server.url + "/v1/chat/completions", json=body, headers={depth.HEADER: "1"}
        ).status_code
        == 200
    )


async def test_the_openai_backend_passes_tools_and_reads_calls_back(server: ServerThread) -> None:
    """Our OpenAI-compatible backend against a real server (this one): the four fields go
    out, structured calls come back, streamed or not, and each request says its depth."""
    from moa.tools import make_act

    backend = OpenAICompatBackend(base_url=server.url + "/v1", api_key="x")
    act = make_act(tools=[LOOKUP], tool_choice="auto", parallel_tool_calls=True)
    request = Request(model="lite", messages=(Message("user", "What is alpha?"),), act=act)
    try:
        whole = await backend.complete(request)
        pieces = [d async for d in backend.stream(request)]
        with (  # a run that came from a MoA server: its calls say depth 2
            depth.nested(1),
            pytest.raises(BackendError, match="nested 2 deep"),
        ):
            await backend.complete(request)
    finally:
        await backend.aclose()
    assert whole.finish_reason == "tool_calls" and whole.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in whole.tool_calls] == [
        ("lookup", {"key": "alpha"})
    ]
    from moa.backends.base import Fold

    fold = Fold()
    for piece in pieces:
        fold.add(piece)
    assert [(c.name, c.arguments) for c in fold.completion().tool_calls] == [
        (c.name, c.arguments) for c in whole.tool_calls
    ]


def test_a_streamed_json_answer_is_checked_then_sent_whole(
    client: openai.OpenAI, fake: FakeBackend
) -> None:
    fake.enqueue("agg", '```json\n{"value": 7, "unit": "m"}\n```')
    got, chunks = streamed(
        client,
        model="lite",
        messages=ask("How far?"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "v", "schema": Value.model_json_schema()},
        },
    )
    assert json.loads(got["content"]) == {"value": 7, "unit": "m"} and got["finish"] == "stop"
    assert (
        sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 1
    )  # held, then whole
