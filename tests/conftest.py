"""Fixtures shared by the suites: the fault-injecting server, a private limits registry, a
model and response cache of the test's own, and the real local models (the SmolLM2 file,
llama.cpp's own server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultserver import FaultServer
from llama_server import HAVE_ENGINE, LlamaServer, pull_smollm2, running_server

from moa.limits import Limits


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
    """`MOA_CACHE_DIR` in the test's temporary folder: models and answers start empty."""
    monkeypatch.setenv("MOA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The SmolLM2-135M test model, pulled once into the normal cache."""
    return pull_smollm2()


@pytest.fixture(scope="module")
def llama_server(smollm2_path: Path) -> Iterator[LlamaServer]:
    """llama.cpp's HTTP server (xllamacpp) serving SmolLM2 for the tests of one module."""
    if not HAVE_ENGINE:
        pytest.skip("xllamacpp is not installed")
    with running_server(smollm2_path) as server:
        yield server
