"""Recipes as LiteLLM models through the real `litellm.completion` and `acompletion`, streamed
and not. What LiteLLM reports is checked against the same recipe run by moa itself."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

litellm = pytest.importorskip("litellm")

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from integrations.hosts import free_port  # noqa: E402
from moa import FakeBackend, MoA  # noqa: E402
from moa.errors import BackendError  # noqa: E402
from moa.integrations.litellm import MoALLM, register  # noqa: E402
from moa.recipe import load_recipe  # noqa: E402
from moa.trace import Totals  # noqa: E402

HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]


@pytest.fixture(autouse=True)
def provider(host_env: dict[str, str]) -> Iterator[None]:
    """`moa/NAME` registered for the test (and LiteLLM's callbacks left as they were)."""
    before = (list(litellm.custom_provider_map), list(litellm.callbacks))
    register()
    yield
    litellm.custom_provider_map, litellm.callbacks = before


def moa_totals(recipe: Path, **settings: Any) -> tuple[str, Totals]:
    """The same recipe and messages, run by moa itself (the fake models are deterministic)."""
    with MoA(load_recipe(recipe)) as moa:
        result = moa.run(HI, **settings)
    return result.text, result.trace.totals()


def usage_of(totals: Totals) -> tuple[int, int, int]:
    return totals.input_tokens, totals.output_tokens, totals.total_tokens


def reported(usage: Any) -> tuple[int, int, int]:
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def test_completion_answers_with_the_runs_usage(recipes: Path) -> None:
    answer, totals = moa_totals(recipes / "duo.yaml", temperature=0.2)
    response = litellm.completion(model="moa/duo", messages=HI, temperature=0.2)
    assert response.choices[0].message.content == answer
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "moa/duo"
    assert reported(response.usage) == usage_of(totals) and totals.input_tokens > 0
    layers = response._hidden_params["moa"]["layers"]
    assert [a["agent"] for a in layers[0]["answers"]] == ["fake:a", "fake:b"]


def test_streaming_sends_the_answer_then_the_usage(recipes: Path) -> None:
    answer, totals = moa_totals(recipes / "duo.yaml")
    chunks = list(
        litellm.completion(
            model="moa/duo", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == answer and len([p for p in pieces if p]) > 1
    assert reported(chunks[-1].usage) == usage_of(totals)


async def test_acompletion_and_async_streaming(recipes: Path) -> None:
    answer, totals = await asyncio.to_thread(moa_totals, recipes / "duo.yaml")
    response = await litellm.acompletion(model="moa/duo", messages=HI)
    assert response.choices[0].message.content == answer
    assert reported(response.usage) == usage_of(totals)
    stream = await litellm.acompletion(
        model="moa/duo", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert reported(chunks[-1].usage) == usage_of(totals)


def test_the_cost_litellm_logs_is_the_sum_of_the_calls(recipes: Path) -> None:
    _, totals = moa_totals(recipes / "priced.yaml")
    logged: list[Any] = []

    class Recorder(CustomLogger):
        def log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            logged.append(kwargs.get("response_cost"))

    litellm.callbacks = [Recorder()]
    response = litellm.completion(model="moa/priced", messages=HI)
    assert totals.cost is not None and totals.cost > 0
    assert response._hidden_params["response_cost"] == pytest.approx(totals.cost)
    for _ in range(100):  # LiteLLM logs success in a thread of its own
        if logged:
            break
        time.sleep(0.02)
    assert logged == [pytest.approx(totals.cost)]


@pytest.mark.parametrize(
    ("model", "messages", "problem"),
    [
        ("moa/nope", HI, "unknown recipe 'nope'; known: "),
        ("moa/../../etc/passwd", HI, "unknown recipe"),  # names, never paths
        ("moa/duo", [{"role": "tool", "content": "x"}], "messages[0].role"),
        ("moa/moa-lite", HI, "TOGETHER_API_KEY"),
    ],
)
def test_bad_requests_are_bad_request_errors(
    model: str, messages: list[dict[str, str]], problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    with pytest.raises(litellm.BadRequestError) as caught:
        litellm.completion(model=model, messages=messages)
    assert caught.value.status_code == 400
    assert problem in str(caught.value) and "Traceback" not in str(caught.value)


def test_a_failed_run_is_a_bad_gateway_naming_each_failure() -> None:
    refused = BackendError("refused", status=400)  # not retried
    fake = FakeBackend().fail("a", refused).fail("b", refused)
    register(custom_handler=MoALLM(backends={"fake": fake}))
    with pytest.raises(litellm.BadGatewayError) as caught:
        litellm.completion(model="moa/duo", messages=HI)
    assert caught.value.status_code == 502
    assert "layer 1: 0 of the needed 1 agents answered" in str(caught.value)
    assert "fake:a (fake:a): BackendError: refused" in str(caught.value)


@pytest.mark.slow
async def test_the_local_model_through_litellm(
    recipes: Path, smollm2_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOA_CACHE_DIR")  # the pulled SmolLM2
    monkeypatch.setenv("MOA_THREADS", "1")
    response = await litellm.acompletion(
        model="moa/tiny", messages=[{"role": "user", "content": "Name a colour."}]
    )
    assert (response.choices[0].message.content or "").strip()
    calls = response._hidden_params["moa"]["totals"]
    assert calls["calls"] == 3
    assert reported(response.usage)[:2] == (calls["input_tokens"], calls["output_tokens"])
    assert calls["output_tokens"] > 0


PROXY = os.environ.get("LITELLM_PROXY_BIN")
"""A `litellm` command of an environment with 'litellm[proxy]' and this moa installed. Its
dependencies (about 40 packages, 760 MB, and an older litellm and rich) are not in the dev
extra, so the test runs only where this names one."""


@pytest.mark.slow
@pytest.mark.skipif(PROXY is None, reason="set LITELLM_PROXY_BIN to a litellm[proxy] command")
def test_the_documented_proxy_config_serves_recipes(tmp_path: Path) -> None:
    assert PROXY is not None
    key = "sk-" + secrets.token_hex(24)
    port = free_port()
    env = {**os.environ, "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    config = Path(__file__).resolve().parents[2] / "docs" / "litellm-proxy.yaml"
    log = tmp_path / "proxy.log"
    with log.open("w") as out:
        proxy = subprocess.Popen(
            [PROXY, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=out,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health/liveliness", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        done = subprocess.run(
            [
                "curl",
                "-s",
                "-w",
                "\n%{http_code}",
                f"{base}/v1/chat/completions",
                "-H",
                f"Authorization: Bearer {key}",
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps({"model": "moa-fake", "messages": HI}),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        body, status = done.stdout.rsplit("\n", 1)
        assert status == "200", log.read_text()[-2000:]
        answer = json.loads(body)
        assert answer["choices"][0]["message"]["content"].endswith("to: What is 2 + 2?")
        assert answer["usage"]["prompt_tokens"] > 0
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
