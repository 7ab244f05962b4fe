"""GSM8K exact-match accuracy of a recipe and of the baselines made from it, on the same problems.

For a recipe R, the variants are: each proposer of R's first layer alone, a majority vote of
those proposals, the LLM ranker over them, R itself, and R's Self-MoA twin (as many samples of
R's aggregator model as R has proposers, aggregated the same way). With the response cache, the
proposals are generated once and every variant reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moa.errors import ConfigError
from moa.evals.data import load_json_or_jsonl, packaged, require
from moa.evals.report import Report, write_report
from moa.evals.runner import (
    Harness,
    RecipeLike,
    Variant,
    agent_label,
    answer_fields,
    cost_columns,
    proposers,
    scored_row,
    single,
    wilson,
)
from moa.plan import compile_recipe
from moa.recipe import Agent, Layer, Recipe, load_recipe
from moa.strategies import Strategy
from moa.strategies.finals.rank import Rank
from moa.strategies.finals.vote import Vote
from moa.strategies.read import extract_number

__all__ = [
    "KINDS",
    "PROMPTS",
    "evaluate",
    "load_problems",
    "score",
    "template_of",
    "variants_for",
]

PROMPTS = {
    "answer-line": (
        "{question}\n\nSolve step by step, then give the final answer on the last line as "
        "'Answer: <number>'."
    ),
    "plain": "{question}",
}
"""How a problem is put to the models. 'answer-line' is the one the measurements use."""

KINDS = ("alone", "vote", "rank", "recipe", "self")


def load_problems(
    path: str | Path | None = None, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """Problems with `id`, `question` and `gold` (the number after '####')."""
    rows = load_json_or_jsonl(path or packaged("gsm8k_test.jsonl"))
    out = []
    where = path or "gsm8k_test.jsonl"
    for i, row in enumerate(rows):
        require(row, ("question",), f"{where}: item {i}")
        gold = extract_number(str(row.get("answer", "")))
        out.append({"id": str(row.get("id", i)), "question": row["question"], "gold": gold})
    end = None if limit is None else offset + limit
    return out[offset:end]


def template_of(prompt: str) -> str:
    """The template of a prompt style ('answer-line', 'plain') or of a template itself, checked:
    it may name {question} and nothing else."""
    template = PROMPTS.get(prompt, prompt)
    try:
        template.format(question="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"--prompt: {template!r} is not a template of {{question}} ({exc!r}): use braces "
            "for only {question}, or double them ({{ }}) for a literal brace"
        ) from None
    return template


def score(text: str | None, gold: str | None) -> tuple[str | None, bool]:
    answer = extract_number(text)
    return answer, answer is not None and answer == gold


def _twin(recipe: Recipe) -> Recipe | None:
    """R's Self-MoA twin: n samples of R's aggregator model, or None if R already is one."""
    first = proposers(recipe)
    agg = recipe.aggregator
    if not first or all(a.model == agg.model for a in first):
        return None
    template = first[0]
    sample = Agent(
        model=agg.model,
        n=len(first),
        temperature=template.temperature if template.temperature else 0.7,
        max_tokens=template.max_tokens,
        seed=template.seed if template.seed is not None else 0,
        system=template.system,
    )
    return recipe.model_copy(
        update={"name": f"{recipe.name}: Self-MoA twin", "layers": (Layer(agents=(sample,)),)}
    )


def variants_for(recipe: Recipe, kinds: Sequence[str] = KINDS) -> list[Variant]:
    """The rows a recipe brings to a GSM8K report (see the module docstring)."""
    out: list[Variant] = []
    first = proposers(recipe)
    base = recipe.model_copy(update={"layers": recipe.layers[:1]})
    if "alone" in kinds:
        agents = first or [compile_recipe(recipe).aggregator]
        for agent in agents:
            label = f"{agent_label(agent)} alone"
            out.append(Variant(label, single(recipe, agent, label), "alone"))
    if "vote" in kinds and len(first) > 1:
        strategy = Strategy(final=Vote(), answer=recipe.strategy.answer)
        name = f"{recipe.name}: majority vote"
        out.append(
            Variant(name, base.model_copy(update={"name": name, "strategy": strategy}), "vote")
        )
    if "rank" in kinds and len(first) > 1:
        judge = next(iter(recipe.strategy.final.judges()), None)
        strategy = Strategy(final=Rank(judge=judge))
        name = f"{recipe.name}: LLM ranker"
        out.append(
            Variant(name, base.model_copy(update={"name": name, "strategy": strategy}), "rank")
        )
    if "recipe" in kinds:
        out.append(Variant(recipe.name, recipe, "recipe"))
    if "self" in kinds and (twin := _twin(recipe)) is not None:
        out.append(Variant(twin.name, twin, "self"))
    return out


def dedupe(variants: Sequence[Variant]) -> list[Variant]:
    """One row per distinct recipe (the first name wins)."""
    seen: set[str] = set()
    out = []
    for v in variants:
        if v.key not in seen:
            seen.add(v.key)
            out.append(v)
    return out


def summarize(
    variant: Variant,
    records: Sequence[dict[str, Any]],
    n: int,
    timing: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A report row. Wall time comes from `timing` (the records of an uncached run) if given,
    else from this run's items that made every call afresh."""
    ok = [r for r in records if r.get("ok")]
    # scored again from the text, so every row uses the same (current) extraction
    correct = sum(1 for r in ok if score(r.get("text"), r.get("gold"))[1])
    lo, hi = wilson(correct, n)
    return {
        **cost_columns(variant, ok, n, timing),
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "ci_low": lo,
        "ci_high": hi,
        "output_tokens": sum(r["output_tokens"] for r in ok) / max(len(ok), 1),
        "recipe": variant.recipe.model_dump(mode="json", exclude_defaults=True),
    }


async def run_variant(
    harness: Harness,
    variant: Variant,
    problems: Sequence[dict[str, Any]],
    template: str,
    timing: Path | None = None,
) -> dict[str, Any]:
    """Answer and score every problem with one variant (resumable); its report row. `timing`
    is the output folder of an uncached run of the same variants, for the wall times."""

    async def work(moa: Any, item: dict[str, Any]) -> dict[str, Any]:
        result, cost, wall = await harness.answer(moa, template.format(question=item["question"]))
        answer, correct = score(result.text, item["gold"])
        return {
            "answer": answer,
            "gold": item["gold"],
            "correct": correct,
            **answer_fields(result, cost, wall),
        }

    return await scored_row(harness, variant, problems, work, summarize, timing)


async def evaluate(
    recipes: Sequence[RecipeLike],
    harness: Harness,
    *,
    data: str | Path | None = None,
    limit: int | None = 100,
    offset: int = 0,
    prompt: str = "answer-line",
    kinds: Sequence[str] = KINDS,
    title: str = "GSM8K",
    timing: str | Path | None = None,
) -> Report:
    """Run every variant of every recipe on the same problems; write the report."""
    problems = load_problems(data, limit=limit, offset=offset)
    template = template_of(prompt)
    variants = dedupe([v for r in recipes for v in variants_for(load_recipe(r), kinds)])
    rows = []
    for variant in sorted(variants, key=lambda v: KINDS.index(v.kind)):
        row = await run_variant(
            harness, variant, problems, template, Path(timing) if timing else None
        )
        if not row["n"]:
            continue
        rows.append(row)
        harness.log(
            f"{variant.name}: {row['accuracy']:.1%} "
            f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}] on {len(problems)}, "
            f"{row['tokens']:.0f} tokens/q"
            + (f", {row['wall']:.1f} s/q (n={row['timed']})" if row["wall"] is not None else "")
        )
    meta = {
        "benchmark": "gsm8k",
        "problems": len(problems),
        "offset": offset,
        "prompt": template,
        "data": str(data or "packaged gsm8k_test.jsonl (MIT)"),
    }
    return write_report(
        harness.out_dir,
        Report(
            title=f"{title}: exact match on {len(problems)} problems (offset {offset})",
            rows=rows,
            meta=meta,
            kind="accuracy",
        ),
    )
