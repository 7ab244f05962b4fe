"""Real local models for tests: the SmolLM2 file, and llama.cpp's own HTTP server serving it.

Helpers only; the fixtures built on them (`smollm2_path`, `llama_server`) are in conftest.py.
The server is llama.cpp's `llama-server` as xllamacpp builds it into its Python module, run in
a child process by this file's `main` (a real OpenAI-compatible server on loopback):

    python tests/llama_server.py MODEL.gguf --port 8080 [--alias smollm2] [--n-ctx 1024]

The SmolLM2 file is pulled once into the user's real cache (`moa models pull` would put it
there too), so CI and later runs reuse it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
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

HAVE_ENGINE = importlib.util.find_spec("xllamacpp") is not None
needs_llama_cpp = pytest.mark.skipif(not HAVE_ENGINE, reason="xllamacpp is not installed")


def pull_smollm2() -> Path:
    """The checked SmolLM2 file in the normal cache, pulled through pip the first time."""
    from moa import catalog

    return catalog.ensure(SMOLLM2, auto_pull=True)


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
) -> LlamaServer:
    """Start the server on a free loopback port and wait until /v1/models answers.

    One thread by default: tests run it beside other work on small machines, where llama.cpp's
    threads slow down many times over once they outnumber the free cores."""
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    os.close(fd)
    log = Path(name)
    cmd = [
        sys.executable, __file__, str(model_path), "--port", str(port), "--alias", alias,
        "--n-ctx", str(n_ctx), "--threads", str(n_threads),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", alias, port, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with {proc.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/models", timeout=2) as r:
                if r.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"llama-server did not answer within {timeout} s:\n{server.output()}")


def stop_server(server: LlamaServer, *, grace: float = 5.0) -> None:
    """Terminate; kill after `grace` seconds."""
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


def main() -> None:
    """Serve one GGUF file on 127.0.0.1 until SIGTERM (the child process of `start_server`)."""
    import xllamacpp

    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default=SERVER_ALIAS)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.verbosity = 3 if os.environ.get("MOA_DEBUG") else 1  # errors and warnings
    server = xllamacpp.Server(params)
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)  # llama.cpp's own handler would leave us waiting
    signal.signal(signal.SIGINT, on_term)
    while not stop:
        time.sleep(0.1)
    del server


if __name__ == "__main__":
    main()
