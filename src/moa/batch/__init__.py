"""Run a function or a recipe over a dataset: streamed, bounded, durable, resumable.

    summary = await run_batch("questions.jsonl", work, out="results.jsonl", concurrency=4)
    summary = run_recipe_sync("local", "questions.jsonl", out="answers.jsonl")
    export("answers.jsonl", "alpaca_eval", "answers.alpaca_eval.json", model_id="moa")

`work(item)` returns a JSON-able dict. Each finished item's line, `{"id": ..., "ok": true,
...result}` or `{"id": ..., "ok": false, "error": ..., "error_type": ...}`, is on disk before
the item counts; a failing item is recorded and the batch goes on. Run it again with the same
`out` and only the items without a successful line run. Items are read as a stream, at most
`concurrency` in flight. `moa.batch.ray` runs the same batch on a Ray cluster.
"""

from moa.batch.answers import answer_item, run_recipe, run_recipe_sync
from moa.batch.executor import BatchSummary, Work, run_batch, run_batch_sync
from moa.batch.formats import FORMATS, Format, export
from moa.batch.log import ResultLog, iter_results, read_results
from moa.batch.reader import count_items, iter_items, iter_rows, load_items, load_json_or_jsonl

__all__ = [
    "FORMATS",
    "BatchSummary",
    "Format",
    "ResultLog",
    "Work",
    "answer_item",
    "count_items",
    "export",
    "iter_items",
    "iter_results",
    "iter_rows",
    "load_items",
    "load_json_or_jsonl",
    "read_results",
    "run_batch",
    "run_batch_sync",
    "run_recipe",
    "run_recipe_sync",
]
