"""How often an agent's tool loop of N steps completes through `moa serve` on the local model,
against the same model called alone (a recipe of its aggregator only), with the `openai`
client on loopback.

The task is a chain: `lookup(key)` of the first key names the next key, and so on for N steps;
the last names a number the answer must give. No step's key can be guessed, so each call must
come from the previous result. A loop completes when the answer gives the number within
2N + 2 requests. Prints each run, then the completion ratio (moa / alone).

    .venv/bin/python benchmarks/tool_loop.py [--steps 3] [--trials 2] [--recipe local]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Any

import openai

from moa.server import create_app
from moa.server.testing import ServerThread

print = functools.partial(print, flush=True)  # progress as it goes
WORDS = ["amber", "cobalt", "saffron", "teal", "umber", "violet", "ochre", "jade", "coral", "slate"]
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up the value stored under a key.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    },
}
ALONE = {
    "description": "Qwen2.5-Coder-1.5B alone, greedy",
    "layers": [],
    "aggregator": {
        "model": "local:qwen2.5-coder-1.5b-instruct",
        "temperature": 0,
        "max_tokens": 256,
    },
}


def chain(trial: int, steps: int) -> tuple[dict[str, str], str]:
    """key -> what lookup returns; the number the answer must give."""
    keys = [f"{WORDS[(trial * 3 + i) % len(WORDS)]}-{trial}{i}" for i in range(steps)]
    treasure = str(1000 + 7 * trial + 131 * steps)
    table = {k: f"The next key is '{keys[i + 1]}'." for i, k in enumerate(keys[:-1])}
    table[keys[-1]] = f"The treasure number is {treasure}."
    return table, treasure


def loop(client: openai.OpenAI, model: str, trial: int, steps: int) -> tuple[bool, int, str]:
    table, treasure = chain(trial, steps)
    first = next(iter(table))
    messages: list[Any] = [
        {
            "role": "system",
            "content": "Use the lookup tool. Each result names the next key to look up.",
        },
        {
            "role": "user",
            "content": f"Start by looking up the key '{first}' and follow the keys until you find "
            "the treasure number. Then tell me the treasure number.",
        },
    ]
    for request in range(1, 2 * steps + 3):
        reply = client.chat.completions.create(model=model, messages=messages, tools=[LOOKUP])
        message = reply.choices[0].message
        if reply.choices[0].finish_reason != "tool_calls":
            text = message.content or ""
            return treasure in text, request, text[:60]
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls or ():
            key = json.loads(call.function.arguments).get("key", "")
            result = table.get(key, f"Nothing is stored under '{key}'.")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return False, 2 * steps + 2, "(too many requests)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--recipe", default="local", help="the MoA recipe to compare")
    args = parser.parse_args()
    app = create_app(api_key="", recipes={"alone": ALONE}, env={})
    done: dict[str, int] = {}
    with (
        ServerThread(app) as server,
        openai.OpenAI(
            base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=900
        ) as client,
    ):
        for model in (args.recipe, "alone"):
            done[model] = 0
            for trial in range(args.trials):
                start = time.monotonic()
                ok, requests, last = loop(client, model, trial, args.steps)
                done[model] += ok
                seconds = time.monotonic() - start
                what = "completed" if ok else "FAILED   "
                print(
                    f"{model:8} trial {trial}: {what} {requests} requests {seconds:6.1f}s  {last!r}"
                )
    moa, alone = done[args.recipe], done["alone"]
    ratio = f"{moa / alone:.2f}" if alone else "inf" if moa else "n/a"
    of = f"of {args.trials}"
    head = f"{args.steps}-step loops completed"
    print(f"{head}: {args.recipe} {moa} {of}, alone {alone} {of}; ratio {ratio}")


if __name__ == "__main__":
    main()
