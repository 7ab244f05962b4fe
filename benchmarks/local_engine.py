"""The local engine through our backend against the same engine called directly.

One process, one model file, two loaded instances with the same settings: xllamacpp's Server
called as its own tests do (`handle_chat_completions`, 4 threads for 4 requests), and
LlamaCppBackend. Rounds alternate between them; each figure is the median of the rounds, and
each ratio compares figures of the same run.

1. Decode speed, one greedy sequence and four sampled ones (T=0.7, seeds 0..3), tokens/s
   counted from the engine's usage over the wall time of the requests.
2. The four samples again, with the prompt shared (one request with n=4, what the backend does
   for seeded samples) and without (four requests): prompt tokens evaluated and wall time.
3. Greedy answers decoded beside three sampled ones, against the same greedy answer alone: how
   often they differ (batched arithmetic could make them).

    .venv/bin/python benchmarks/local_engine.py [--model qwen2.5-coder-1.5b-instruct]
        [--max-tokens 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from typing import Any

from moa import catalog
from moa.backends.llamacpp import LlamaCppBackend, default_threads, engine_metrics, unload_all
from moa.types import Request, Settings, user

PROMPT = "Write a short paragraph about the history of the bicycle."
QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money "
    "she needs. Her parents decided to give her $15 for that purpose, and her grandparents twice "
    "as much as her parents. How much more money does Betty need to buy the wallet?",
]


def direct_engine(path: str, n_ctx: int, parallel: int, threads: int) -> Any:
    """xllamacpp's Server with the settings LlamaCppBackend uses."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = n_ctx * parallel
    params.n_parallel = parallel
    params.kv_unified = False
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cache_ram_mib = 256
    params.verbosity = -1
    return xllamacpp.Server(params)


def body(prompt: str, temperature: float, seed: int, max_tokens: int, n: int = 1) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}],
        "temperature": temperature,
        "seed": seed,
        "max_tokens": max_tokens,
        **({"n": n} if n > 1 else {}),
    }


def direct(server: Any, bodies: list[dict[str, Any]]) -> tuple[float, int, list[str]]:
    """Wall seconds, completion tokens and texts of `bodies` sent at once from threads."""
    out: list[dict[str, Any]] = [{}] * len(bodies)

    def one(i: int) -> None:
        out[i] = server.handle_chat_completions(bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    tokens = sum(r["usage"]["completion_tokens"] for r in out)
    return wall, tokens, [c["message"]["content"] for r in out for c in r["choices"]]


async def ours(
    backend: LlamaCppBackend, path: str, prompt: str, settings: list[Settings]
) -> tuple[float, int, list[str]]:
    requests = [Request(model=path, messages=[user(prompt)], settings=s) for s in settings]
    start = time.monotonic()
    results = await asyncio.gather(*(backend.complete(r) for r in requests))
    wall = time.monotonic() - start
    return wall, sum(r.usage.output_tokens for r in results), [r.text for r in results]


def median_rate(runs: list[tuple[float, int, list[str]]]) -> float:
    return statistics.median(tokens / wall for wall, tokens, _ in runs)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = str(catalog.ensure(args.model, auto_pull=True))
    n_ctx, parallel, threads, mt = 4096, 4, default_threads(), args.max_tokens
    server = direct_engine(path, n_ctx, parallel, threads)
    backend = LlamaCppBackend(n_ctx=n_ctx, parallel=parallel, n_threads=threads)
    # the same loaded model, its requests never merged
    unshared = LlamaCppBackend(
        n_ctx=n_ctx, parallel=parallel, n_threads=threads, share_prompts=False
    )
    greedy = Settings(temperature=0, max_tokens=mt)
    hot = [Settings(temperature=0.7, seed=i, max_tokens=mt) for i in range(4)]
    await asyncio.to_thread(direct, server, [body(PROMPT, 0, 0, 4)])  # load and warm both
    await ours(backend, path, PROMPT, [Settings(temperature=0, max_tokens=4)])

    runs: dict[str, list[tuple[float, int, list[str]]]] = {}
    for _ in range(args.rounds):
        one = [body(PROMPT, 0, 0, mt)]
        four = [body(PROMPT, 0.7, i, mt) for i in range(4)]
        runs.setdefault("direct 1", []).append(await asyncio.to_thread(direct, server, one))
        runs.setdefault("ours 1", []).append(await ours(backend, path, PROMPT, [greedy]))
        runs.setdefault("direct 4", []).append(await asyncio.to_thread(direct, server, four))
        runs.setdefault("ours 4", []).append(await ours(unshared, path, PROMPT, hot))
    print(
        f"model {args.model}, {threads} threads, {mt} tokens, {args.rounds} rounds, load {load()}"
    )
    for n in ("1", "4"):
        d, o = median_rate(runs[f"direct {n}"]), median_rate(runs[f"ours {n}"])
        print(f"decode, {n} sequence(s): direct {d:5.1f} tok/s, ours {o:5.1f} tok/s: {o / d:.2f}")
    same = runs["direct 1"][0][2] == runs["ours 1"][0][2]
    print(f"the greedy answer is the same through both: {same}")

    # 2. the shared prompt, on GSM8K-style questions (prompt evaluation is a bigger share there)
    walls: dict[bool, list[float]] = {True: [], False: []}
    rates: dict[bool, list[float]] = {True: [], False: []}
    evaluated = {True: 0.0, False: 0.0}
    for i, question in enumerate(QUESTIONS * max(1, args.rounds // 2)):
        for shared, b in ((True, backend), (False, unshared)):
            before = engine_metrics(path)["prompt_tokens_total"]
            tagged = f"[{i}] {question}"  # a new prompt each round: no cached prefix
            wall, tokens, _ = await ours(b, path, tagged, hot)
            evaluated[shared] += engine_metrics(path)["prompt_tokens_total"] - before
            walls[shared].append(wall)
            rates[shared].append(tokens / wall)
    for shared in (True, False):
        print(
            f"4 samples, prompt {'shared' if shared else 'not shared'}: "
            f"{evaluated[shared]:.0f} prompt tokens evaluated, "
            f"median {statistics.median(walls[shared]):.1f} s, "
            f"{statistics.median(rates[shared]):.1f} tok/s"
        )
    saved = 1 - sum(walls[True]) / sum(walls[False])
    print(f"sharing the prompt saved {saved:.0%} of the wall time")

    # 3. greedy beside three samples vs greedy alone
    differ = 0
    for question in QUESTIONS:
        _, _, beside = await ours(backend, path, question, [greedy, *hot[1:]])
        _, _, alone = await ours(backend, path, question, [greedy])
        differ += beside[0] != alone[0]
    print(f"greedy beside 3 samples differs from greedy alone: {differ} of {len(QUESTIONS)}")
    unload_all()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    asyncio.run(main())
