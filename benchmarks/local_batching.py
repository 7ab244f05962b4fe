"""Continuous batching vs one request at a time, on a real local model.

Four samples of one prompt (Self-MoA's proposer layer) through LlamaCppBackend with
parallel=1 and parallel=4, alternated, several rounds; prints tokens per second and the ratio.

    .venv/bin/python benchmarks/local_batching.py [--model qwen2.5-coder-1.5b-instruct]
        [--samples 4] [--max-tokens 96] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from moa import catalog
from moa.backends.llamacpp import LlamaCppBackend, unload_all
from moa.types import Request, Settings, user

PROMPT = "A farmer has 17 sheep. All but 9 run away. How many are left? Explain step by step."


async def one_round(backend: LlamaCppBackend, path: str, samples: int, max_tokens: int) -> float:
    requests = [
        Request(
            model=path,
            messages=[user(PROMPT)],
            settings=Settings(temperature=0.7, seed=i, max_tokens=max_tokens),
        )
        for i in range(samples)
    ]
    start = time.monotonic()
    results = await asyncio.gather(*(backend.complete(r) for r in requests))
    elapsed = time.monotonic() - start
    tokens = sum(r.usage.output_tokens for r in results)
    return tokens / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    path = str(catalog.ensure(args.model, auto_pull=True))
    backends = {p: LlamaCppBackend(n_ctx=2048, parallel=p) for p in (1, args.samples)}
    for b in backends.values():  # load both before timing
        await one_round(b, path, 1, 4)
    rates: dict[int, list[float]] = {p: [] for p in backends}
    for _ in range(args.rounds):
        for p, b in backends.items():
            rates[p].append(await one_round(b, path, args.samples, args.max_tokens))
    one, many = (statistics.median(rates[p]) for p in backends)
    print(f"model {args.model}, {args.samples} samples of {args.max_tokens} tokens, T=0.7")
    print(f"parallel=1:  {one:6.1f} tok/s  (rounds: {', '.join(f'{r:.1f}' for r in rates[1])})")
    print(
        f"parallel={args.samples}:  {many:6.1f} tok/s  "
        f"(rounds: {', '.join(f'{r:.1f}' for r in rates[args.samples])})"
    )
    print(f"ratio: {many / one:.2f}x the tokens per second")
    unload_all()


if __name__ == "__main__":
    asyncio.run(main())
