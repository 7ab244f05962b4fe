"""Other real clients through the server, and a recipe of a real local model (SmolLM2)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import openai
import pytest

pytest.importorskip("fastapi")

from moa.server import create_app
from moa.server.testing import ServerThread

SMOL = "local:smollm2-135m-instruct"
SMOL_RECIPE: dict[str, Any] = {
    "description": "SmolLM2 proposing and aggregating",
    "layers": [[SMOL]],
    "aggregator": SMOL,
    "proposer_defaults": {"temperature": 0, "max_tokens": 16},
    "aggregator_defaults": {"temperature": 0, "max_tokens": 16},
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(
        create_app(api_key="key-1", recipes={"smol": SMOL_RECIPE}, demo=True)
    ) as running:
        yield running


def test_langchain_chat_openai_invoke_and_stream(server: ServerThread) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(
        model="fake", base_url=server.url + "/v1", api_key="key-1", max_retries=0
    )
    reply = llm.invoke("What is 17 * 23?")
    assert reply.content == "[aggregator] synthesis of 3 responses to: What is 17 * 23?"
    assert reply.usage_metadata is not None and reply.usage_metadata["total_tokens"] > 0
    streamed = "".join(str(chunk.content) for chunk in llm.stream("What is 17 * 23?"))
    assert streamed == reply.content


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp is not installed"
)
def test_real_local_model_through_the_openai_client(server: ServerThread) -> None:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="key-1", max_retries=0) as client:
        r = client.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": "Name a primary colour."}],
            extra_body={"moa": {"include_trace": True}},
        )
        text = r.choices[0].message.content
        assert text and text.strip()
        trace = (r.model_extra or {})["moa"]["trace"]
        assert [c["role"] for c in trace["calls"]] == ["proposer", "aggregator"]
        assert all(c["output_tokens"] > 0 for c in trace["calls"])
        assert r.usage is not None
        assert r.usage.prompt_tokens == trace["totals"]["input_tokens"] > 0
        assert r.usage.completion_tokens == trace["totals"]["output_tokens"] > 0

        stream = client.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": "Name a primary colour."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        pieces = [c.choices[0].delta.content for c in chunks if c.choices]
        assert len([p for p in pieces if p]) > 1  # token by token, not one block
        assert "".join(p or "" for p in pieces) == text  # temperature 0: the same answer
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
