"""The OpenAI-compatible backend against a real server on loopback: llama.cpp's own
`llama-server` (as xllamacpp builds it) serving SmolLM2."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llama_server import LlamaServer, free_port, needs_llama_cpp

from moa.backends.openai_compat import OpenAICompatBackend
from moa.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeout,
    ContextLengthError,
    should_retry,
)
from moa.types import Request, Settings, user

pytestmark = [needs_llama_cpp, pytest.mark.slow]

GREEDY = Settings(temperature=0, max_tokens=16)


def ask(
    server: LlamaServer, prompt: str, settings: Settings = GREEDY, timeout: float | None = None
) -> Request:
    return Request(model=server.model, messages=[user(prompt)], settings=settings, timeout=timeout)


@pytest.fixture
async def backend(llama_server: LlamaServer) -> AsyncIterator[OpenAICompatBackend]:
    client = OpenAICompatBackend(base_url=llama_server.base_url, api_key=None, name="llama")
    yield client
    await client.aclose()


async def test_complete(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:
    result = await backend.complete(ask(llama_server, "What is the capital of France?"))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.usage.input_tokens > 5
    assert 0 < result.usage.output_tokens <= 16


async def test_stream(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:
    deltas = [d async for d in backend.stream(ask(llama_server, "Name three colours."))]
    assert len(deltas) > 2
    assert "".join(d.text for d in deltas).strip()
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    last = deltas[-1]
    assert last.finish_reason == "length"  # 16 tokens are not enough for three colours
    assert last.usage is not None and last.usage.output_tokens == 16  # llama-server sends usage


async def test_a_bad_request_has_a_status(
    backend: OpenAICompatBackend, llama_server: LlamaServer
) -> None:
    # what our own Settings would refuse, sent anyway: the server's 400 must come through
    unchecked = Settings.model_construct(max_tokens=-3)
    with pytest.raises(BackendError) as info:
        await backend.complete(ask(llama_server, "hi", unchecked))
    assert info.value.status == 400
    assert "max_tokens" in str(info.value)
    assert info.value.model == llama_server.model


async def test_a_closed_port_is_a_connection_error() -> None:
    client = OpenAICompatBackend(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=None)
    try:
        with pytest.raises(BackendConnectionError):
            await client.complete(Request(model="m", messages=[user("hi")], timeout=5))
    finally:
        await client.aclose()


async def test_a_too_long_prompt(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:
    with pytest.raises(ContextLengthError) as info:
        await backend.complete(ask(llama_server, "word " * 2000))
    assert info.value.status == 400
    assert not should_retry(info.value)


async def test_a_too_long_prompt_streamed(
    backend: OpenAICompatBackend, llama_server: LlamaServer
) -> None:
    # llama-server checks the prompt before it starts the stream: a 400, not an empty stream
    with pytest.raises(ContextLengthError):
        async for _ in backend.stream(ask(llama_server, "word " * 2000)):
            pass


async def test_a_short_timeout_and_the_server_moves_on(
    backend: OpenAICompatBackend, llama_server: LlamaServer
) -> None:
    slow = Settings(temperature=0, max_tokens=400)
    with pytest.raises(BackendTimeout):
        await backend.complete(ask(llama_server, "Write a long story.", slow, timeout=0.1))
    # llama-server drops an answer whose client has gone: the next one does not wait for it
    result = await backend.complete(ask(llama_server, "Say hi.", timeout=30))
    assert result.text
