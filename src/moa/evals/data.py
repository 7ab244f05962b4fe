"""The evaluation data shipped in the package. Files given by path are read by the batch
layer's reader (`moa.batch.reader`), re-exported here for the evaluations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from moa.batch.reader import load_json_or_jsonl
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
