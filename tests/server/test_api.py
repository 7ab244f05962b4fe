"""The OpenAI-compatible server, on a real uvicorn on loopback, through the official client."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

pytest.importorskip("fastapi")

from moa import FakeBackend
from moa.errors import BackendError, BackendTimeout
from moa.server import create_app
from moa.server.errors import from_error
from moa.server.testing import ServerThread
from moa.types import Delta, Request

SECRET = "sk-very-secret-value-0123456789"


class FlakyFake(FakeBackend):
    """A fake whose model 'crash' streams two tokens and then loses its connection."""

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        if request.model == "crash":
            self.calls.append((request.model, request))
            yield Delta(text="partial ")
            yield Delta(text="answer ")
            raise BackendError("connection reset by peer", model="fake:crash")
        async for delta in super().stream(request):
            yield delta


RECIPES: dict[str, Any] = {
    "slow": {"layers": [["fake:slow-a", "fake:slow-b"]], "aggregator": "fake:aggregator"},
    "sleepy": {"layers": [["fake:sleepy"]], "aggregator": "fake:aggregator"},
    "broken": {
        "layers": [["fake:bad-a", "fake:bad-b"]],
        "aggregator": "fake:aggregator",
        "retry": {"attempts": 1},
    },
    "timeouts": {
        "layers": [["fake:late-a", "fake:late-b"]],
        "aggregator": "fake:aggregator",
        "retry": {"attempts": 1},
    },
    "deadline": {"layers": [["fake:slow-a"]], "aggregator": "fake:aggregator", "deadline": 0.2},
    "midstream": {
        "layers": [["fake:alpha"]],
        "aggregator": "fake:crash",
        "retry": {"attempts": 1},
    },
    "pinned": {
        "layers": [["fake:alpha"]],
        "aggregator": {"model": "fake:pinned", "temperature": 0.1},
    },
    "needs-key": {"layers": [], "aggregator": "together:meta-llama/Llama-3.3-70B-Instruct-Turbo"},
    "leaky": {
        "providers": {"leaky": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "LEAKY_KEY"}},
        "layers": [["leaky:m1"]],
        "aggregator": "leaky:m2",
        "retry": {"attempts": 1},
    },
}


def make_fake() -> FlakyFake:
    fake = FlakyFake()
    fake.latency("slow-a", 5.0).latency("slow-b", 5.0).latency("sleepy", 0.7)
    fake.fail("bad-a", BackendError("HTTP 500 from upstream", model="fake:bad-a", status=500))
    fake.fail("bad-b", BackendError("HTTP 503 from upstream", model="fake:bad-b", status=503))
    fake.fail("late-a", BackendTimeout("no answer within 30s", model="fake:late-a"))
    fake.fail("late-b", BackendTimeout("no answer within 30s", model="fake:late-b"))
    return fake


@pytest.fixture(scope="module")
def fake() -> FlakyFake:
    return make_fake()


@pytest.fixture(scope="module")
def server(fake: FlakyFake) -> Iterator[ServerThread]:
    app = create_app(
        api_key="",
        recipes=RECIPES,
        backends={"fake": fake},
        env={"LEAKY_KEY": SECRET},
        demo=True,
    )
    with ServerThread(app) as running:
        yield running


@pytest.fixture(scope="module")
def limited(fake: FlakyFake) -> Iterator[ServerThread]:
    """A server with a key, one run at a time, a 4 KB body limit and quick keep-alives."""
    app = create_app(
        api_key="sekret",
        recipes=RECIPES,
        backends={"fake": fake},
        max_concurrent_runs=1,
        max_body_bytes=4096,
        keepalive_s=0.2,
        demo=True,
    )
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as c:
        yield c


def ask(text: str = "What is 17 * 23?") -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def post(server: ServerThread, body: Any, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("timeout", 10)
    return httpx.post(server.url + "/v1/chat/completions", json=body, **kwargs)


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event name, data) of every event of a raw SSE body; comments dropped."""
    out = []
    for block in raw.split("\n\n"):
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            out.append((event, "\n".join(data)))
    return out


def wait_until(check: Any, timeout: float = 5.0) -> None:
    until = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < until, "timed out waiting"
        time.sleep(0.02)


def assert_idle(server: ServerThread) -> None:
    """No run in progress and no engine or response task left on the server's loop."""
    wait_until(lambda: httpx.get(server.url + "/health").json()["active_runs"] == 0)
    busy = ("MoA.", "RunResponse", "ticking", "_next", "_disconnected")
    wait_until(lambda: not [t for t in server.running_tasks() if t.startswith(busy)])


# the official client: non-streaming ---------------------------------------------------------
def test_completion_has_answer_and_usage_summed_over_every_call(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="fake", messages=ask(), extra_body={"moa": {"include_trace": True}}
    )
    assert r.object == "chat.completion"
    assert r.model == "fake"
    assert r.id.startswith("chatcmpl-")
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "[aggregator] synthesis of 3 responses to: What is 17 * 23?"
    assert choice.finish_reason == "stop"
    trace = (r.model_extra or {})["moa"]["trace"]
    assert len(trace["calls"]) == 4
    totals = trace["totals"]
    assert r.usage is not None
    assert r.usage.prompt_tokens == totals["input_tokens"] > 0
    assert r.usage.completion_tokens == totals["output_tokens"] > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_no_trace_unless_asked(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="fake", messages=ask())
    assert "moa" not in (r.model_extra or {})


def test_temperature_and_max_tokens_reach_the_aggregator_only(
    client: openai.OpenAI, fake: FlakyFake
) -> None:
    r = client.chat.completions.create(
        model="fake", messages=ask("count to ten please"), temperature=0.3, max_tokens=3
    )
    assert r.choices[0].message.content == "[aggregator] synthesis of"
    assert r.choices[0].finish_reason == "length"
    assert fake.requests("aggregator")[-1].settings.temperature == 0.3
    assert fake.requests("aggregator")[-1].settings.max_tokens == 3
    assert fake.requests("alpha")[-1].settings.temperature == 0.7


def test_top_p_seed_and_stop_reach_the_aggregator(client: openai.OpenAI, fake: FlakyFake) -> None:
    client.chat.completions.create(model="fake", messages=ask("x"), top_p=0.5, seed=42, stop="END")
    settings = fake.requests("aggregator")[-1].settings
    assert (settings.top_p, settings.seed, settings.stop) == (0.5, 42, ("END",))
    assert fake.requests("alpha")[-1].settings.seed is None


def test_max_completion_tokens_is_accepted(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="fake", messages=ask(), max_completion_tokens=2)
    assert r.choices[0].message.content == "[aggregator] synthesis"


def test_a_recipe_that_pins_the_temperature_keeps_it(
    client: openai.OpenAI, fake: FlakyFake
) -> None:
    client.chat.completions.create(model="pinned", messages=ask(), temperature=1.5)
    assert fake.requests("pinned")[-1].settings.temperature == 0.1


def test_multi_turn_with_system_and_developer_messages(
    client: openai.OpenAI, fake: FlakyFake
) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "And "}, {"type": "text", "text": "3+3?"}],
        },
    ]
    r = client.chat.completions.create(model="fake", messages=messages)
    assert r.choices[0].message.content.endswith("And 3+3?")  # type: ignore[union-attr]
    proposer = fake.requests("alpha")[-1]
    assert [(m.role, m.content) for m in proposer.messages] == [
        ("system", "Be brief."),
        ("user", "What is 2+2?"),
        ("assistant", "4"),
        ("user", "And 3+3?"),
    ]
    aggregator = fake.requests("aggregator")[-1]
    assert [m.role for m in aggregator.messages] == ["system", "user", "assistant", "user"]
    assert aggregator.messages[0].content.startswith("Be brief.")
    assert "Responses from models:" in aggregator.messages[0].content

    client.chat.completions.create(
        model="fake", messages=[{"role": "developer", "content": "Be kind."}, *ask()]
    )
    assert fake.requests("alpha")[-1].messages[0].content == "Be kind."


# the official client: streaming -------------------------------------------------------------
def test_stream_sends_one_chunk_per_token_then_finish_usage_and_done(
    client: openai.OpenAI, server: ServerThread
) -> None:
    stream = client.chat.completions.create(
        model="fake", messages=ask(), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    first, *tokens, final, usage = chunks
    tokens = [c for c in tokens if c.choices[0].delta.content is not None]  # not progress
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert [c.choices[0].delta.role for c in tokens] == [None] * len(tokens)
    text = "".join(c.choices[0].delta.content or "" for c in tokens)
    assert text == "[aggregator] synthesis of 3 responses to: What is 17 * 23?"
    assert len(tokens) == len(text.split())  # one chunk per token of the aggregator
    assert final.choices[0].finish_reason == "stop"
    assert usage.choices == [] and usage.usage is not None
    plain = client.chat.completions.create(model="fake", messages=ask())
    assert plain.usage is not None
    assert usage.usage.prompt_tokens == plain.usage.prompt_tokens
    assert usage.usage.completion_tokens == plain.usage.completion_tokens

    raw = post(server, {"model": "fake", "messages": ask(), "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.endswith("data: [DONE]\n\n")
    assert "event:" not in raw.text  # a plain client gets no extension events
    assert '"usage"' not in raw.text  # nor usage when it did not ask


def test_stream_with_progress_events_is_parsed_by_the_openai_client(
    client: openai.OpenAI,
) -> None:
    stream = client.chat.completions.create(
        model="fake",
        messages=ask(),
        stream=True,
        extra_body={"moa": {"events": True, "include_trace": True}},
    )
    text, progress = "", []
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        else:
            progress.append((chunk.model_extra or {})["moa"])
    assert text.startswith("[aggregator] synthesis of 3 responses")
    kinds = [p["type"] for p in progress]
    assert kinds[0] == "run.started"
    assert progress[0]["layers"] == [
        [{"agent": f"fake:{n}", "model": f"fake:{n}"} for n in ("alpha", "beta", "gamma")]
    ]
    assert kinds.count("agent.started") == 4 and kinds.count("agent.finished") == 4
    assert "layer.finished" in kinds
    assert kinds[-1] == "run.trace"
    finished = [p for p in progress if p["type"] == "agent.finished" and p["role"] == "proposer"]
    assert {p["text"] for p in finished} == {
        f"[{n}] answer to: What is 17 * 23?" for n in ("alpha", "beta", "gamma")
    }
    assert all(p["ok"] and p["output_tokens"] > 0 and p["latency_s"] >= 0 for p in finished)
    assert len(progress[-1]["trace"]["calls"]) == 4


def test_progress_events_are_named_sse_events(server: ServerThread) -> None:
    body = {"model": "fake", "messages": ask(), "stream": True, "moa": {"events": True}}
    events = sse_events(post(server, body).text)
    names = [e for e, _ in events]
    assert names[0] == "moa.run"
    assert {"moa.run", "moa.agent", "moa.layer", None} == set(names)
    for name, data in events:
        if name is not None:
            chunk = json.loads(data)
            assert chunk["object"] == "chat.completion.chunk" and chunk["choices"] == []


async def test_async_client_stream_and_not(server: ServerThread) -> None:
    async with openai.AsyncOpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0
    ) as aclient:
        r = await aclient.chat.completions.create(model="fake", messages=ask("hello"))
        assert r.choices[0].message.content == "[aggregator] synthesis of 3 responses to: hello"
        stream = await aclient.chat.completions.create(
            model="fake",
            messages=ask("hello"),
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = chunk.usage or usage
        assert text == r.choices[0].message.content
        assert usage is not None and r.usage is not None
        assert usage.total_tokens == r.usage.total_tokens


def test_models_are_the_recipes(client: openai.OpenAI, server: ServerThread) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"fake", "local", "moa", "slow", "broken"} <= set(ids)
    model = client.models.retrieve("fake")
    assert model.id == "fake" and model.object == "model"
    info = (model.model_extra or {})["moa"]
    assert info["layers"] == [["fake:alpha", "fake:beta", "fake:gamma"]]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_health_and_page_need_no_backend(server: ServerThread) -> None:
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["auth"] is False
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "Mixture-of-Agents" in page.text
    assert httpx.get(server.url + "/static/app.js").status_code == 200


# errors -------------------------------------------------------------------------------------
def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    assert "Traceback" not in response.text
    return dict(body["error"])


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=ask())
    assert info.value.code == "model_not_found"
    assert "gpt-9" in info.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "fake"}, "messages"),
        ({"messages": ask()}, "model"),
        ({"model": "fake", "messages": []}, "messages"),
        (
            {"model": "fake", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({"model": "fake", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "fake", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "fake", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
        ),
        (
            {"model": "fake", "messages": [*ask(), {"role": "assistant", "content": "x"}]},
            "messages",
        ),
        ({"model": "fake", "messages": ask(), "temperature": 2.5}, "temperature"),
        ({"model": "fake", "messages": ask(), "temperature": -1}, "temperature"),
        ({"model": "fake", "messages": ask(), "max_tokens": 0}, "max_tokens"),
        ({"model": "fake", "messages": ask(), "n": 2}, "n"),
        ({"model": "fake", "messages": ask(), "stream": "sometimes"}, "stream"),
        (
            {"model": "fake", "messages": ask(), "tools": [{"type": "function"}]},
            "tools[0].function",
        ),
        ({"model": "fake", "messages": ask(), "moa": {"trace": True}}, "moa.trace"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(
    server: ServerThread, body: dict[str, Any], param: str
) -> None:
    response = post(server, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(param)


def test_invalid_json_is_400(server: ServerThread) -> None:
    for raw in (b"{", b"[1, 2]", b"\xff"):
        response = httpx.post(
            server.url + "/v1/chat/completions",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "invalid_json"


def test_the_openai_client_sees_400_as_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fake", messages=ask(), n=3)
    assert info.value.param == "n"


def test_unknown_routes_and_methods_answer_openai_errors(server: ServerThread) -> None:
    assert error_of(httpx.get(server.url + "/v1/nothing"))["code"] == "not_found"
    response = httpx.get(server.url + "/v1/chat/completions")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_failing_agents_are_502_naming_each(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="broken", messages=ask())
    assert info.value.status_code == 502
    assert info.value.code == "quorum_not_reached"
    assert "bad-a" in info.value.message and "bad-b" in info.value.message
    body: Any = info.value.body
    assert {f["agent"] for f in body["failures"]} == {"fake:bad-a", "fake:bad-b"}
    assert {f["error_type"] for f in body["failures"]} == {"BackendError"}


def test_timed_out_agents_are_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="timeouts", messages=ask())
    assert info.value.status_code == 504
    assert "late-a" in info.value.message


def test_the_runs_deadline_is_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="deadline", messages=ask())
    assert info.value.status_code == 504
    assert info.value.code == "deadline_exceeded"


def test_a_stream_that_fails_before_its_first_token_gets_a_real_status(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        list(client.chat.completions.create(model="broken", messages=ask(), stream=True))
    assert info.value.status_code == 502


def test_an_error_after_the_stream_started_is_a_final_error_event(
    client: openai.OpenAI, server: ServerThread
) -> None:
    stream = client.chat.completions.create(model="midstream", messages=ask(), stream=True)
    text = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    assert text == "partial answer "
    assert "connection reset by peer" in info.value.message

    response = post(
        server,
        {"model": "midstream", "messages": ask(), "stream": True, "moa": {"include_trace": True}},
    )
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-2][0] == "moa.trace"  # the trace of the failed run, then the error
    last = json.loads(events[-1][1])
    assert last["error"]["code"] == "aggregation_failed"
    assert last["error"]["failures"][0]["agent"] == "fake:crash"
    assert "[DONE]" not in response.text


def test_quorum_failure_after_progress_events_is_an_error_event(server: ServerThread) -> None:
    body = {"model": "broken", "messages": ask(), "stream": True, "moa": {"events": True}}
    response = post(server, body)
    assert response.status_code == 200  # the progress events had started the stream
    last = json.loads(sse_events(response.text)[-1][1])
    assert last["error"]["code"] == "quorum_not_reached"


def test_non_streaming_midstream_failure_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="midstream", messages=ask())
    assert info.value.status_code == 502 and info.value.code == "aggregation_failed"


def test_a_missing_provider_key_is_a_server_error_naming_the_variable(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="needs-key", messages=ask())
    assert info.value.status_code == 500
    assert info.value.code == "missing_provider_key"
    assert "TOGETHER_API_KEY" in info.value.message


def test_provider_keys_never_reach_responses_or_logs(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"model": "leaky", "messages": ask(), "moa": {"include_trace": True}}
    response = post(server, body)
    assert response.status_code == 502
    assert SECRET not in response.text
    streamed = post(server, {**body, "stream": True, "moa": {"events": True}})
    assert SECRET not in streamed.text
    assert "leaky:m1" in streamed.text
    assert SECRET not in caplog.text
    assert "run of leaky failed" in caplog.text


def test_unexpected_errors_are_a_bare_500(tmp_path: Path) -> None:
    app = create_app(api_key="", demo=True)

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail /etc/secret")

    with ServerThread(app) as running:
        assert post(running, {"model": "fake", "messages": ask()}).status_code == 200
        moa = app.state.registry._moas["fake"]
        moa.arun = explode
        response = post(running, {"model": "fake", "messages": ask()})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert from_error(ValueError("x"), "m").status == 500


# disconnects cancel the run -----------------------------------------------------------------
def test_a_client_that_leaves_a_stream_cancels_its_backend_calls(
    server: ServerThread, fake: FlakyFake
) -> None:
    before = len(fake.cancelled)
    body = {"model": "slow", "messages": ask(), "stream": True, "moa": {"events": True}}
    started = 0
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            started += '"agent.started"' in line
            if started == 2:
                break  # both proposers are waiting on their 5 s answers: hang up now
    wait_until(lambda: sorted(fake.cancelled[before:]) == ["slow-a", "slow-b"], timeout=3)
    assert_idle(server)


def test_a_client_that_leaves_a_plain_request_cancels_it(
    server: ServerThread, fake: FlakyFake
) -> None:
    before = len(fake.cancelled)
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post(server, {"model": "slow", "messages": ask()}, timeout=httpx.Timeout(5, read=0.5))
    wait_until(lambda: sorted(fake.cancelled[before:]) == ["slow-a", "slow-b"], timeout=3)
    assert time.monotonic() - t0 < 4  # well before the proposers' 5 s
    assert_idle(server)


# auth, limits, keep-alive -------------------------------------------------------------------
def test_auth_is_required_on_v1_routes(limited: ServerThread) -> None:
    url = limited.url + "/v1/chat/completions"
    body = {"model": "fake", "messages": ask()}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401
    assert error_of(missing)["code"] == "invalid_api_key"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "nope" not in wrong.text
    assert httpx.get(limited.url + "/v1/models").status_code == 401
    ok = httpx.post(url, json=body, headers={"Authorization": "Bearer sekret"})
    assert ok.status_code == 200
    assert httpx.get(limited.url + "/health").json()["auth"] is True
    assert httpx.get(limited.url + "/").status_code == 200

    with openai.OpenAI(base_url=limited.url + "/v1", api_key="wrong", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.chat.completions.create(model="fake", messages=ask())
        assert info.value.code == "invalid_api_key"
    with openai.OpenAI(base_url=limited.url + "/v1", api_key="sekret", max_retries=0) as c:
        assert c.chat.completions.create(model="fake", messages=ask()).choices[0].message.content


def test_body_over_the_limit_is_413(limited: ServerThread) -> None:
    url = limited.url + "/v1/chat/completions"
    auth = {"Authorization": "Bearer sekret"}
    body = {"model": "fake", "messages": ask("x" * 5000)}
    declared = httpx.post(url, json=body, headers=auth)
    assert declared.status_code == 413
    assert error_of(declared)["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no content-length: counted as it arrives
        data = json.dumps(body).encode()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    json_type = {"Content-Type": "application/json"}
    streamed = httpx.post(url, content=chunked(), headers=auth | json_type)
    assert streamed.status_code == 413


def test_runs_beyond_the_limit_get_503(limited: ServerThread, fake: FlakyFake) -> None:
    url = limited.url + "/v1/chat/completions"
    auth = {"Authorization": "Bearer sekret"}
    body = {"model": "slow", "messages": ask(), "stream": True, "moa": {"events": True}}
    with httpx.stream("POST", url, json=body, headers=auth) as first:
        lines = first.iter_lines()  # kept: a closed iterator would close the response
        next(lines)  # the first run holds the only slot
        busy = httpx.post(url, json={"model": "fake", "messages": ask()}, headers=auth)
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert error_of(busy)["code"] == "server_overloaded"
        with openai.OpenAI(base_url=limited.url + "/v1", api_key="sekret", max_retries=0) as c:
            with pytest.raises(openai.InternalServerError) as info:
                c.chat.completions.create(model="fake", messages=ask())
            assert info.value.status_code == 503
    assert_idle(limited)
    again = httpx.post(url, json={"model": "fake", "messages": ask()}, headers=auth)
    assert again.status_code == 200


def test_a_slow_stream_sends_keep_alive_comments(limited: ServerThread) -> None:
    auth = {"Authorization": "Bearer sekret"}
    body = {"model": "sleepy", "messages": ask(), "stream": True}
    response = httpx.post(limited.url + "/v1/chat/completions", json=body, headers=auth)
    assert ": keep-alive\n\n" in response.text
    assert response.text.endswith("data: [DONE]\n\n")
    with openai.OpenAI(base_url=limited.url + "/v1", api_key="sekret", max_retries=0) as c:
        chunks = list(c.chat.completions.create(model="sleepy", messages=ask(), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks).startswith("[aggregator]")


# recipes from a folder ----------------------------------------------------------------------
def test_recipes_dir_offers_files_by_name_and_file_name(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "name: my-recipe\nlayers: [[fake:one, fake:two]]\naggregator: fake:agg\n"
    )
    (tmp_path / "plain.json").write_text('{"layers": [], "aggregator": "fake:solo"}')
    (tmp_path / "bad.yaml").write_text("layers: [[fake:one]]\n")  # no aggregator
    (tmp_path / "notes.txt").write_text("not a recipe")
    with ServerThread(create_app(api_key="", recipes_dir=tmp_path, demo=True)) as running:
        ids = {m["id"] for m in httpx.get(running.url + "/v1/models").json()["data"]}
        assert {"my-recipe", "plain", "bad", "fake"} <= ids and "notes" not in ids
        for name in ("my-recipe", "mine"):
            r = post(running, {"model": name, "messages": ask("hi")})
            assert r.json()["choices"][0]["message"]["content"] == (
                "[agg] synthesis of 2 responses to: hi"
            )
        assert post(running, {"model": "plain", "messages": ask("hi")}).status_code == 200
        bad = post(running, {"model": "bad", "messages": ask()})
        assert bad.status_code == 500
        error = error_of(bad)
        assert error["code"] == "invalid_recipe"
        assert "aggregator" in error["message"] and "bad.yaml" in error["message"]
