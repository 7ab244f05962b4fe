"""`moa ask` as a user runs it: a real process, real file descriptors, real local models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from llama_server import needs_llama_cpp

pytestmark = [needs_llama_cpp, pytest.mark.slow]


def test_ask_prints_the_answer_while_two_models_load_at_once(
    tmp_path: Path, smollm2_path: Path
) -> None:
    # two files, so two engines start concurrently in threads (a former engine silenced its
    # loads by pointing fds 1 and 2 at /dev/null, and overlapping loads left them there)
    twin = tmp_path / "twin.gguf"
    shutil.copyfile(smollm2_path, twin)
    recipe = tmp_path / "two.yaml"
    recipe.write_text(
        f"layers:\n  - [local:smollm2-135m-instruct, 'gguf:{twin}']\n"
        "aggregator: local:smollm2-135m-instruct\n"
        "proposer_defaults: {temperature: 0, max_tokens: 12}\n"
        "aggregator_defaults: {temperature: 0, max_tokens: 12}\n"
    )
    moa = Path(sys.executable).with_name("moa")
    env = {**os.environ, "MOA_THREADS": "1"}
    done = subprocess.run(
        [str(moa), "ask", "--show-layers", "-r", str(recipe), "Name a colour."],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the answer was not printed"
    assert "layer 1: 2 answered, 0 failed" in done.stderr
    assert str(twin) in done.stderr
    assert "llama" not in done.stderr.lower()  # the engine printed nothing of its own
