"""The in-process llama.cpp backend (xllamacpp), with the real SmolLM2 file (few tokens)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from pathlib import Path

import pytest
from llama_server import needs_llama_cpp

from moa.backends.base import Backend
from moa.backends.llamacpp import (
    LlamaCppBackend,
    engine_metrics,
    load_stats,
    loaded_models,
    unload_all,
)
from moa.errors import BackendTimeout, ConfigError, ContextLengthError, ModelNotAvailable
from moa.types import Delta, Request, Settings, system, user

pytestmark = [needs_llama_cpp, pytest.mark.slow]

GREEDY = Settings(temperature=0, max_tokens=16)
LONG = Settings(temperature=0, max_tokens=400)
# One thread: on a busy 2-core machine, llama.cpp's threads make 2 up to 10x slower.
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


def metric(model: Path, name: str) -> float:
    return engine_metrics(str(model))[name]


@pytest.fixture(params=[4, 1], ids=["slots4", "slot1"])
def backend(request: pytest.FixtureRequest) -> LlamaCppBackend:
    return LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=request.param)


@pytest.fixture
def slots4() -> LlamaCppBackend:
    return LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=4)


async def test_is_a_backend(backend: LlamaCppBackend) -> None:
    assert isinstance(backend, Backend)


async def test_complete_returns_text_and_real_usage(
    backend: LlamaCppBackend, smollm2_path: Path
) -> None:
    result = await backend.complete(ask(smollm2_path, "What is the capital of France?"))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert 10 < result.usage.input_tokens < 60
    assert 0 < result.usage.output_tokens <= 16
    assert result.logprobs is None  # not asked for
    assert backend.count_tokens(str(smollm2_path), "Paris is the capital") == 4
    assert backend.context_window(str(smollm2_path)) == 2048


async def test_stream_matches_complete(backend: LlamaCppBackend, smollm2_path: Path) -> None:
    request = ask(smollm2_path, "Name three colours.")
    whole = await backend.complete(request)
    deltas = [d async for d in backend.stream(request)]
    assert len(deltas) > 2
    assert all(d.usage is None for d in deltas[:-1])
    assert deltas[-1].usage == whole.usage
    assert deltas[-1].finish_reason == whole.finish_reason
    assert "".join(d.text for d in deltas) == whole.text


async def test_logprobs_of_the_generated_tokens(
    slots4: LlamaCppBackend, smollm2_path: Path
) -> None:
    asked = Settings(temperature=0, max_tokens=12, logprobs=True)
    result = await slots4.complete(ask(smollm2_path, "Name three colours.", asked))
    assert result.logprobs is not None
    assert len(result.logprobs) == result.usage.output_tokens == 12
    assert all(p <= 0 for p in result.logprobs) and any(p < 0 for p in result.logprobs)
    plain = await slots4.complete(ask(smollm2_path, "Name three colours."))
    assert plain.text.startswith(result.text[:10])  # asking for them changes no answer


@pytest.fixture
def real_path(smollm2_path: Path) -> str:
    return os.path.realpath(smollm2_path)


async def test_one_load_per_file_across_backends(smollm2_path: Path, real_path: str) -> None:
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


async def test_one_slot_serves_concurrent_requests_in_turn(smollm2_path: Path) -> None:
    one = LlamaCppBackend(n_ctx=2048, n_threads=THREADS, parallel=1)
    answers, switches = await _interleaving(one, smollm2_path)
    assert all(answers)
    assert switches == 1  # one whole answer, then the other


async def test_slots_decode_concurrent_requests_together(
    slots4: LlamaCppBackend, smollm2_path: Path
) -> None:
    answers, switches = await _interleaving(slots4, smollm2_path)
    assert switches > 2  # token by token, side by side
    alone = [
        (await slots4.complete(ask(smollm2_path, p))).text
        for p in ("Count to five.", "Name a fruit.")
    ]
    # greedy answers do not depend on the company they keep: a KV cache per slot, and SmolLM2's
    # Q4_1 weights go through the same dot products for one row as for several (a repacked
    # Q4_K model's batched kernels round differently: docs/performance.md)
    assert answers == alone


async def test_samples_share_their_prompt_and_keep_their_seeds(
    slots4: LlamaCppBackend, smollm2_path: Path
) -> None:
    prompt = "Invent a name for a cat, and say why."

    def sample(seed: int) -> Request:
        return ask(smollm2_path, prompt, Settings(temperature=0.9, seed=seed, max_tokens=12))

    await slots4.complete(ask(smollm2_path, "Say hi."))  # loaded, and the slots' caches busy
    before = metric(smollm2_path, "prompt_tokens_total")
    together = await asyncio.gather(*(slots4.complete(sample(s)) for s in (7, 8, 9)))
    processed = metric(smollm2_path, "prompt_tokens_total") - before
    prompt_tokens = together[0].usage.input_tokens
    assert processed <= prompt_tokens  # once for the three (a cached prefix may save more)
    alone = [(await slots4.complete(sample(s))).text for s in (7, 8, 9)]
    assert [r.text for r in together] == alone  # each seed gives its own lone answer
    assert len(set(alone)) > 1


async def test_stop_strings_and_length(slots4: LlamaCppBackend, smollm2_path: Path) -> None:
    counting = ask(smollm2_path, "Count from 1 to 10, separated by commas.")
    full = await slots4.complete(counting)
    assert "4" in full.text
    cut = await slots4.complete(
        ask(
            smollm2_path,
            "Count from 1 to 10, separated by commas.",
            Settings(temperature=0, max_tokens=16, stop=("4",)),
        )
    )
    assert "4" not in cut.text and full.text.startswith(cut.text)
    assert cut.finish_reason == "stop"
    short = await slots4.complete(
        ask(smollm2_path, "Write a long story.", Settings(temperature=0, max_tokens=5))
    )
    assert short.finish_reason == "length" and short.usage.output_tokens == 5


async def test_cancelling_a_stream_stops_its_slot(
    backend: LlamaCppBackend, smollm2_path: Path
) -> None:
    await backend.complete(ask(smollm2_path, "Say hi."))
    before = metric(smollm2_path, "tokens_predicted_total")
    got: list[Delta] = []
    started = asyncio.Event()

    async def consume() -> None:
        async for delta in backend.stream(ask(smollm2_path, "Write a long story.", LONG)):
            got.append(delta)
            if len(got) == 4:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await backend.complete(ask(smollm2_path, "Say hi."))
    assert result.text
    # the story had about 390 tokens to go: the engine generated only a few of them
    spent = metric(smollm2_path, "tokens_predicted_total") - before - result.usage.output_tokens
    assert spent < 60, spent


async def test_closing_a_stream_early_frees_the_model(
    backend: LlamaCppBackend, smollm2_path: Path
) -> None:
    stream = backend.stream(ask(smollm2_path, "Write a long story.", Settings(max_tokens=400)))
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    start = time.monotonic()
    result = await backend.complete(ask(smollm2_path, "Say hi."))
    assert result.text
    assert time.monotonic() - start < 30


async def test_a_too_long_prompt_is_a_context_error(smollm2_path: Path) -> None:
    small = LlamaCppBackend(n_ctx=256, n_threads=THREADS)
    assert small.context_window(str(smollm2_path)) == 256
    with pytest.raises(ContextLengthError, match="context window is 256"):
        await small.complete(ask(smollm2_path, "word " * 400))


async def test_seed_makes_sampling_reproducible(
    backend: LlamaCppBackend, smollm2_path: Path
) -> None:
    hot = Settings(temperature=1.0, seed=1234, max_tokens=16)
    one = await backend.complete(ask(smollm2_path, "Invent a name for a cat.", hot))
    two = await backend.complete(ask(smollm2_path, "Invent a name for a cat.", hot))
    assert one.text == two.text


async def test_request_timeout(backend: LlamaCppBackend, smollm2_path: Path) -> None:
    with pytest.raises(BackendTimeout):
        await backend.complete(ask(smollm2_path, "Write a long story.", LONG, timeout=0.3))
    result = await backend.complete(ask(smollm2_path, "Say hi.", timeout=30))
    assert result.text


async def test_a_missing_file(backend: LlamaCppBackend, tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="no such GGUF file"):
        await backend.complete(ask(tmp_path / "nothing.gguf", "hi"))
    assert backend.context_window(str(tmp_path / "nothing.gguf")) == 2048


@pytest.fixture
def broken(smollm2_path: Path, tmp_path: Path) -> Path:
    """A download cut short."""
    path = tmp_path / "broken.gguf"
    path.write_bytes(smollm2_path.read_bytes()[:3_000_000])
    return path


async def test_a_corrupt_file_is_one_clear_line(
    slots4: LlamaCppBackend, broken: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelNotAvailable) as info:
        await slots4.complete(ask(broken, "hi"))
    assert str(broken) in str(info.value) and "\n" not in str(info.value)
    assert "could not load" in str(info.value)
    assert capfd.readouterr().err == ""  # llama.cpp said nothing of its own


async def test_llama_cpp_is_silent_unless_debugging(
    smollm2_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    unload_all()
    quiet = LlamaCppBackend(n_ctx=512, n_threads=THREADS)
    await quiet.complete(ask(smollm2_path, "Say hi."))
    assert capfd.readouterr() == ("", "")
    unload_all()
    monkeypatch.setenv("MOA_DEBUG", "1")
    await quiet.complete(ask(smollm2_path, "Say hi."))
    assert "llama" in capfd.readouterr().err.lower()
    unload_all()


def test_without_the_engine_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(ConfigError, match=r"mixture-of-agents\[local\]"):
        LlamaCppBackend()
