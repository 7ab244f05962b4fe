"""How aggregation did where the samples agreed and where they did not (docs/evaluation.md).

    .venv/bin/python benchmarks/gsm8k_agreement.py [RESULTS_DIR]

For each aggregation row over the three 1.5B samples: accuracy on the questions where all three
samples gave the same final answer, and on the rest, next to the majority vote's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from moa.batch import read_results
from moa.extract import extract_number
from moa.strategies import tally

SAMPLES = "qwen2.5-coder-1.5b-instruct-t-0.7-seed-{k}-alone-*.jsonl"
ROWS = ["self-moa-majority-vote", "self-moa-llm-ranker", "self-moa", "self-moa-votes"]
ROWS += ["self-moa-votes-agree", "self-moa-votes-agree-strict", "self-moa-vote-or-aggregate"]
ROWS += ["self-moa-check"]


def load(folder: Path, pattern: str) -> dict[str, dict[str, Any]]:
    files = sorted(folder.glob(pattern))
    return read_results(files[0]) if files else {}


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/gsm8k") / "runs"
    samples = [load(folder, SAMPLES.format(k=k)) for k in range(3)]
    ids = [i for i in samples[0] if all(i in s for s in samples)]
    agreed = {i for i in ids if tally([s[i]["text"] for s in samples], extract_number).votes == 3}
    print(f"{len(ids)} questions; the 3 samples agree on {len(agreed)}")
    print(f"{'row':34} {'agreed':>12} {'split':>12} {'all':>12}")
    for row in ROWS:
        found = [f for f in folder.glob(f"{row}-*.jsonl") if f.stem.rsplit("-", 1)[0] == row]
        if not found:
            continue
        done = read_results(found[0])
        cells = []
        for group in (agreed, set(ids) - agreed, set(ids)):
            have = [done[i] for i in group if i in done and done[i].get("ok")]
            right = sum(extract_number(r["text"]) == r["gold"] for r in have)
            cells.append(f"{right}/{len(have)}")
        print(f"{row:34} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}")


if __name__ == "__main__":
    main()
