"""The results log: one JSON line per finished item, on disk before the item counts as done.

Lines are appended by the driver alone. `commit` writes a group of lines with one `write`,
flushes and (by default) `fsync`s, so a line that is counted is on the disk: a power cut
loses at most the items in flight, as a kill does. Resuming scans the file line by line (it is
never read whole) and keeps only the set of ids that are done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["ResultLog", "iter_results", "read_results"]


def iter_results(out: str | Path) -> Iterator[dict[str, Any]]:
    """Every whole record of a results file, in the order written (a cut line is skipped)."""
    path = Path(out)
    if not path.exists():
        return
    with path.open("rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(record, dict) and "id" in record:
                yield record


def read_results(out: str | Path) -> dict[str, dict[str, Any]]:
    """The last record for each id (in memory: for evaluation-sized files)."""
    return {str(r["id"]): r for r in iter_results(out)}


class ResultLog:
    """The append-only results file of one batch."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._file: BinaryIO | None = None

    def done(self, *, retry_failed: bool = True) -> set[str]:
        """The ids that need not run again: those with a successful line (and, unless
        `retry_failed`, those with a failed one)."""
        done: set[str] = set()
        for record in iter_results(self.path):
            key = str(record["id"])
            if record.get("ok") or not retry_failed:
                done.add(key)
        return done

    def open(self) -> None:
        """Open for appending; a line cut off by a crash is ended, so the next one is whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        if self._file.tell() > 0:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._file.write(b"\n")

    def commit(self, records: Sequence[dict[str, Any]]) -> None:
        """Append the records and make them durable (flush, then fsync unless disabled)."""
        if self._file is None:
            raise RuntimeError("the results log is not open")
        data = b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in records)
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
