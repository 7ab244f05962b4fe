"""Reading a batch's inputs as a stream: JSONL line by line, ids checked as they pass.

A JSONL file is never read whole: `iter_items` yields one item at a time, so a batch over a
file larger than memory holds only the items in flight (and the set of ids, to refuse a
duplicate). A JSON file (a list of objects) is parsed whole, as JSON cannot be read in parts
without a streaming parser.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from moa.errors import ConfigError

__all__ = ["count_items", "iter_items", "iter_rows", "load_items", "load_json_or_jsonl"]

Source = str | Path | Iterable[Mapping[str, Any]]


def _open(path: Path) -> Any:
    try:
        return path.open("r", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def iter_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records from a JSONL file (one object a line, streamed) or a JSON file (a list of
    objects, or an object whose `data` or `items` is one)."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".jsonl":
        with _open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}: line {number}: not valid JSON: {exc.msg}") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"{path}: line {number}: expected an object")
                yield row
        return
    with _open(path) as f:
        try:
            data = json.load(f)
            rows = data if isinstance(data, list) else data.get("data", data.get("items", []))
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"{path}: item {number}: expected an object")
        yield row


def load_json_or_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSONL or JSON file, as a list (for small files: evaluation sets)."""
    return list(iter_rows(path))


def iter_items(source: Source, *, id_key: str = "id") -> Iterator[dict[str, Any]]:
    """Items with a string id, one at a time. An item without an id gets its position ("0",
    "1", ...) as id; a repeated id is an error when it is reached."""
    rows: Iterable[Mapping[str, Any]] = (
        iter_rows(source) if isinstance(source, (str, Path)) else source
    )
    seen: set[str] = set()
    for i, row in enumerate(rows):
        item = dict(row)
        key = item[id_key] = str(item.get(id_key, i))
        if key in seen:
            raise ConfigError(f"item {i}: duplicate id {key!r}")
        seen.add(key)
        yield item


def load_items(source: Source, *, id_key: str = "id") -> list[dict[str, Any]]:
    """Every item as a list: `iter_items` for inputs that fit in memory."""
    return list(iter_items(source, id_key=id_key))


def count_items(source: Source) -> int | None:
    """How many items a source holds, if that is cheap to know (a list, or a JSONL file,
    counted by its non-blank lines without parsing them); None otherwise."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.suffix.lower() != ".jsonl" or not path.is_file():
            return None
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    if isinstance(source, (list, tuple)):
        return len(source)
    return None
