"""The evaluation data shipped in the package, and loaders for files given by path."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from moa.errors import ConfigError

__all__ = ["load_json_or_jsonl", "packaged", "require"]


def packaged(name: str) -> Path:
    """The path of a data file shipped in `moa/evals/data`."""
    return Path(str(resources.files("moa.evals") / "data" / name))


def require(row: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    """Raise a ConfigError at `where` (a file and item) unless `row` has every one of `keys`."""
    if any(k not in row for k in keys):
        names = ", ".join(repr(k) for k in keys[:-1])
        names = f"{names} and {keys[-1]!r}" if names else repr(keys[-1])
        raise ConfigError(f"{where}: needs {names}")


def load_json_or_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records from a JSONL file (one object a line) or a JSON file (a list of objects)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: line {number}: not valid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}: line {number}: expected an object")
            rows.append(row)
        return rows
    try:
        data = json.loads(text)
        rows = data if isinstance(data, list) else data.get("data", data.get("items", []))
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"{path}: item {number}: expected an object")
    return list(rows)
