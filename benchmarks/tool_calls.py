"""How the in-process llama.cpp backend should return tool calls: read from the model's own
text (`tool_mode="text"`) or held to a JSON schema of the declared calls (`"schema"`).

Each prompt is asked once per mode, greedily, with three tools declared and tool_choice auto;
an answer is right when `moa.toolcalls.checked` accepts it and it is the expected action (the
same calls with the same arguments, or text where no tool is needed). Prints one row per
prompt and mode, then the totals.

    .venv/bin/python benchmarks/tool_calls.py [--model NAME] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from moa import catalog
from moa.backends.llamacpp import LlamaCppBackend
from moa.errors import BadAnswer
from moa.toolcalls import checked
from moa.tools import canonical, make_act
from moa.types import Message, Request, Settings


def _tool(name: str, description: str, **props: str) -> dict[str, Any]:
    properties = {k: {"type": v} for k, v in props.items()}
    parameters = {"type": "object", "properties": properties, "required": list(props)}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


TOOLS = [
    _tool("lookup", "Look up the value stored under a key.", key="string"),
    _tool("get_weather", "The current weather in a city.", city="string"),
    _tool("add", "Add two integers.", a="integer", b="integer"),
]
# (prompt, the expected action: canonical calls, or None for an answer in text)
CASES: list[tuple[str, str | None]] = [
    ("What value is stored under the key 'alpha'?", 'lookup({"key":"alpha"})'),
    ("What's the weather in Paris right now?", 'get_weather({"city":"Paris"})'),
    ("Use the calculator to add 17 and 25.", 'add({"a":17,"b":25})'),
    ("Say hello in French.", None),
    ("What is the capital of Italy?", None),
    (
        "Look up the key 'beta' and also get the weather in Oslo.",
        'get_weather({"city":"Oslo"})\nlookup({"key":"beta"})',
    ),
]


async def one(
    backend: LlamaCppBackend, path: str, prompt: str, max_tokens: int
) -> tuple[str, float, str]:
    act = make_act(tools=TOOLS)
    assert act is not None
    request = Request(
        model=path,
        messages=(Message("user", prompt),),
        settings=Settings(temperature=0, max_tokens=max_tokens),
        act=act,
    )
    start = time.monotonic()
    done = await backend.complete(request)
    seconds = time.monotonic() - start
    try:
        answer = checked(done, act)
    except BadAnswer as exc:
        return f"bad: {exc.message}", seconds, done.text
    action = canonical(answer.tool_calls) if answer.tool_calls else "text"
    return action, seconds, done.text


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    path = str(catalog.ensure(args.model, auto_pull=False))
    totals: dict[str, list[float]] = {}
    for mode in ("text", "schema"):
        backend = LlamaCppBackend(tool_mode=mode, parallel=1, n_ctx=2048)
        await one(backend, path, "Hi", 4)  # load the model before timing
        for prompt, expected in CASES:
            action, seconds, raw = await one(backend, path, prompt, args.max_tokens)
            right = action == (expected or "text")
            totals.setdefault(mode, []).append(float(right))
            totals.setdefault(mode + " s", []).append(seconds)
            shown = json.dumps(raw[:70])
            mark = "ok " if right else "NO "
            print(f"{mode:6} {mark} {seconds:6.1f}s  {prompt[:40]:40}  {action[:40]!r}  {shown}")
    for mode in ("text", "schema"):
        right, secs = totals[mode], totals[mode + " s"]
        each = sum(secs) / len(secs)
        print(
            f"{mode}: {int(sum(right))} of {len(right)} right, {sum(secs):.1f} s, {each:.1f} s each"
        )


if __name__ == "__main__":
    asyncio.run(main())
