"""The files evaluators read, written from a batch's results log (streamed, never whole).

- `alpaca_eval`: AlpacaEval model outputs, a JSON list of `{instruction, output, generator,
  dataset}` (what `alpaca_eval evaluate --model_outputs FILE` loads; it matches answers to its
  reference by `instruction`, so the item's own instruction is kept verbatim).
- `mt_bench`: FastChat MT-Bench answers, JSONL of `{question_id, answer_id, model_id,
  choices: [{index: 0, turns: [...]}], tstamp}` (as `gen_model_answer.py` writes them, one
  answer per turn, for `gen_judgment.py`).

Only successful lines are exported, each id once, in the order they finished.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from moa.batch.log import iter_results
from moa.errors import ConfigError

__all__ = ["FORMATS", "Format", "default_path", "export", "records_as"]

Format = Literal["jsonl", "alpaca_eval", "mt_bench"]
FORMATS: tuple[Format, ...] = ("jsonl", "alpaca_eval", "mt_bench")
_SUFFIX = {"alpaca_eval": ".alpaca_eval.json", "mt_bench": ".mt_bench.jsonl"}


def default_path(out: str | Path, fmt: Format) -> Path:
    """Where an export goes unless told: next to the log, `answers.jsonl` ->
    `answers.alpaca_eval.json` or `answers.mt_bench.jsonl`."""
    path = Path(out)
    return path.with_name(path.stem + _SUFFIX[fmt])


def _ok_once(out: str | Path) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for record in iter_results(out):
        key = str(record["id"])
        if record.get("ok") and key not in seen:
            seen.add(key)
            yield record


def _alpaca(record: dict[str, Any], model_id: str) -> dict[str, Any]:
    item = record.get("item") or {}
    instruction = item.get("instruction")
    if instruction is None:
        prompt = item.get("prompt")
        if not isinstance(prompt, str):
            raise ConfigError(
                f"item {record['id']!r}: alpaca_eval needs an 'instruction' (or a text prompt)"
            )
        instruction = prompt
    return {
        "instruction": instruction,
        "output": record["text"],
        "generator": model_id,
        "dataset": item.get("dataset", "custom"),
    }


def _mt_bench(record: dict[str, Any], model_id: str) -> dict[str, Any]:
    item = record.get("item") or {}
    qid: Any = item.get("question_id", record["id"])
    if isinstance(qid, str) and qid.isdigit():
        qid = int(qid)
    return {
        "question_id": qid,
        "answer_id": uuid.uuid4().hex[:22],
        "model_id": model_id,
        "choices": [{"index": 0, "turns": list(record.get("answers") or [record["text"]])}],
        "tstamp": record.get("finished_at"),
    }


def records_as(out: str | Path, fmt: Format, model_id: str) -> Iterator[dict[str, Any]]:
    """The successful records of a results log, shaped for `fmt`."""
    shape = {"alpaca_eval": _alpaca, "mt_bench": _mt_bench}.get(fmt)
    for record in _ok_once(out):
        yield record if shape is None else shape(record, model_id)


def export(out: str | Path, fmt: Format, dest: str | Path, *, model_id: str) -> int:
    """Write the results of `out` as `fmt` to `dest` (atomically: a temporary file, then a
    rename); return how many answers it holds."""
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        if fmt == "alpaca_eval":
            f.write("[")
        for row in records_as(out, fmt, model_id):
            text = json.dumps(row, ensure_ascii=False)
            if fmt == "alpaca_eval":
                f.write(("," if count else "") + "\n " + text)
            else:
                f.write(text + "\n")
            count += 1
        if fmt == "alpaca_eval":
            f.write("\n]\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return count
