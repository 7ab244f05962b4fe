"""What the integrations' tests share: a folder of recipes (fake models, and SmolLM2 for the
slow tests), and the environment a host's process runs in (its own llm user folder, no
model pulled). LiteLLM reads its price list from the package, not the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before any test imports litellm

SMOL = "local:smollm2-135m-instruct"

DUO = """\
description: two fake proposers and a fake aggregator
layers:
  - [fake:a, fake:b]
aggregator: fake:agg
"""

TINY = f"""\
description: SmolLM2 twice, then aggregating (a real local model, small and quick)
layers:
  - [{SMOL}, {SMOL}]
aggregator: {SMOL}
proposer_defaults: {{temperature: 0, max_tokens: 12}}
aggregator_defaults: {{temperature: 0, max_tokens: 12}}
"""

PRICED = """\
layers:
  - [fake:a, fake:b]
aggregator: fake:agg
providers:
  fake:
    prices:
      a: {input: 1.0, output: 2.0}
      b: {input: 1.5, output: 2.5}
      agg: {input: 3.0, output: 4.0}
"""


def tool(name: str) -> str:
    """A console script of this environment (llm, moa, ...)."""
    return str(Path(sys.executable).with_name(name))


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
