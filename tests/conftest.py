"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# --- real local models (issue 9): the SmolLM2 file, llama.cpp's own server on loopback -------
from llama_server import HAVE_ENGINE, LlamaServer, pull_smollm2, running_server


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


# --- end of the real local models ------------------------------------------------------------
