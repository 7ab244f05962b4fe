"""The OpenAI-compatible backend against a real `python -m llama_cpp.server` serving SmolLM2."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llama_server import (  # noqa: F401  (fixtures)
    LlamaServer,
    free_port,
    llama_server,
    needs_llama_cpp,
    smollm2_path,
)

from moa.backends.openai_compat import OpenAICompatBackend
from moa.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeout,
    BadResponse,
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
async def backend(llama_server: LlamaServer) -> AsyncIterator[OpenAICompatBackend]:  # noqa: F811
    client = OpenAICompatBackend(base_url=llama_server.base_url, api_key=None, name="llama")
    yield client
    await client.aclose()


async def test_complete(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:  # noqa: F811
    result = await backend.complete(ask(llama_server, "What is the capital of France?"))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.usage.input_tokens > 5
    assert 0 < result.usage.output_tokens <= 16


async def test_stream(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:  # noqa: F811
    deltas = [d async for d in backend.stream(ask(llama_server, "Name three colours."))]
    assert len(deltas) > 2
    assert "".join(d.text for d in deltas).strip()
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    last = deltas[-1]
    assert last.finish_reason == "length"  # 16 tokens are not enough for three colours
    assert last.usage is not None  # zeros: llama_cpp.server sends no usage in streams


async def test_a_bad_request_has_a_status(
    backend: OpenAICompatBackend,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    with pytest.raises(BackendError) as info:
        await backend.complete(ask(llama_server, "hi", Settings(top_p=5.0, max_tokens=4)))
    # llama_cpp.server answers a request that fails validation with a 500, not a 422
    assert info.value.status == 500
    assert "top_p" in str(info.value)
    assert info.value.model == llama_server.model


async def test_a_closed_port_is_a_connection_error() -> None:
    client = OpenAICompatBackend(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=None)
    try:
        with pytest.raises(BackendConnectionError):
            await client.complete(Request(model="m", messages=[user("hi")], timeout=5))
    finally:
        await client.aclose()


async def test_a_too_long_prompt(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:  # noqa: F811
    with pytest.raises(ContextLengthError) as info:
        await backend.complete(ask(llama_server, "word " * 2000))
    assert info.value.status == 400
    assert not should_retry(info.value)


async def test_a_too_long_prompt_streamed(
    backend: OpenAICompatBackend,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    # llama_cpp.server answers 200 and ends the stream without a word: nothing says why
    with pytest.raises(BadResponse, match="stream ended"):
        async for _ in backend.stream(ask(llama_server, "word " * 2000)):
            pass


async def test_a_short_timeout(backend: OpenAICompatBackend, llama_server: LlamaServer) -> None:  # noqa: F811
    # last in the module: the server finishes the abandoned answer before serving anyone else
    slow = Settings(temperature=0, max_tokens=64)
    with pytest.raises(BackendTimeout):
        await backend.complete(ask(llama_server, "Write a long story.", slow, timeout=0.1))
