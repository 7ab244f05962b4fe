"""`moa mcp`: recipes as tools of an MCP server (the official `mcp` SDK), over stdio or
streamable HTTP on loopback.

Tools:
    ask(prompt, recipe="local", show_layers=false)   the answer (and the layers' answers, as a
                                                     second text block and in structured content)
    list_recipes()                                   the recipes `ask` takes, with descriptions

Every finished agent call is a progress notification (when the client asked for progress).
Recipes are named, never paths: the built-ins and the files of one folder (`--recipes`, else
`$MOA_RECIPES`). A bad recipe, a missing key or a failed run is a tool error with one line,
and the server goes on. A server started from inside a MoA run (`$MOA_DEPTH` of 1 or more)
refuses `ask`, and it exports its own depth to what it starts, so a recipe whose agent calls
this server again is refused instead of recursing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ContentBlock, TextContent

from moa import __version__
from moa.backends.base import Backend
from moa.engine import MoA
from moa.errors import ConfigError, MoAError
from moa.events import AgentFinished, Finished, Result
from moa.integrations.common import (
    DEPTH_ENV,
    available,
    describe,
    find,
    inherited_depth,
    one_level,
    summary,
)
from moa.recipe import load_recipe
from moa.redact import redact_urls

__all__ = ["build", "serve"]

INSTRUCTIONS = (
    "Mixture-of-Agents: `ask` has several models answer a prompt and one aggregate their "
    "answers (slower than one model, often better). `list_recipes` names the recipes."
)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)  # stdout is the protocol's


async def _run(moa: MoA, prompt: str, ctx: Context[Any, Any]) -> Result:
    """The run, each finished call reported as progress."""
    total = sum(len(layer.agents) for layer in moa.plan.layers) + 1
    done = 0
    result: Result | None = None
    async with contextlib.aclosing(moa.astream(prompt)) as events:
        async for event in events:
            if isinstance(event, AgentFinished):
                done += 1
                heading = describe(event.call).splitlines()[0]
                await ctx.report_progress(done, max(total, done), heading)
            elif isinstance(event, Finished):
                result = event.result
    assert result is not None  # astream ends with Finished or raises
    return result


def build(
    *,
    recipes_dir: Path | None = None,
    depth: int = 0,
    backends: Mapping[str, Backend] | None = None,
) -> MCPServer:
    """The server: its tools offer the built-in recipes and those of `recipes_dir`. `depth`
    is the one this process was started at (a run refuses at 1 or more)."""
    server = MCPServer(name="moa", instructions=INSTRUCTIONS, version=__version__)

    @server.tool(
        description="Answer a prompt with a Mixture-of-Agents recipe (list_recipes names them); "
        "show_layers adds every agent's answer."
    )
    async def ask(
        prompt: str, ctx: Context[Any, Any], recipe: str = "local", show_layers: bool = False
    ) -> CallToolResult:
        try:
            if not prompt.strip():
                raise ConfigError("the prompt is empty")
            with one_level(depth):
                source = find(recipe, recipes_dir)
                moa = MoA(load_recipe(source), backends=backends, progress=_stderr)
                try:
                    result = await _run(moa, prompt, ctx)
                finally:
                    await moa.aclose()
        except MoAError as exc:
            raise ToolError(redact_urls(str(exc))) from None
        data = {"answer": result.text, **summary(result.trace)}
        content: list[ContentBlock] = [TextContent(type="text", text=result.text)]
        if show_layers:
            shown = [describe(c) for c in result.trace.calls if c.role != "aggregator"]
            content.append(TextContent(type="text", text="\n\n".join(shown)))
        else:
            del data["layers"]
        return CallToolResult(content=content, structured_content=data)

    @server.tool(description="The recipes ask takes: name, description, models.")
    def list_recipes() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, source in available(recipes_dir).items():
            try:
                recipe = load_recipe(source)
            except MoAError as exc:
                out.append({"name": name, "error": redact_urls(str(exc))})
                continue
            models = [a.model for layer in recipe.layers for a in layer.agents]
            models.append(recipe.aggregator.model)
            out.append(
                {"name": name, "description": recipe.description, "models": sorted(set(models))}
            )
        return out

    return server


def serve(*, recipes_dir: Path | None = None, http_port: int | None = None) -> None:
    """Run the server on stdio, or on streamable HTTP at 127.0.0.1:`http_port` (/mcp)."""
    depth = inherited_depth()
    available(recipes_dir)  # a folder that is not one: an error now, not at the first call
    os.environ[DEPTH_ENV] = str(depth + 1)  # what this server starts is inside its runs
    server = build(recipes_dir=recipes_dir, depth=depth)
    if http_port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=http_port)
