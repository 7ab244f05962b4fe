"""The in-process llama.cpp backend, with the real SmolLM2 file (greedy, few tokens)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from pathlib import Path

import pytest
from llama_server import needs_llama_cpp, smollm2_path  # noqa: F401  (fixture)

from moa.backends.base import Backend
from moa.backends.llamacpp import LlamaCppBackend, load_stats, loaded_models, unload_all
from moa.errors import BackendTimeout, ConfigError, ContextLengthError, ModelNotAvailable
from moa.types import Delta, Request, Settings, system, user

pytestmark = [needs_llama_cpp, pytest.mark.slow]

GREEDY = Settings(temperature=0, max_tokens=16)
# One thread: on a busy 2-core machine, llama.cpp's spinning threads make 2 up to 10x slower.
THREADS = 1


def ask(
    model: Path, prompt: str, settings: Settings = GREEDY, timeout: float | None = None
) -> Request:
    return Request(
        model=str(model),
        messages=[system("Answer briefly."), user(prompt)],
        settings=settings,
        timeout=timeout,
    )


@pytest.fixture(params=[4, 1], ids=["batched", "plain"])
def backend(request: pytest.FixtureRequest) -> LlamaCppBackend:
    return LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=request.param)


async def test_is_a_backend(backend: LlamaCppBackend) -> None:
    assert isinstance(backend, Backend)


async def test_complete_returns_text_and_real_usage(
    backend: LlamaCppBackend,
    smollm2_path: Path,  # noqa: F811
) -> None:
    result = await backend.complete(ask(smollm2_path, "What is the capital of France?"))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert 10 < result.usage.input_tokens < 60
    assert 0 < result.usage.output_tokens <= 16 + 1
    assert backend.count_tokens(str(smollm2_path), "Paris is the capital") == 4


async def test_stream_matches_complete(backend: LlamaCppBackend, smollm2_path: Path) -> None:  # noqa: F811
    request = ask(smollm2_path, "Name three colours.")
    whole = await backend.complete(request)
    deltas = [d async for d in backend.stream(request)]
    assert len(deltas) > 2
    assert all(d.usage is None for d in deltas[:-1])
    assert deltas[-1].usage == whole.usage
    assert deltas[-1].finish_reason == whole.finish_reason
    assert "".join(d.text for d in deltas) == whole.text


@pytest.fixture
def real_path(smollm2_path: Path) -> str:  # noqa: F811
    return os.path.realpath(smollm2_path)


async def test_one_load_per_file_across_backends(
    smollm2_path: Path,  # noqa: F811
    real_path: str,
) -> None:
    unload_all()
    real = real_path
    before = load_stats().get(real, 0)
    first, second = (
        LlamaCppBackend(n_ctx=2048, n_threads=THREADS),
        LlamaCppBackend(n_ctx=2048, n_threads=THREADS),
    )
    assert first.count_tokens(str(smollm2_path), "hello") is None  # not loaded just to count
    answers = await asyncio.gather(
        first.complete(ask(smollm2_path, "Say hi.")),
        second.complete(ask(smollm2_path, "Say bye.")),
        first.complete(ask(smollm2_path, "Say yes.")),
    )
    assert all(a.text for a in answers)
    assert load_stats()[real] == before + 1
    assert loaded_models() == [(real, 2048)]
    await first.aclose()
    assert loaded_models() == [(real, 2048)]  # aclose keeps the shared model


async def _interleaving(backend: LlamaCppBackend, model: Path) -> tuple[list[str], int]:
    seen: list[str] = []

    async def run(tag: str, prompt: str) -> str:
        parts = []
        async for delta in backend.stream(ask(model, prompt)):
            seen.append(tag)
            parts.append(delta.text)
        return "".join(parts)

    answers = await asyncio.gather(run("a", "Count to five."), run("b", "Name a fruit."))
    return list(answers), sum(1 for x, y in itertools.pairwise(seen) if x != y)


async def test_plain_path_serializes_concurrent_requests(smollm2_path: Path) -> None:  # noqa: F811
    plain = LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=1)
    answers, switches = await _interleaving(plain, smollm2_path)
    assert all(answers)
    assert switches == 1  # one whole answer, then the other


async def test_batched_path_decodes_concurrent_requests_together(
    smollm2_path: Path,  # noqa: F811
) -> None:
    batched = LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=4)
    answers, switches = await _interleaving(batched, smollm2_path)
    assert switches > 2  # token by token, side by side
    alone = [
        (await batched.complete(ask(smollm2_path, p))).text
        for p in ("Count to five.", "Name a fruit.")
    ]
    assert answers == alone  # greedy answers do not depend on the company they keep


async def test_batched_stop_strings_and_length(smollm2_path: Path) -> None:  # noqa: F811
    batched = LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=4)
    counting = ask(smollm2_path, "Count from 1 to 10, separated by commas.")
    full = await batched.complete(counting)
    assert "4" in full.text
    cut = await batched.complete(
        ask(
            smollm2_path,
            "Count from 1 to 10, separated by commas.",
            Settings(temperature=0, max_tokens=16, stop=("4",)),
        )
    )
    assert "4" not in cut.text and full.text.startswith(cut.text)
    assert cut.finish_reason == "stop"
    short = await batched.complete(
        ask(smollm2_path, "Write a long story.", Settings(temperature=0, max_tokens=5))
    )
    assert short.finish_reason == "length" and short.usage.output_tokens == 5


async def test_cancelling_a_stream_frees_the_model(
    backend: LlamaCppBackend,
    smollm2_path: Path,  # noqa: F811
) -> None:
    long = Settings(temperature=0, max_tokens=400)
    got: list[Delta] = []
    started = asyncio.Event()

    async def consume() -> None:
        async for delta in backend.stream(ask(smollm2_path, "Write a long story.", long)):
            got.append(delta)
            if len(got) == 4:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    first = time.monotonic()
    while len(got) < 8:  # noqa: ASYNC110  (measure this machine's speed, whatever its load)
        await asyncio.sleep(0.005)
    per_token = (time.monotonic() - first) / 4
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    start = time.monotonic()
    result = await backend.complete(ask(smollm2_path, "Say hi."))
    assert result.text
    # the story had about 390 tokens to go; the next answer must not have waited for them
    assert time.monotonic() - start < 150 * per_token + 1


async def test_closing_a_stream_early_frees_the_model(
    backend: LlamaCppBackend,
    smollm2_path: Path,  # noqa: F811
) -> None:
    stream = backend.stream(ask(smollm2_path, "Write a long story.", Settings(max_tokens=400)))
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    result = await backend.complete(ask(smollm2_path, "Say hi."))
    assert result.text


async def test_a_too_long_prompt_is_a_context_error(smollm2_path: Path) -> None:  # noqa: F811
    small = LlamaCppBackend(n_ctx=256, n_threads=THREADS)
    assert small.context_window(str(smollm2_path)) == 256
    with pytest.raises(ContextLengthError, match="context window is 256"):
        await small.complete(ask(smollm2_path, "word " * 400))


async def test_seed_makes_sampling_reproducible(
    backend: LlamaCppBackend,
    smollm2_path: Path,  # noqa: F811
) -> None:
    hot = Settings(temperature=1.0, seed=1234, max_tokens=16)
    one = await backend.complete(ask(smollm2_path, "Invent a name for a cat.", hot))
    two = await backend.complete(ask(smollm2_path, "Invent a name for a cat.", hot))
    assert one.text == two.text


async def test_request_timeout(backend: LlamaCppBackend, smollm2_path: Path) -> None:  # noqa: F811
    slow = Settings(temperature=0, max_tokens=400)
    with pytest.raises(BackendTimeout):
        await backend.complete(ask(smollm2_path, "Write a long story.", slow, timeout=0.3))
    result = await backend.complete(ask(smollm2_path, "Say hi."))
    assert result.text


async def test_a_missing_file(backend: LlamaCppBackend, tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="no such GGUF file"):
        await backend.complete(ask(tmp_path / "nothing.gguf", "hi"))
    assert backend.context_window(str(tmp_path / "nothing.gguf")) == 2048


def test_without_llama_cpp_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ConfigError, match=r"mixture-of-agents\[local\]"):
        LlamaCppBackend()
