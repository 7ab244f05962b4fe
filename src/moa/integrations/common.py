"""What the integrations share: the recipes a host may name, a run's layers as data, and the
guard that stops a MoA run from calling moa again.

Recipes are named, never given as paths by the host's caller (an MCP client, a LiteLLM proxy
request): the built-in recipes, then the recipe files of one folder, `$MOA_RECIPES` unless a
host is given another, each under its file name without suffix.

A recipe whose model is moa itself (`llm:moa-local`, an agent that calls the MCP tool) would
run forever. A run through an integration sets a context variable that every nested call in
the process sees; across processes the same depth travels as `$MOA_DEPTH`, which `moa mcp`
exports to whatever it starts. A call at depth 1 or more is refused with a clear error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from moa.errors import ConfigError
from moa.recipe import SUFFIXES, builtin_names
from moa.redact import redact_data, redact_urls
from moa.trace import Call, Trace

__all__ = [
    "DEPTH_ENV",
    "RECIPES_ENV",
    "available",
    "describe",
    "find",
    "inherited_depth",
    "layers",
    "one_level",
    "recipes_folder",
    "summary",
]

RECIPES_ENV = "MOA_RECIPES"
DEPTH_ENV = "MOA_DEPTH"

_depth: ContextVar[int] = ContextVar("moa_depth", default=0)


# recipes ----------------------------------------------------------------------------------------
def recipes_folder(env: Mapping[str, str] = os.environ) -> Path | None:
    """The folder `$MOA_RECIPES` names, if it is set."""
    value = env.get(RECIPES_ENV, "").strip()
    return Path(value).expanduser() if value else None


def available(folder: Path | None = None) -> dict[str, str]:
    """Every recipe a host may name, with what `load_recipe` takes for it: the built-ins, then
    `folder`'s recipe files by file name without suffix (a file wins over a built-in)."""
    found = {name: name for name in builtin_names()}
    if folder is None:
        return found
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder of recipe files")
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in SUFFIXES and path.is_file():
            found[path.stem] = str(path)
    return found


def find(name: str, folder: Path | None = None) -> str:
    """The source of the recipe called `name`, or an error that lists the names known."""
    known = available(folder)
    if name not in known:
        raise ConfigError(f"unknown recipe {name!r}; known: {', '.join(known)}")
    return known[name]


# a run as data ----------------------------------------------------------------------------------
def _answer(call: Call) -> dict[str, Any]:
    return {
        "agent": call.agent,
        "model": call.model,
        "role": call.role,
        "text": call.text,
        "error": call.error,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "latency_s": round(call.latency_s, 3),
    }


def layers(trace: Trace) -> list[dict[str, Any]]:
    """The answers of every layer before the aggregator's (judges included), in order, with
    URLs in errors and agent names redacted."""
    numbers = sorted({c.layer for c in trace.calls if c.role != "aggregator"})
    data = [
        {"layer": n, "answers": [_answer(c) for c in trace.layer(n) if c.role != "aggregator"]}
        for n in numbers
    ]
    redacted: list[dict[str, Any]] = redact_data(data)
    return redacted


def summary(trace: Trace) -> dict[str, Any]:
    """A finished run for a host to keep: the recipe, the layers, the aggregator's call, the
    totals and the strategy's notes."""
    totals = trace.totals()
    final = [_answer(c) for c in trace.calls if c.role == "aggregator"]
    data: dict[str, Any] = redact_data(
        {
            "recipe": trace.recipe,
            "layers": layers(trace),
            "aggregator": final[-1] if final else None,
            "totals": {
                "calls": totals.calls,
                "failed": totals.failed,
                "input_tokens": totals.input_tokens,
                "output_tokens": totals.output_tokens,
                "latency_s": round(totals.latency_s, 3),
                "cost": totals.cost,
            },
            "notes": list(trace.notes),
        }
    )
    return data


def describe(call: Call) -> str:
    """One agent's answer as plain text: a heading line, then the answer or the error."""
    head = f"layer {call.layer} · {redact_urls(call.agent)}"
    if not call.ok:
        return f"{head} failed: {redact_urls(call.error or '')}"
    figures = f"{call.output_tokens} tok, {call.latency_s:.1f}s"
    return f"{head} ({figures})\n{(call.text or '').strip()}"


# the recursion guard ----------------------------------------------------------------------------
def inherited_depth(env: Mapping[str, str] = os.environ) -> int:
    """The depth this process was started at (`$MOA_DEPTH`, 0 when unset)."""
    raw = env.get(DEPTH_ENV, "").strip() or "0"
    try:
        depth = int(raw)
    except ValueError:
        raise ConfigError(f"{DEPTH_ENV}={raw!r}: expected a whole number") from None
    return max(depth, 0)


@contextmanager
def one_level(inherited: int = 0) -> Iterator[None]:
    """Run one level down; refuse when already inside a run (in this process, or in the one
    that started it: `inherited`)."""
    depth = max(inherited, _depth.get())
    if depth > 0:
        raise ConfigError(
            f"refused: moa was called from inside a MoA run (depth {depth}); "
            "a recipe's models must not call moa again"
        )
    _depth.set(depth + 1)
    try:
        yield
    finally:
        _depth.set(depth)  # set, not reset: a generator may finish in another context
