"""What every `moa` command shares: the two consoles, one clean line per error, progress."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from moa.errors import ConfigError, MoAError
from moa.recipe import Recipe, load_recipe
from moa.redact import redact_urls

__all__ = ["clean_errors", "err", "load", "out", "progress"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def clean_errors() -> Iterator[None]:
    """One line on stderr for our errors, 130 on Ctrl-C; tracebacks only with MOA_DEBUG."""
    try:
        yield
    except MoAError as exc:
        if os.environ.get("MOA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(redact_urls(str(exc)))}")
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: every call in flight was cancelled")
        raise typer.Exit(130) from None


def progress(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/dim]")


def load(recipe: str, dry_run: bool) -> Recipe:
    loaded = load_recipe(recipe)
    return loaded.dry_run() if dry_run else loaded
