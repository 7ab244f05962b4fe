"""The in-process llama.cpp backend with tools and schemas, on the real 0.5B coding model:
the model's own call read from its text, a forced call held to the call schema, a
`json_schema` answer decoded under the engine's grammar, and a recipe's logprobs beside tools
(the engine refuses the two together; the `local` recipe asks for both)."""

from __future__ import annotations

import json

import pytest
from llama_server import needs_llama_cpp

from moa import catalog
from moa.backends.llamacpp import LlamaCppBackend
from moa.toolcalls import finished
from moa.tools import make_act
from moa.types import Message, Request, Settings

pytestmark = [needs_llama_cpp, pytest.mark.slow]

LOOKUP = {
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
}
QUESTION = (Message("user", "What value is stored under the key 'alpha'?"),)


@pytest.fixture(scope="module")
def path() -> str:
    return str(catalog.ensure("qwen2.5-coder-0.5b-instruct", auto_pull=True))


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    return LlamaCppBackend(n_ctx=2048, parallel=1)


async def test_a_call_the_model_writes_as_text_is_read_with_logprobs_asked(
    backend: LlamaCppBackend, path: str
) -> None:
    act = make_act(tools=[LOOKUP])
    settings = Settings(temperature=0, max_tokens=48, logprobs=True)  # as the local recipe asks
    done = finished(
        await backend.complete(Request(model=path, messages=QUESTION, settings=settings, act=act)),
        act,
        "m",
    )
    assert [(c.name, json.loads(c.arguments)) for c in done.tool_calls] == [
        ("lookup", {"key": "alpha"})
    ]
    assert done.finish_reason == "tool_calls"


async def test_a_required_call_is_held_to_the_schema_and_ends(
    backend: LlamaCppBackend, path: str
) -> None:
    act = make_act(tools=[LOOKUP], tool_choice="required")
    settings = Settings(temperature=0, max_tokens=48)
    raw = await backend.complete(Request(model=path, messages=QUESTION, settings=settings, act=act))
    assert raw.finish_reason == "stop" and raw.usage.output_tokens < 48  # no blank lines to the end
    done = finished(raw, act, "m")
    assert [c.name for c in done.tool_calls] == ["lookup"]


async def test_a_json_schema_answer_is_decoded_valid(backend: LlamaCppBackend, path: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
        "required": ["city", "celsius"],
    }
    act = make_act(
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}}
    )
    messages = (
        Message("user", "It is 21 degrees Celsius in Lisbon. Give the city and temperature."),
    )
    raw = await backend.complete(
        Request(
            model=path, messages=messages, settings=Settings(temperature=0, max_tokens=48), act=act
        )
    )
    assert json.loads(finished(raw, act, "m").text) == {"city": "Lisbon", "celsius": 21}
