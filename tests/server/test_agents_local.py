"""Agents against `moa serve` on the embedded local model (Qwen2.5-Coder-1.5B, in-process
llama.cpp), with real clients on loopback and no fakes: the `openai` SDK's tool loop, streamed
and not, `chat.completions.parse` with a pydantic model, and an OpenAI Agents SDK `Agent`.

The chain's second call needs a city that only the first tool's result names (Qorvane, which
no model knows), so no path but the model reading that result can make it. A pass-through
wrapper counts the backend requests that carried tools, so each call shown to the client is
one the model made."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

pytest.importorskip("fastapi")
pytest.importorskip("agents")

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from moa import catalog
from moa.backends.base import Backend
from moa.server import create_app
from moa.server.testing import ServerThread
from moa.types import Delta, Request

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp is not installed"
    ),
]

MODEL = "qwen2.5-coder-1.5b-instruct"
SMALL = "qwen2.5-coder-0.5b-instruct"
"""Enough for a constrained JSON answer; not for a chain (after a tool result it called the
same tool again) nor for parallel calls (it made one of two)."""
SYSTEM = "Use the tools when they help. After a tool returns, use its result."
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up the value stored under a key.",
            "parameters": {
                "type": "object",
                "properties": {"key": {"type": "string"}},
                "required": ["key"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
]
CITY = "Qorvane"


class Counted(Backend):
    """The local backend as it is, counting the requests that carried tools."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.with_tools = 0

    def stream(self, request: Request) -> AsyncIterator[Delta]:
        if request.act is not None and request.act.calls_tools:
            self.with_tools += 1
        return self.inner.stream(request)

    def context_window(self, model: str) -> int | None:
        return self.inner.context_window(model)

    def count_tokens(self, model: str, text: str) -> int | None:
        return self.inner.count_tokens(model, text)


@pytest.fixture(scope="module")
def counted() -> Counted:
    from moa.backends.llamacpp import LlamaCppBackend

    return Counted(LlamaCppBackend(n_ctx=4096))


@pytest.fixture(scope="module")
def server(counted: Counted) -> Iterator[ServerThread]:
    recipes = {}
    for name, model in (("agent", MODEL), ("small", SMALL)):
        path = catalog.ensure(model, auto_pull=True)
        agent = {"model": f"gguf:{path}", "temperature": 0, "max_tokens": 64}
        # the acting agent is the last layer's, under a choosing rule
        recipes[name] = {"layers": [[agent]], "aggregator": agent, "strategy": {"final": "first"}}
    app = create_app(api_key="", recipes=recipes, backends={"gguf": counted}, env={})
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=600) as c:
        yield c


def run_tool(name: str, arguments: str) -> str:
    args = json.loads(arguments)
    if name == "lookup":
        return CITY if args.get("key") == "alpha" else "nothing is stored there"
    return f"rainy, 14 C in {args.get('city')}"


def test_a_two_step_tool_chain_streamed_and_not(client: openai.OpenAI, counted: Counted) -> None:
    before = counted.with_tools
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": "Find the city stored under the key 'alpha', then get the weather there.",
        },
    ]
    first = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    call: Any
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {
        "key": "alpha"
    }
    messages += [choice.message.model_dump(exclude_none=True)]
    messages += [
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": run_tool("lookup", call.function.arguments),
        }
    ]

    # the second step, streamed: its argument can only come from the first tool's result
    stream: Any = client.chat.completions.create(
        model="agent", messages=messages, tools=TOOLS, stream=True
    )
    pieces: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            for piece in c.delta.tool_calls or ():
                slot = pieces.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += piece.id or ""
                slot["name"] += (piece.function.name or "") if piece.function else ""
                slot["arguments"] += (piece.function.arguments or "") if piece.function else ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    (second,) = pieces.values()
    assert second["name"] == "get_weather" and json.loads(second["arguments"]) == {"city": CITY}
    assert counted.with_tools - before == 2  # the model itself made both calls

    # the result goes back without tools: the answer is text that uses it
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": second["id"],
                    "type": "function",
                    "function": {"name": second["name"], "arguments": second["arguments"]},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": second["id"],
            "content": run_tool("get_weather", second["arguments"]),
        },
    ]
    final = client.chat.completions.create(model="agent", messages=messages)
    assert final.choices[0].finish_reason in ("stop", "length")
    text = final.choices[0].message.content or ""
    assert "14" in text or "rain" in text.lower(), text


def test_one_answer_with_parallel_calls(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": "Get the weather in Paris and the weather in Oslo."}
    ]
    reply = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS)
    calls: list[Any] = list(reply.choices[0].message.tool_calls or [])
    assert reply.choices[0].finish_reason == "tool_calls"
    assert sorted(json.loads(c.function.arguments)["city"] for c in calls) == ["Oslo", "Paris"]
    assert len({c.id for c in calls}) == 2


class Weather(BaseModel):
    city: str
    celsius: int


def test_parse_into_a_pydantic_model(client: openai.OpenAI) -> None:
    parsed = client.chat.completions.parse(
        model="small",
        messages=[
            {
                "role": "user",
                "content": "It is 21 degrees Celsius in Lisbon. Give the city and temperature.",
            }
        ],
        response_format=Weather,
    )
    assert parsed.choices[0].message.parsed == Weather(city="Lisbon", celsius=21)


async def test_an_agents_sdk_agent_with_two_tools_runs_to_its_final_output(
    server: ServerThread, counted: Counted
) -> None:
    set_tracing_disabled(True)
    seen: list[tuple[str, str]] = []

    @function_tool
    def lookup(key: str) -> str:
        """Look up the value stored under a key."""
        seen.append(("lookup", key))
        return run_tool("lookup", json.dumps({"key": key}))

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        seen.append(("get_weather", city))
        return run_tool("get_weather", json.dumps({"city": city}))

    client = openai.AsyncOpenAI(
        base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=600
    )
    agent = Agent(
        name="weather",
        instructions=SYSTEM,
        tools=[lookup, get_weather],
        model=OpenAIResponsesModel(model="agent", openai_client=client),
    )
    before = counted.with_tools
    try:
        result = await Runner.run(
            agent,
            "Find the city stored under the key 'alpha', then get the weather there.",
            max_turns=5,
        )
    finally:
        await client.close()
    assert seen == [("lookup", "alpha"), ("get_weather", CITY)]
    assert counted.with_tools - before >= 3  # two calls and the final answer, all the model's
    # the final output is the model's text, and names what only the tools' results said
    assert CITY in str(result.final_output)
