"""`moa eval`: measure recipes. Every command is resumable: run it again with the same `--out`
and only what is missing runs; proposer answers come from the response cache."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from moa.cost import load_prices
from moa.errors import MoAError
from moa.evals.report import Report, markdown
from moa.evals.runner import Harness

app = typer.Typer(
    help="Measure recipes: GSM8K accuracy, HumanEval pass@1, IFBench instruction following, "
    "pairwise preference, MT-Bench, collaborativeness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

Recipes = Annotated[
    list[str],
    typer.Option("--recipe", "-r", help="A built-in recipe or a file; repeat to compare several."),
]
Limit = Annotated[int, typer.Option(help="How many items (from --offset).")]
Offset = Annotated[int, typer.Option(help="Skip this many items first.")]
OutDir = Annotated[Path | None, typer.Option("--out", help="Where results and reports go.")]
NoCache = Annotated[
    bool, typer.Option("--no-cache", help="Do not reuse or store answers in the response cache.")
]
Concurrency = Annotated[
    int | None,
    typer.Option(help="Items at once (default: 4; local models decode 4 at once)."),
]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
ReportOnly = Annotated[
    bool,
    typer.Option("--report-only", help="Run nothing: report on the results already in --out."),
]
Judge = Annotated[str, typer.Option("--judge", "-j", help="The judge's model reference.")]
Prices = Annotated[
    Path | None,
    typer.Option(help="Token prices, {model: {input, output}} per million: a cost/q column."),
]


def _run(
    command: str,
    out_dir: Path | None,
    no_cache: bool,
    concurrency: int | None,
    progress: bool,
    body: Callable[[Harness], Awaitable[Report]],
    report_only: bool = False,
    prices: Path | None = None,
) -> None:
    # llama.cpp's OpenMP threads spin while they wait; on a busy machine that costs 4-6x
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        table = load_prices(prices) if prices else None
    except MoAError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    harness = Harness(
        out_dir=out_dir or Path("eval-results") / command,
        cache=not no_cache,
        concurrency=concurrency,
        progress=progress,
        report_only=report_only,
        log=lambda m: err.print(f"[dim]{escape(m)}[/dim]"),
        prices=table,
    )

    async def go() -> Report:
        try:
            return await body(harness)
        finally:
            await harness.aclose()

    try:
        report = asyncio.run(go())
    except MoAError as exc:  # the library's own errors only: a bug keeps its traceback
        if os.environ.get("MOA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: run the same command again to resume")
        raise typer.Exit(130) from None
    out.print(markdown(report), markup=False)
    for kind, path in report.files.items():
        err.print(f"{kind}: {path}")


@app.command()
def gsm8k(
    recipe: Recipes,
    limit: Limit = 100,
    offset: Offset = 0,
    variants: Annotated[
        str,
        typer.Option(help="Which rows, comma-separated: alone, vote, rank, recipe, self."),
    ] = "alone,vote,rank,recipe,self",
    prompt: Annotated[
        str,
        typer.Option(help="'answer-line', 'plain', or a template with {question}."),
    ] = "answer-line",
    data: Annotated[Path | None, typer.Option(help="GSM8K JSONL (default: shipped).")] = None,
    timing: Annotated[
        Path | None,
        typer.Option(
            help="The --out of an uncached run (--no-cache --concurrency 1) of the same "
            "variants: its wall times go in the report."
        ),
    ] = None,
    out_dir: OutDir = None,
    no_cache: NoCache = False,
    concurrency: Concurrency = None,
    progress: Progress = True,
    report_only: ReportOnly = False,
    prices: Prices = None,
) -> None:
    """GSM8K exact-match accuracy of each recipe and its baselines (each proposer alone,
    majority vote, LLM ranker, Self-MoA twin), with 95% intervals, tokens and wall time."""
    from moa.evals import gsm8k as bench

    kinds = [k.strip() for k in variants.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(bench.KINDS))
    if unknown:
        err.print(f"[red]error:[/red] unknown variant {unknown[0]!r}; use {', '.join(bench.KINDS)}")
        raise typer.Exit(2)

    def body(h: Harness) -> Awaitable[Report]:
        return bench.evaluate(
            recipe,
            h,
            data=data,
            limit=limit,
            offset=offset,
            prompt=prompt,
            kinds=kinds,
            timing=timing,
        )

    _run("gsm8k", out_dir, no_cache, concurrency, progress, body, report_only, prices)


Split = Annotated[
    str, typer.Option(help="'dev' (choose on it), 'held-out' (report on it) or 'all'.")
]
Timing = Annotated[
    Path | None,
    typer.Option(
        help="The --out of an uncached run (--no-cache --concurrency 1) of the same "
        "variants: its wall times go in the report."
    ),
]


def _kinds(variants: str, allowed: tuple[str, ...]) -> list[str]:
    kinds = [k.strip() for k in variants.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(allowed))
    if unknown:
        err.print(f"[red]error:[/red] unknown variant {unknown[0]!r}; use {', '.join(allowed)}")
        raise typer.Exit(2)
    return kinds


@app.command()
def humaneval(
    recipe: Recipes,
    split: Split = "dev",
    limit: Annotated[int | None, typer.Option(help="How many problems (default: all).")] = None,
    offset: Offset = 0,
    variants: Annotated[
        str,
        typer.Option(
            help="Which rows, comma-separated: alone, rank, recipe, self, select (the proposal "
            "chosen by behaviour among the 'alone' rows' answers)."
        ),
    ] = "alone,rank,recipe,self,select",
    prompt: Annotated[
        str, typer.Option(help="'code-block', 'plain', or a template with {prompt}.")
    ] = "code-block",
    timeout: Annotated[float, typer.Option(help="Seconds the tests of one answer may run.")] = 10.0,
    data: Annotated[
        Path | None, typer.Option(help="HumanEval JSONL, or .jsonl.gz (default: shipped).")
    ] = None,
    timing: Timing = None,
    out_dir: OutDir = None,
    no_cache: NoCache = False,
    concurrency: Concurrency = None,
    progress: Progress = True,
    report_only: ReportOnly = False,
) -> None:
    """HumanEval pass@1 of each recipe and its baselines: every answer's function runs against
    the official tests in a sandboxed child process (timeout, memory limit, no network)."""
    from moa.evals import humaneval as bench

    kinds = _kinds(variants, bench.KINDS)

    def body(h: Harness) -> Awaitable[Report]:
        return bench.evaluate(
            recipe,
            h,
            data=data,
            split=split,
            limit=limit,
            offset=offset,
            prompt=prompt,
            kinds=kinds,
            timeout_s=timeout,
            timing=timing,
        )

    _run("humaneval", out_dir, no_cache, concurrency, progress, body, report_only)


@app.command()
def ifbench(
    recipe: Recipes,
    split: Split = "dev",
    limit: Annotated[int | None, typer.Option(help="How many prompts (default: all).")] = None,
    offset: Offset = 0,
    variants: Annotated[
        str,
        typer.Option(
            help="Which rows, comma-separated: alone, rank, recipe, self, select (the proposal "
            "most in agreement with the others among the 'alone' rows' answers)."
        ),
    ] = "alone,rank,recipe,self,select",
    data: Annotated[Path | None, typer.Option(help="IFBench JSONL (default: shipped).")] = None,
    timing: Timing = None,
    out_dir: OutDir = None,
    no_cache: NoCache = False,
    concurrency: Concurrency = None,
    progress: Progress = True,
    report_only: ReportOnly = False,
) -> None:
    """IFBench: the share of prompts (and of instructions) whose verifiable constraints each
    recipe follows, strict and loose, by IFBench's own checkers; no judge model."""
    from moa.evals import ifbench as bench

    kinds = _kinds(variants, bench.KINDS)

    def body(h: Harness) -> Awaitable[Report]:
        return bench.evaluate(
            recipe,
            h,
            data=data,
            split=split,
            limit=limit,
            offset=offset,
            kinds=kinds,
            timing=timing,
        )

    _run("ifbench", out_dir, no_cache, concurrency, progress, body, report_only)


@app.command()
def pairwise(
    recipe: Recipes,
    against: Annotated[
        Path, typer.Option(help="Reference outputs in AlpacaEval's format (JSON/JSONL).")
    ],
    judge: Judge,
    limit: Limit = 20,
    offset: Offset = 0,
    judge_prompt: Annotated[
        str, typer.Option(help="'pair-v2' (FastChat) or 'brief' (verdict only).")
    ] = "pair-v2",
    judge_max_tokens: Annotated[int, typer.Option(help="The judge's answer budget.")] = 512,
    out_dir: OutDir = None,
    no_cache: NoCache = False,
    concurrency: Concurrency = None,
    progress: Progress = True,
    prices: Prices = None,
) -> None:
    """AlpacaEval-style win rate against reference outputs, both orders, length-controlled."""
    from moa.evals import pairwise as bench

    def body(h: Harness) -> Awaitable[Report]:
        return bench.evaluate(
            recipe,
            h,
            against=against,
            judge=judge,
            limit=limit,
            offset=offset,
            judge_prompt_style=judge_prompt,
            judge_max_tokens=judge_max_tokens,
        )

    _run("pairwise", out_dir, no_cache, concurrency, progress, body, prices=prices)


@app.command("mt-bench")
def mt_bench(
    recipe: Recipes,
    judge: Judge,
    limit: Annotated[int | None, typer.Option(help="How many questions (default: all 80).")] = None,
    offset: Offset = 0,
    category: Annotated[
        list[str] | None, typer.Option(help="Only these categories (repeatable).")
    ] = None,
    questions: Annotated[Path | None, typer.Option(help="Questions JSONL.")] = None,
    references: Annotated[Path | None, typer.Option(help="Reference answers JSONL.")] = None,
    judge_max_tokens: Annotated[int, typer.Option(help="The judge's answer budget.")] = 1024,
    out_dir: OutDir = None,
    no_cache: NoCache = False,
    concurrency: Concurrency = None,
    progress: Progress = True,
    prices: Prices = None,
) -> None:
    """MT-Bench: both turns answered, each graded 1-10 by the judge (FastChat's prompts)."""
    from moa.evals import mt_bench as bench

    def body(h: Harness) -> Awaitable[Report]:
        return bench.evaluate(
            recipe,
            h,
            judge=judge,
            questions=questions,
            references=references,
            limit=limit,
            offset=offset,
            categories=category or (),
            judge_max_tokens=judge_max_tokens,
        )

    _run("mt-bench", out_dir, no_cache, concurrency, progress, body, prices=prices)


@app.command()
def collaborativeness(
    recipe: Annotated[
        str,
        typer.Option("--recipe", "-r", help="Its first layer's models are compared (two or more)."),
    ] = "moa-local",
    model: Annotated[
        list[str] | None, typer.Option(help="Compare these models instead (repeatable).")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    out_dir: OutDir = None,
    no_cache: NoCache = False,
    concurrency: Concurrency = None,
    progress: Progress = True,
) -> None:
    """The paper's Figure 1 on GSM8K: each model alone vs given the other models' answers."""
    from moa.evals import collab

    def body(h: Harness) -> Awaitable[Report]:
        return collab.evaluate(recipe, h, models=model or (), limit=limit, offset=offset)

    _run("collaborativeness", out_dir, no_cache, concurrency, progress, body)
