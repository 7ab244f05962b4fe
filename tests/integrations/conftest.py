"""The integrations' fixtures: a folder of recipes (fake models, and SmolLM2 for the slow
tests), and the environment a host's process runs in (its own llm user folder, no model
pulled). LiteLLM reads its price list from the package, not the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrations.hosts import DUO, PRICED, TINY

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before any test imports litellm


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    """A folder of recipe files: duo (fake), tiny (SmolLM2), priced (fake, with prices)."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "duo.yaml").write_text(DUO)
    (folder / "tiny.yaml").write_text(TINY)
    (folder / "priced.yaml").write_text(PRICED)
    return folder


@pytest.fixture
def host_env(tmp_path: Path, recipes: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a host's process, also set in this one: llm's user folder and an
    empty model cache of the test's own, `$MOA_RECIPES` at `recipes`, no depth inherited."""
    values = {
        "LLM_USER_PATH": str(tmp_path / "llm"),
        "MOA_RECIPES": str(recipes),
        "MOA_CACHE_DIR": str(tmp_path / "cache"),
    }
    (tmp_path / "llm").mkdir()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MOA_DEPTH", raising=False)
    return {**os.environ, **values}
