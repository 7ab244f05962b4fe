"""The evaluation data shipped in the package. Files given by path are read by the batch
layer's reader (`moa.batch.reader`), re-exported here for the evaluations."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from moa.batch.reader import load_json_or_jsonl

__all__ = ["load_json_or_jsonl", "packaged"]


def packaged(name: str) -> Path:
    """The path of a data file shipped in `moa/evals/data`."""
    return Path(str(resources.files("moa.evals") / "data" / name))
