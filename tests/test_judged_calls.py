"""Judges are calls like any other: retried, traced, redacted."""

from __future__ import annotations

from pathlib import Path

from moa import FakeBackend, MoA
from moa.errors import BackendTimeout
from moa.evals.runner import Harness


async def test_a_judge_is_retried_like_any_call(tmp_path: Path) -> None:
    fake = FakeBackend().enqueue("judge", BackendTimeout("slow"), "[[A]]")
    h = Harness(out_dir=tmp_path, cache=False, backends={"fake": fake}, progress=False)
    h.judge_retry = h.judge_retry.model_copy(update={"backoff": 0})
    call, _ = await h.judge("fake:judge", "which is better?", max_tokens=8)
    assert call.text == "[[A]]" and [a.error_type for a in call.attempts] == [
        "BackendTimeout",
        None,
    ]
    await h.aclose()


async def test_traces_show_base_urls_without_credentials() -> None:
    fake = FakeBackend()
    url = "http://user:secret@127.0.0.1:9/v1?token=abc"
    data = {
        "layers": [[{"model": f"vllm:m@{url}", "fallbacks": ["fake:b"]}]],
        "aggregator": "fake:agg",
        "retry": {"attempts": 1},
        "timeout": 2,
    }
    async with MoA(data, backends={"fake": fake}, env={}) as moa:
        result = await moa.arun("hi")
    text = result.trace.to_json()
    assert "secret" not in text and "token=abc" not in text
    assert "vllm:m@http://***@127.0.0.1:9/v1?***" in text  # the failed first try, redacted
