"""Fixtures shared by every suite.

Every test is isolated (as simonw/llm's conftest isolates each): the process-wide rate and
concurrency gates are reset around it, and `MOA_CACHE_DIR` is a folder of its own, so a test
never sees another's cached answers. The local models are the exception: the folder links the
models already pulled, so a real-model test does not pull 1 GB again.

Also here: the fault-injecting OpenAI-compatible server, a fake backend, a limits registry of
the test's own, and the real local models (the SmolLM2 file, llama.cpp's own server on
loopback). Recipes and engines are built by the helpers in `recipes.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultserver import FaultServer
from llama_server import HAVE_ENGINE, LlamaServer, pull_smollm2, running_server

from moa import FakeBackend
from moa.catalog import models_dir
from moa.limits import LIMITS, Limits

MODELS = models_dir()
"""The models folder of the user who runs the tests, read before any test changes it."""


@pytest.fixture(autouse=True)
def _isolated(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A cache folder of the test's own (models linked in) and fresh process-wide gates."""
    cache = tmp_path_factory.mktemp("moa-cache")
    MODELS.mkdir(parents=True, exist_ok=True)
    (cache / "models").symlink_to(MODELS, target_is_directory=True)
    monkeypatch.setenv("MOA_CACHE_DIR", str(cache))
    LIMITS.reset()
    yield
    LIMITS.reset()


@pytest.fixture
def fake() -> FakeBackend:
    """A scripted backend of the test's own."""
    return FakeBackend()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A fault-injecting OpenAI-compatible server on loopback (see faultserver.py)."""
    with FaultServer() as server:
        yield server


@pytest.fixture
def limits() -> Limits:
    """A limits registry of the test's own, so gates never leak between tests."""
    return Limits()


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`MOA_CACHE_DIR` in the test's temporary folder, models included: everything starts
    empty."""
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The SmolLM2-135M test model, pulled once into the user's models folder."""
    return pull_smollm2()


@pytest.fixture(scope="module")
def llama_server(smollm2_path: Path) -> Iterator[LlamaServer]:
    """llama.cpp's HTTP server (xllamacpp) serving SmolLM2 for the tests of one module."""
    if not HAVE_ENGINE:
        pytest.skip("xllamacpp is not installed")
    with running_server(smollm2_path) as server:
        yield server
