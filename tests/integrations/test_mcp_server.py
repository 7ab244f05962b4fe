"""`moa mcp` through the official MCP client, over stdio: a real process, as an editor or an
agent starts it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from integrations.hosts import tool

pytest.importorskip("mcp")

from mcp import Client
from mcp.client.stdio import StdioServerParameters


@asynccontextmanager
async def moa_mcp(env: dict[str, str], *args: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=tool("moa"), args=["mcp", *args], env=env)
    async with Client(params, read_timeout_seconds=120) as client:
        yield client


def text(result: Any) -> list[str]:
    return [block.text for block in result.content]


async def test_ask_answers_with_progress_and_layers(host_env: dict[str, str]) -> None:
    notified: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notified.append((progress, total, message))

    async with moa_mcp(host_env) as client:
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == ["ask", "list_recipes"]

        result = await client.call_tool(
            "ask",
            {"prompt": "What is 2 + 2?", "recipe": "duo", "show_layers": True},
            progress_callback=on_progress,
        )
        assert not result.is_error
        answer, layers = text(result)
        assert answer == "[agg] synthesis of 2 responses to: What is 2 + 2?"
        assert "layer 1 · fake:a" in layers and "[b] answer to: What is 2 + 2?" in layers
        data = result.structured_content
        assert data is not None and data["answer"] == answer
        assert [a["agent"] for a in data["layers"][0]["answers"]] == ["fake:a", "fake:b"]
        assert data["totals"]["calls"] == 3 and data["totals"]["input_tokens"] > 0

        # one notification per finished call, counting up to the recipe's three calls
        assert [(done, total) for done, total, _ in notified] == [(1, 3), (2, 3), (3, 3)]
        assert notified[-1][2] is not None and "fake:agg" in notified[-1][2]

        plain = await client.call_tool("ask", {"prompt": "Hi", "recipe": "duo"})
        assert text(plain) == ["[agg] synthesis of 2 responses to: Hi"]
        assert plain.structured_content is not None
        assert "layers" not in plain.structured_content


async def test_bad_calls_are_tool_errors_and_the_server_goes_on(host_env: dict[str, str]) -> None:
    env = {k: v for k, v in host_env.items() if k != "TOGETHER_API_KEY"}
    async with moa_mcp(env) as client:
        unknown = await client.call_tool("ask", {"prompt": "Hi", "recipe": "nope"})
        assert unknown.is_error
        [message] = text(unknown)
        assert "unknown recipe 'nope'; known: " in message and "duo" in message
        path = await client.call_tool("ask", {"prompt": "Hi", "recipe": "/etc/passwd"})
        assert path.is_error and "unknown recipe" in text(path)[0]  # names, never paths
        empty = await client.call_tool("ask", {"prompt": "  ", "recipe": "duo"})
        assert empty.is_error and "the prompt is empty" in text(empty)[0]
        keyless = await client.call_tool("ask", {"prompt": "Hi", "recipe": "moa-lite"})
        assert keyless.is_error and "TOGETHER_API_KEY" in text(keyless)[0]

        fine = await client.call_tool("ask", {"prompt": "Hi", "recipe": "duo"})
        assert not fine.is_error
        listed = await client.call_tool("list_recipes", {})
        recipes = {r["name"]: r for r in (listed.structured_content or {})["result"]}
        assert recipes["duo"]["models"] == ["fake:a", "fake:agg", "fake:b"]
        assert {"local", "fake", "tiny"} <= set(recipes)


async def test_a_server_started_inside_a_run_refuses_to_recurse(host_env: dict[str, str]) -> None:
    async with moa_mcp({**host_env, "MOA_DEPTH": "1"}) as client:
        result = await client.call_tool("ask", {"prompt": "Hi", "recipe": "duo"})
        assert result.is_error
        assert "moa was called from inside a MoA run (depth 1)" in text(result)[0]


def test_a_folder_that_is_not_one_is_a_one_line_error(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [tool("moa"), "mcp", "--recipes", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=30,
        env=host_env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'none'}: not a folder of recipe files"


@pytest.mark.slow
async def test_ask_on_the_local_model(
    host_env: dict[str, str], smollm2_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in host_env.items() if k != "MOA_CACHE_DIR"}  # the pulled SmolLM2
    async with moa_mcp({**env, "MOA_THREADS": "1"}) as client:
        result = await client.call_tool("ask", {"prompt": "Name a colour.", "recipe": "tiny"})
        assert not result.is_error, text(result)
        assert text(result)[0].strip()
        data = result.structured_content
        assert data is not None and data["totals"]["calls"] == 3
        assert data["totals"]["output_tokens"] > 0


@pytest.fixture
def http_server(host_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`moa mcp --http PORT` running: its URL, and its log."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "mcp.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [tool("moa"), "mcp", "--http", str(port)], env=host_env, stdout=out, stderr=out
        )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", log
    finally:
        server.terminate()
        server.wait(timeout=20)


async def test_streamable_http_on_loopback(http_server: tuple[str, Path]) -> None:
    url, log = http_server
    async with Client(url) as client:
        result = await client.call_tool("ask", {"prompt": "Hi", "recipe": "duo"})
    assert text(result) == ["[agg] synthesis of 2 responses to: Hi"], log.read_text()
