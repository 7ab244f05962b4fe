"""moa serve against hostile and careless clients and recipes (issue 12), on a real server."""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")

from moa import FakeBackend
from moa.backends.openai_compat import OpenAICompatBackend
from moa.engine import MoA
from moa.errors import ConfigError, RecipeError
from moa.recipe import load_recipe
from moa.redact import redact_url, redact_urls
from moa.server import create_app
from moa.server.app import default_allowed_hosts
from moa.server.testing import ServerThread

DEMO = {"layers": [["fake:alpha", "fake:beta"]], "aggregator": "fake:aggregator"}
JSON = {"Content-Type": "application/json"}


def ask(text: str = "What is 17 * 23?") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def post(server: ServerThread, body: Any, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("timeout", 10)
    return httpx.post(server.url + "/v1/chat/completions", json=body, **kwargs)


def raw_post(server: ServerThread, raw: bytes, **headers: str) -> httpx.Response:
    head = {"Content-Type": "application/json", **headers}
    return httpx.post(server.url + "/v1/chat/completions", content=raw, headers=head, timeout=10)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    assert "Traceback" not in response.text
    return dict(body["error"])


def rss_mb() -> float:
    """This process's resident memory, after handing freed memory back to the system."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture(scope="module")
def server(fake: FakeBackend) -> Iterator[ServerThread]:
    app = create_app(api_key="", recipes={"demo": DEMO}, backends={"fake": fake})
    with ServerThread(app) as running:
        yield running


# 1. bounded memory, and no demo recipe unless asked -----------------------------------------
def test_a_fake_backend_keeps_only_its_last_requests() -> None:
    fake = FakeBackend()
    moa = MoA({"layers": [], "aggregator": "fake:solo"}, backends={"fake": fake})
    for i in range(1100):
        moa.run(f"question {i}")
    moa.close()
    assert len(fake.calls) == 1000
    assert fake.requests()[-1].messages[-1].content == "question 1099"
    quiet = FakeBackend(record=0)
    moa = MoA({"layers": [], "aggregator": "fake:solo"}, backends={"fake": quiet})
    assert moa.run("hi").text == "[solo] answer to: hi"
    moa.close()
    assert quiet.calls == [] and quiet.requests() == []


def test_the_demo_recipe_is_served_only_when_asked() -> None:
    with ServerThread(create_app(api_key="")) as running:
        ids = {m["id"] for m in httpx.get(running.url + "/v1/models").json()["data"]}
        assert "fake" not in ids and "moa" in ids
        assert post(running, {"model": "fake", "messages": ask()}).status_code == 404
    with ServerThread(create_app(api_key="", demo=True)) as running:
        assert post(running, {"model": "fake", "messages": ask()}).status_code == 200


def test_large_requests_to_a_fake_recipe_leave_no_memory_behind() -> None:
    body = {"model": "demo", "messages": ask("x" * 3_000_000)}
    with ServerThread(create_app(api_key="", recipes={"demo": DEMO})) as running:
        for _ in range(3):
            assert post(running, body).status_code == 200
        before = rss_mb()
        for _ in range(30):  # 90 MB of prompts: kept, they would show
            assert post(running, body).status_code == 200
        grown = rss_mb() - before
    print(f"RSS {before:.0f} MB -> {before + grown:.0f} MB over 30 requests of 3 MB")
    assert grown < 30, f"RSS grew by {grown:.0f} MB over 30 requests of 3 MB"


# 2. Host, Origin and Content-Type --------------------------------------------------------
def test_a_body_that_is_not_declared_json_is_415(server: ServerThread) -> None:
    raw = json.dumps({"model": "demo", "messages": ask()}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = raw_post(server, raw, **{"Content-Type": ctype})
        assert response.status_code == 415
        assert error_of(response)["code"] == "unsupported_media_type"
    response = httpx.post(server.url + "/v1/chat/completions", content=raw)
    assert response.status_code == 415
    assert raw_post(server, raw, **{"Content-Type": "application/json; charset=utf-8"}).is_success


def test_a_request_from_another_origin_is_refused(server: ServerThread) -> None:
    body = {"model": "demo", "messages": ask()}
    response = post(server, body, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "origin_not_allowed"
    assert post(server, body, headers={"Origin": "null"}).status_code == 403
    models = httpx.get(server.url + "/v1/models", headers={"Origin": "http://evil.example"})
    assert models.status_code == 403
    assert post(server, body, headers={"Origin": server.url}).status_code == 200  # its page


def test_a_request_by_another_host_name_is_refused(server: ServerThread) -> None:
    body = {"model": "demo", "messages": ask()}
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.evil.example"):
        response = post(server, body, headers={"Host": host})
        assert response.status_code == 403, host
        assert error_of(response)["code"] == "host_not_allowed"
    for host in ("localhost", f"localhost:{server.port}", "127.0.0.1", "[::1]:8000"):
        assert post(server, body, headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_and_cors_origins_open_what_they_name() -> None:
    app = create_app(
        api_key="",
        recipes={"demo": DEMO},
        allowed_hosts=["moa.example"],
        cors_origins=["https://app.example"],
    )
    body = {"model": "demo", "messages": ask()}
    with ServerThread(app) as running:
        assert post(running, body, headers={"Host": "moa.example:443"}).status_code == 200
        assert post(running, body).status_code == 403  # 127.0.0.1 is no longer named
        headers = {"Host": "moa.example", "Origin": "https://app.example"}
        ok = post(running, body, headers=headers)
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        preflight = httpx.options(
            running.url + "/v1/chat/completions",
            headers={
                **headers,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        other = {"Host": "moa.example", "Origin": "https://other.example"}
        assert post(running, body, headers=other).status_code == 403


def test_the_default_hosts_follow_the_listening_address() -> None:
    assert set(default_allowed_hosts("127.0.0.1")) == {"localhost", "127.0.0.1", "::1"}
    assert "10.0.0.5" in default_allowed_hosts("10.0.0.5")
    assert default_allowed_hosts("0.0.0.0") == ["*"]


# 3. no request starts a model download ----------------------------------------------------
LOCAL = {"layers": [], "aggregator": "local:qwen2.5-coder-1.5b-instruct"}


@pytest.fixture
def no_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty model cache; every pull is recorded, and fails as offline pulls do."""
    from moa import catalog

    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    pulls: list[str] = []

    def pull(name: str, **_: Any) -> Path:
        pulls.append(name)
        raise OSError("network unreachable")

    monkeypatch.setattr(catalog, "pull", pull)
    return pulls


def test_a_missing_local_model_is_503_and_never_pulled_by_a_request(
    no_models: list[str],
) -> None:
    with ServerThread(create_app(api_key="", recipes={"here": LOCAL})) as running:
        for _ in range(3):
            response = post(running, {"model": "here", "messages": ask()})
            assert response.status_code == 503
            error = error_of(response)
            assert error["code"] == "model_not_available"
            assert "moa models pull qwen2.5-coder-1.5b-instruct" in error["message"]
        info = httpx.get(running.url + "/v1/models/here").json()
        assert "moa models pull" in info["moa"]["error"]
    assert no_models == []


def test_pull_fetches_at_startup_once_and_a_failed_pull_is_not_retried(
    no_models: list[str],
) -> None:
    app = create_app(api_key="", recipes={"here": LOCAL}, pull=True)
    assert no_models.count("qwen2.5-coder-1.5b-instruct") == 1  # once for every recipe
    pulled = len(no_models)
    with ServerThread(app) as running:
        for _ in range(3):
            response = post(running, {"model": "here", "messages": ask()})
            assert response.status_code == 503
            message = error_of(response)["message"]
            assert "could not be fetched at startup: network unreachable" in message
    assert len(no_models) == pulled


# 4. what used to be a 500 -----------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "demo", "messages": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"model": "demo", "messages": ' + b"[" * 100 + b"]" * 100 + b"}",
        b'{"model": "demo", "messages": [], "seed": ' + b"9" * 5000 + b"}",
        b'{"model": "demo", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "demo\\udfff", "messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "demo", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    ],
    ids=["deep-1000", "deep-100", "int-5000-digits", "surrogate", "surrogate-model", "nan"],
)
def test_hostile_json_is_400_not_500(server: ServerThread, raw: bytes) -> None:
    response = raw_post(server, raw)
    assert response.status_code == 400, response.text[:300]
    assert error_of(response)["code"] == "invalid_json"


def test_a_lone_surrogate_in_a_models_answer_is_replaced_not_an_error() -> None:
    fake = FakeBackend().respond("aggregator", "half \ud800 a pair")
    app = create_app(api_key="", recipes={"demo": DEMO}, backends={"fake": fake})
    with ServerThread(app) as running:
        plain = post(running, {"model": "demo", "messages": ask()})
        assert plain.status_code == 200
        assert plain.json()["choices"][0]["message"]["content"] == "half \ufffd a pair"
        streamed = post(running, {"model": "demo", "messages": ask(), "stream": True})
        assert streamed.status_code == 200
        assert '"error"' not in streamed.text and streamed.text.endswith("data: [DONE]\n\n")
        assert "\ufffd" in streamed.text


def test_non_ascii_authorization_and_keys_are_compared_not_crashed() -> None:
    app = create_app(api_key="clé-secrète", recipes={"demo": DEMO})
    body = json.dumps({"model": "demo", "messages": ask()}).encode()
    with ServerThread(app) as running:
        for header in (b"Bearer \xff\xfe\x80", b"Bearer cl\xe9", "Bearer clé".encode()):
            response = raw_post(running, body, Authorization=header)  # type: ignore[arg-type]
            assert response.status_code == 401
            assert error_of(response)["code"] == "invalid_api_key"
        right = raw_post(running, body, Authorization="Bearer clé-secrète".encode())  # type: ignore[arg-type]
        assert right.status_code == 200


# 5. a recipe file nested too deep ---------------------------------------------------------
def deep_files(folder: Path) -> list[Path]:
    n = 100_000
    files = {
        "deep-yaml.yaml": "layers: " + "[" * n + "]" * n + "\naggregator: fake:a\n",
        "deep-json.json": '{"layers": ' + "[" * n + "]" * n + ', "aggregator": "fake:a"}',
        "deep-toml.toml": 'aggregator = "fake:a"\nlayers = ' + "[" * n + "]" * n + "\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]


def test_a_recipe_nested_too_deep_is_a_recipe_error(tmp_path: Path) -> None:
    for path in deep_files(tmp_path):
        with pytest.raises(RecipeError, match="nested too deeply") as info:
            load_recipe(path)
        assert "\n" not in str(info.value)


def test_a_recipe_nested_too_deep_is_listed_with_its_error(tmp_path: Path) -> None:
    deep_files(tmp_path)
    (tmp_path / "fine.yaml").write_text("layers: []\naggregator: fake:solo\n")
    with ServerThread(create_app(api_key="", recipes_dir=tmp_path)) as running:
        models = {m["id"]: m for m in httpx.get(running.url + "/v1/models").json()["data"]}
        for name in ("deep-yaml", "deep-json", "deep-toml"):
            assert "nested too deeply" in models[name]["moa"]["error"]
        assert post(running, {"model": "fine", "messages": ask()}).status_code == 200
        response = post(running, {"model": "deep-json", "messages": ask()})
        assert response.status_code == 500 and error_of(response)["code"] == "invalid_recipe"


# 6. credentials in base URLs --------------------------------------------------------------
PASSWORD = "pw-0123456789"
TOKEN = "tok-0123456789"
CREDS = {
    "providers": {
        "creds": {"base_url": f"http://user:{PASSWORD}@127.0.0.1:9/v1?token={TOKEN}"},
    },
    "layers": [["creds:m1", f"vllm:m2@http://user:{PASSWORD}@127.0.0.1:9/v1?token={TOKEN}"]],
    "aggregator": "creds:m3",
    "retry": {"attempts": 1},
}


def test_redact_hides_user_info_and_query() -> None:
    assert redact_url("http://u:p@h:8/v1?token=t#f") == "http://***@h:8/v1?***"
    assert redact_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert redact_url("http://u:pa/ss@h/v1") == "http://***@h/v1"
    text = redact_urls(f"x:m@http://u:{PASSWORD}@h/v1?k={TOKEN} failed")
    assert PASSWORD not in text and TOKEN not in text and text.endswith("h/v1?*** failed")
    backend = OpenAICompatBackend(base_url=f"http://u:{PASSWORD}@h/v1?k={TOKEN}", api_key=None)
    assert PASSWORD not in repr(backend) and TOKEN not in repr(backend)


def test_credentials_in_base_urls_never_leave_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with ServerThread(create_app(api_key="", recipes={"creds": CREDS})) as running:
        seen.append(httpx.get(running.url + "/v1/models").text)
        seen.append(httpx.get(running.url + "/v1/models/creds").text)
        body = {"model": "creds", "messages": ask(), "moa": {"include_trace": True}}
        failed = post(running, body)
        assert failed.status_code == 502
        seen.append(failed.text)
        streamed = post(running, {**body, "stream": True, "moa": {"events": True}})
        assert "agent.finished" in streamed.text
        seen.append(streamed.text)
    assert "127.0.0.1:9/v1" in seen[0] and "***" in seen[0]
    for text in [*seen, caplog.text]:
        assert PASSWORD not in text and TOKEN not in text


# 8. smaller ones --------------------------------------------------------------------------
def test_a_body_that_never_finishes_is_408() -> None:
    app = create_app(api_key="", recipes={"demo": DEMO}, body_timeout_s=0.5)
    with ServerThread(app) as running, socket.create_connection(("127.0.0.1", running.port)) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model"'
        )
        s.settimeout(5)
        t0 = time.monotonic()
        answer = b""
        while b"request_timeout" not in answer and (piece := s.recv(4096)):
            answer += piece
        assert time.monotonic() - t0 < 4
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in answer


def test_no_docs_pages_nor_schema(server: ServerThread) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        response = httpx.get(server.url + path)
        assert response.status_code == 404, path
        assert "cdn" not in response.text.lower()


def test_the_404_for_an_unknown_model_does_not_echo_it_or_list_recipes(
    server: ServerThread,
) -> None:
    response = post(server, {"model": "m" * 3_000_000, "messages": ask()})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "model_not_found" and len(response.content) < 400
    assert "demo" not in error["message"] and "moa-lite" not in error["message"]


# 9. a recipe may not send one provider's key to another's URL -----------------------------
def test_a_builtin_providers_key_goes_only_to_its_own_url() -> None:
    env = {"OPENAI_API_KEY": "sk-test-0123456789"}
    borrowed = {
        "providers": {
            "mine": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "OPENAI_API_KEY"}
        },
        "layers": [],
        "aggregator": "mine:m",
    }
    for recipe in (
        borrowed,
        {"layers": [], "aggregator": "openai:gpt-4o-mini@http://127.0.0.1:9/v1"},
        {"providers": {"openai": {"base_url": "http://127.0.0.1:9/v1"}}, "aggregator": "openai:m"},
    ):
        with pytest.raises(ConfigError, match="refusing to send OPENAI_API_KEY") as info:
            MoA(recipe, env=env)
        assert "send_key_to_base_url" in str(info.value) and env["OPENAI_API_KEY"] not in str(
            info.value
        )
    trusted = json.loads(json.dumps(borrowed))
    trusted["providers"]["mine"]["send_key_to_base_url"] = True
    MoA(trusted, env=env)
    MoA({"layers": [], "aggregator": "openai:gpt-4o-mini"}, env=env)
    own = {"providers": {"p": {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "P_KEY"}}}
    MoA({**own, "aggregator": "p:m"}, env={"P_KEY": "k"})  # the recipe's own key: its URL
