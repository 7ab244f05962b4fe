"""The Berkeley Function Calling Leaderboard's data, from the `bfcl-eval` wheel on PyPI
(Apache-2.0), fetched at first use as the catalog fetches models: `pip download --no-deps`
of one pinned version, its sha256 checked, the JSON files of the Python AST categories taken
out of it into `<moa cache dir>/bfcl/<version>/`. The package's own dependencies (torch-sized)
are never installed; nothing of it is imported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from moa.errors import ConfigError

__all__ = ["CATEGORIES", "SCORED", "VERSION", "data_dir", "load_category"]

VERSION = "2026.3.23"
WHEEL_SHA256 = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"
CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
    "live_relevance",
)
"""The Python AST categories, checked offline by their answers' acceptable values."""
SCORED = frozenset(c for c in CATEGORIES if "relevance" not in c)
"""The categories with expected calls (the others are right by calling, or by not calling)."""


def _members() -> list[str]:
    root = "bfcl_eval/data"
    out = [f"{root}/BFCL_v4_{c}.json" for c in CATEGORIES]
    return out + [f"{root}/possible_answer/BFCL_v4_{c}.json" for c in sorted(SCORED)]


def data_dir(*, fetch: bool = True) -> Path:
    """The folder of the data files, fetched first when they are not there yet."""
    from moa.catalog import cache_dir

    folder = cache_dir() / "bfcl" / VERSION
    if (folder / "complete").exists():
        return folder
    if not fetch:
        raise ConfigError(f"BFCL's data is not in {folder}; run `moa eval bfcl` once online")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        wheel = _download(Path(tmp))
        staged = Path(tmp) / "data"
        with zipfile.ZipFile(wheel) as zf:
            for member in _members():
                target = staged / Path(member).relative_to("bfcl_eval/data")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        (staged / "complete").write_text(f"bfcl-eval {VERSION} sha256 {WHEEL_SHA256}\n")
        if folder.exists():
            shutil.rmtree(folder)
        staged.replace(folder)
    return folder


def _download(tmp: Path) -> Path:
    spec = f"bfcl-eval=={VERSION}"
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-d", str(tmp), spec,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    wheels = list(tmp.glob("bfcl_eval-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = "\n".join(line for line in done.stdout.splitlines()[-5:] if line.strip())
        raise ConfigError(f"BFCL's data: pip could not download {spec}:\n{tail}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ConfigError(f"BFCL's data: {wheels[0].name} has sha256 {digest}, not {WHEEL_SHA256}")
    return wheels[0]


def _lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"BFCL's data: cannot read {path}: {exc.strerror}") from None
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ConfigError(f"BFCL's data: {path}: not JSON lines ({exc.msg})") from None


def load_category(category: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """The items of a category: `id`, `category`, `question` (the messages), `function` (the
    functions offered) and, where there is one, `answer` (the expected calls)."""
    if category not in CATEGORIES:
        raise ConfigError(f"unknown BFCL category {category!r}; use {', '.join(CATEGORIES)}")
    folder = folder or data_dir()
    rows = _lines(folder / f"BFCL_v4_{category}.json")
    answers: dict[str, Any] = {}
    if category in SCORED:
        path = folder / "possible_answer" / f"BFCL_v4_{category}.json"
        answers = {r["id"]: r["ground_truth"] for r in _lines(path)}
    return [
        {
            "id": row["id"],
            "category": category,
            "question": row["question"][0],
            "function": row["function"],
            "answer": answers.get(row["id"]),
        }
        for row in rows
    ]
