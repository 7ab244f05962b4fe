"""`moa batch`: a recipe over a dataset, on this machine or a Ray cluster (registered by
`moa.cli`)."""

from __future__ import annotations

import asyncio
import sys
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from moa.batch.formats import Format, default_path, export
from moa.batch.reader import iter_items

__all__ = ["batch"]


def _check_first(source: Path, prompt_key: str, id_key: str) -> None:
    """Fail early, in one line, when the items do not hold the prompt at all."""
    from moa.console import err

    first = next(islice(iter_items(source, id_key=id_key), 1), None)
    if first is not None and prompt_key not in first and not isinstance(first.get("turns"), list):
        fields = ", ".join(sorted(first)[:8])
        err.print(
            f"[red]error:[/red] {escape(str(source))}: item {escape(first[id_key])} has no "
            f"{prompt_key!r} field (it has: {escape(fields)}); see --prompt-key"
        )
        raise typer.Exit(2)


def batch(
    source: Annotated[
        Path,
        typer.Argument(help="JSONL (read as a stream), a JSON list, or MT-Bench questions."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Results, one JSONL line per item (the resume log).")
    ],
    recipe: Annotated[
        str, typer.Option("--recipe", "-r", help="A built-in recipe name or a YAML/TOML/JSON file.")
    ] = "local",
    prompt_key: Annotated[
        str,
        typer.Option(
            help="The field holding the prompt (text or messages); MT-Bench 'turns' "
            "are answered turn by turn when it is absent."
        ),
    ] = "prompt",
    id_key: Annotated[str, typer.Option(help="The field holding each item's id.")] = "id",
    concurrency: Annotated[int, typer.Option(help="Items in flight at once (in all).")] = 4,
    trace: Annotated[bool, typer.Option("--trace/--no-trace", help="Keep each trace.")] = True,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Also write the answers as jsonl (only the log), "
            "alpaca_eval (model outputs) or mt_bench (FastChat answers).",
        ),
    ] = "jsonl",
    format_out: Annotated[
        Path | None, typer.Option(help="Where --format writes (default: next to --out).")
    ] = None,
    model_id: Annotated[
        str | None,
        typer.Option(
            help="The generator / model_id in --format files (default: the recipe's name)."
        ),
    ] = None,
    prices: Annotated[
        Path | None, typer.Option(help="Token prices, {model: {input, output}} per million.")
    ] = None,
    executor: Annotated[str, typer.Option(help="local, or ray (needs the ray extra).")] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray: auto (this machine's cluster) or ray://HOST:10001; "
            "default: start a local Ray instance."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Ray: worker actors (one engine each).")] = 2,
    fsync: Annotated[
        bool, typer.Option("--fsync/--no-fsync", help="fsync each group of lines (power-safe).")
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Answer every item of a dataset; run it again to resume (only missing items run)."""
    from moa.batch.answers import run_recipe
    from moa.console import clean_errors, err
    from moa.console import load as _load
    from moa.console import progress as _progress
    from moa.cost import load_prices
    from moa.engine import MoA
    from moa.errors import ConfigError

    with clean_errors():
        if fmt not in ("jsonl", "alpaca_eval", "mt_bench"):
            raise ConfigError(f"--format: {fmt!r} is not one of jsonl, alpaca_eval, mt_bench")
        if executor not in ("local", "ray"):
            raise ConfigError(f"--executor: {executor!r} is not one of local, ray")
        _check_first(source, prompt_key, id_key)
        table = load_prices(prices) if prices else None
        loaded = _load(recipe, dry_run)
        common: dict[str, Any] = {
            "out": out,
            "prompt_key": prompt_key,
            "id_key": id_key,
            "keep_trace": trace,
            "concurrency": concurrency,
            "progress": sys.stderr.isatty(),
            "description": loaded.name,
            "prices": table,
            "fsync": fsync,
        }
        if executor == "ray":
            from moa.batch.ray import run_recipe_ray

            summary = asyncio.run(
                run_recipe_ray(loaded, source, workers=workers, address=address, **common)
            )
        else:
            moa = MoA(loaded, progress=_progress)
            moa.prepare()

            async def go() -> Any:
                try:
                    return await run_recipe(moa.recipe, source, moa=moa, **common)
                finally:
                    await moa.aclose()

            summary = asyncio.run(go())
        cost = "" if summary.cost is None else f", cost {summary.cost:.4f}"
        if summary.cost is not None and summary.unpriced:
            cost += f" ({summary.unpriced} items without a price)"
        err.print(
            f"{summary.ran} answered ({summary.failed} failed), {summary.skipped} already done, "
            f"in {summary.seconds:.1f}s{cost} → {escape(str(out))}"
        )
        if fmt != "jsonl":
            kind: Format = "alpaca_eval" if fmt == "alpaca_eval" else "mt_bench"
            dest = format_out or default_path(out, kind)
            count = export(out, kind, dest, model_id=model_id or loaded.name)
            err.print(f"{count} answers as {fmt} → {escape(str(dest))}")
        for note in summary.notes:
            err.print(f"[dim]{escape(note)}[/dim]")
        for line in summary.errors[:5]:
            err.print(f"[red]failed[/red] {escape(line)}")
        if summary.failed:
            raise typer.Exit(1)
