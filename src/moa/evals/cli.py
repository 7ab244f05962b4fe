"""`moa eval`: measure recipes. One command per registered benchmark (`moa.evals.registry`),
made from its class: the options every benchmark shares, and its own (its dataclass fields).
Every command is resumable: run it again with the same `--out` and only what is missing runs;
answers come from the response cache.

Errors go through `moa.console.clean_errors`, as every `moa` command's do: one line, URLs
redacted, exit 2 for a configuration mistake, 1 for a failed run (also when some items failed:
run the command again to retry them), 130 on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import typing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from moa.console import clean_errors, err, out
from moa.cost import load_prices
from moa.errors import ConfigError
from moa.evals.benchmark import Benchmark
from moa.evals.harness import Harness
from moa.evals.registry import BENCHMARKS, benchmark_class
from moa.evals.report import Report, markdown
from moa.redact import redact_urls

app = typer.Typer(
    help="Measure recipes: GSM8K accuracy, HumanEval pass@1, IFEval and IFBench instruction "
    "following, pairwise preference, MT-Bench, collaborativeness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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
Prices = Annotated[
    Path | None,
    typer.Option(help="Token prices, {model: {input, output}} per million: a cost/q column."),
]
Limit = Annotated[int, typer.Option(help="How many items (from --offset).")]
Offset = Annotated[int, typer.Option(help="Skip this many items first.")]


def run(
    command: str,
    body: Callable[[Harness], Awaitable[Report]],
    *,
    out_dir: Path | None,
    no_cache: bool,
    concurrency: int | None,
    progress: bool,
    report_only: bool = False,
    prices: Path | None = None,
) -> None:
    """Run one evaluation and print its report: the one path every command takes."""
    # llama.cpp's OpenMP threads spin while they wait; on a busy machine that costs 4-6x
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with clean_errors():
        harness = Harness(
            out_dir=out_dir or Path("eval-results") / command,
            cache=not no_cache,
            concurrency=concurrency,
            progress=progress,
            report_only=report_only,
            log=lambda m: err.print(f"[dim]{escape(redact_urls(m))}[/dim]"),
            prices=load_prices(prices) if prices else None,
        )

        async def go() -> Report:
            try:
                return await body(harness)
            finally:
                await harness.aclose()

        report = asyncio.run(go())
    out.print(markdown(report), markup=False)
    for kind, path in report.files.items():
        err.print(f"{kind}: {path}")
    failed = sum(int(row.get("errors", 0)) for row in report.rows)
    if failed:
        err.print(f"[red]{failed} item(s) failed[/red]: run the same command again to retry them")
        raise typer.Exit(1)


def kinds_of(variants: str, allowed: tuple[str, ...]) -> list[str]:
    kinds = [k.strip() for k in variants.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r}; use {', '.join(allowed)}")
    return kinds


def _option(name: str, kind: Any, default: Any, help: str, *flags: str) -> inspect.Parameter:
    names = flags or ("--" + name.replace("_", "-"),)
    annotation = Annotated[kind, typer.Option(*names, help=help)]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _own_options(cls: type[Benchmark]) -> list[tuple[str, inspect.Parameter]]:
    """(field name, parameter) for each of the benchmark's dataclass fields."""
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        flag = str(f.metadata.get("flag", f.name))
        flags = [
            "--" + flag.replace("_", "-"),
            *([f.metadata["short"]] if "short" in f.metadata else []),
        ]
        default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        param = _option(f"opt_{flag}", hints[f.name], default, f.metadata.get("help", ""), *flags)
        params.append((f.name, param))
    return params


def command_for(name: str) -> Callable[..., None]:
    """The `moa eval NAME` command of a registered benchmark."""
    cls = benchmark_class(name)
    own = _own_options(cls)
    shared = [
        _option(
            "recipe",
            list[str],
            inspect.Parameter.empty,
            "A built-in recipe or a file; repeat to compare several.",
            "--recipe",
            "-r",
        )
    ]
    if cls.splits:
        help = "'dev' (choose on it), 'held-out' (report on it) or 'all'."
        shared.append(_option("split", str, cls.splits[0], help))
    what = "all" if cls.default_limit is None else str(cls.default_limit)
    shared.append(
        _option("limit", int | None, cls.default_limit, f"How many items (default: {what}).")
    )
    shared.append(_option("offset", int, 0, "Skip this many items first."))
    if len(cls.kinds) > 1:
        help = f"Which rows, comma-separated: {', '.join(cls.kinds)}."
        shared.append(_option("variants", str, ",".join(cls.kinds), help))
        help = (
            "The --out of an uncached run (--no-cache --concurrency 1) of the same variants: "
            "its wall times go in the report."
        )
        shared.append(_option("timing", Path | None, None, help))
    if cls.data_help:
        shared.append(_option("data", Path | None, None, cls.data_help))
    common = [
        ("out_dir", OutDir, None),
        ("no_cache", NoCache, False),
        ("concurrency", Concurrency, None),
        ("progress", Progress, True),
        ("report_only", ReportOnly, False),
        ("prices", Prices, None),
    ]
    tail = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
        for n, a, d in common
    ]
    params = [*shared, *(p for _, p in own), *tail]

    def command(**kw: Any) -> None:
        with clean_errors():
            bench = cls(**{field: kw.pop(p.name) for field, p in own})
            kinds = kinds_of(kw.pop("variants"), cls.kinds) if "variants" in kw else None
        options = {k: kw.pop(k) for k in ("split", "limit", "offset", "timing", "data") if k in kw}
        recipes = kw.pop("recipe")

        def body(h: Harness) -> Awaitable[Report]:
            from moa.evals.runner import evaluate

            return evaluate(bench, recipes, h, kinds=kinds, **options)

        run(name, body, **kw)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = " ".join((inspect.getdoc(cls) or name).split())
    return command


for _name in BENCHMARKS:
    app.command(_name)(command_for(_name))


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
    report_only: ReportOnly = False,
    prices: Prices = None,
) -> None:
    """The paper's Figure 1 on GSM8K: each model alone vs given the other models' answers."""
    from moa.evals import collab

    def body(h: Harness) -> Awaitable[Report]:
        return collab.evaluate(recipe, h, models=model or (), limit=limit, offset=offset)

    run(
        "collaborativeness",
        body,
        out_dir=out_dir,
        no_cache=no_cache,
        concurrency=concurrency,
        progress=progress,
        report_only=report_only,
        prices=prices,
    )
