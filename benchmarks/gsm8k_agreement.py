"""How aggregation did where the samples agreed and where they did not (docs/evaluation.md).

    .venv/bin/python benchmarks/gsm8k_agreement.py [RESULTS_DIR]

Each row's score on the questions split by how the three 1.5B samples agree (all three give the
same final answer, two do, none do): where aggregation helps and where it hurts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from moa.batch import read_results
from moa.strategies.read import extract_number
from moa.strategies.tally import tally

SAMPLES = "qwen2.5-coder-1.5b-instruct-t-0.7-seed-{k}-alone-*.jsonl"
ROWS = ["qwen1.5b-greedy", "self-moa-majority-vote", "self-moa-votes-agree"]
ROWS += ["self-moa-vote-or-aggregate", "self-moa", "mix", "local"]
GROUPS = ("all 3 agree", "2 agree", "none agree", "all")


def load(folder: Path, pattern: str) -> dict[str, dict[str, Any]]:
    files = sorted(folder.glob(pattern))
    return read_results(files[0]) if files else {}


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/gsm8k") / "runs"
    samples = [load(folder, SAMPLES.format(k=k)) for k in range(3)]
    ids = [i for i in samples[0] if all(i in s for s in samples)]
    votes = {i: tally([extract_number(s[i]["text"]) for s in samples]).votes for i in ids}
    groups = [{i for i in ids if votes[i] == v} for v in (3, 2, 1)] + [set(ids)]
    print(f"{len(ids)} questions, by how the three 1.5B samples (T=0.7) agree; right/answered")
    print(f"{'row':28}" + "".join(f"{g:>14}" for g in GROUPS))
    for row in ROWS:
        found = [f for f in folder.glob(f"{row}-*.jsonl") if f.stem.rsplit("-", 1)[0] == row]
        if not found:
            continue
        done = read_results(found[0])
        cells = []
        for group in groups:
            have = [done[i] for i in group if i in done and done[i].get("ok")]
            right = sum(extract_number(r["text"]) == r["gold"] for r in have)
            cells.append(f"{right}/{len(have)}")
        print(f"{row:28}" + "".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
