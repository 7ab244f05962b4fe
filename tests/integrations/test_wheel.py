"""The sdist and wheel as `make dist` builds them, installed into a fresh virtual environment
with no source tree on the path, and run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from integrations.hosts import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def get(url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def test_the_wheel_installs_and_runs_without_the_source_tree(tmp_path: Path) -> None:
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, ROOT)  # what `make dist` runs
    [wheel] = dist.glob("*.whl")
    assert len(list(dist.glob("*.tar.gz"))) == 1

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    pip: list[str | Path] = [
        venv / "bin" / "python",
        "-m",
        "pip",
        "--disable-pip-version-check",
        "-q",
    ]
    run(*pip, "install", "--only-binary", ":all:", f"{wheel}[server,llm]")

    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "MOA_CACHE_DIR": str(tmp_path / "cache"),
        "LLM_USER_PATH": str(tmp_path / "llm"),
    }
    where = run(
        venv / "bin" / "python", "-c", "import moa; print(moa.__file__)", env=env, cwd=tmp_path
    )
    assert where.stdout.startswith(str(venv))

    moa = venv / "bin" / "moa"
    assert "local" in run(moa, "recipes", "list", env=env, cwd=tmp_path).stdout
    asked = run(moa, "ask", "--dry-run", "What is 2 + 2?", env=env, cwd=tmp_path)
    assert "answer to: What is 2 + 2?" in asked.stdout
    models = run(venv / "bin" / "llm", "models", env=env, cwd=tmp_path).stdout
    assert "moa-local" in models and "moa-fake" in models

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [moa, "serve", "--demo", "--no-pull", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=out,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                get(base + "/health")
                break
            except OSError:
                time.sleep(0.1)
        status, page = get(base + "/")
        assert status == 200 and "/static/app.js" in page, log.read_text()
        assert get(base + "/static/app.js")[0] == 200  # the page's files come from the wheel
        status, body = get(
            base + "/v1/chat/completions",
            {"model": "fake", "messages": [{"role": "user", "content": "Hi"}]},
        )
        assert json.loads(body)["choices"][0]["message"]["content"].endswith("to: Hi")
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not list(Path(tmp_path / "cache").glob("models/*"))  # nothing pulled on the way
