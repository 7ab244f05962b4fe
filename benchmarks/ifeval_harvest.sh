#!/usr/bin/env bash
# The answers behind docs/evaluation.md's IFEval tables: local's four answers in full (greedy and
# three samples, with log-probabilities; benchmarks/recipes/local-harvest.yaml) on the first
# N development prompts, then on the first N held-out ones. Resumable: run it again and only
# what is missing runs; every call is cached, so `moa eval ifeval -r local` and
# `-r benchmarks/recipes/local-greedy.yaml` on the same prompts are answered from these calls.
#
#   benchmarks/ifeval_harvest.sh [N]      # default 50 of each split
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE MOA_PARALLEL=${MOA_PARALLEL:-8}
N=${1:-50}
OUT=${OUT:-benchmarks/results}
for split in dev held-out; do
  nice -n 10 .venv/bin/python benchmarks/harvest.py ifeval --split "$split" --limit "$N" \
    -r benchmarks/recipes/local-harvest.yaml --out "$OUT/ifeval-$split" --concurrency 2 \
    || echo "FAILED: $split" >&2
done
