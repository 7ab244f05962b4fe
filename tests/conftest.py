"""Fixtures shared by the suites: the fault-injecting server, a private limits registry, and a
model and response cache of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultserver import FaultServer

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
