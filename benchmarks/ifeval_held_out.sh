#!/usr/bin/env bash
# The held-out rows of docs/evaluation.md's IFEval table: the `local` recipe, then its greedy
# answer alone on the first N held-out prompts (answered from local's cached calls: they are the
# same requests), then the table. Resumable: run it again and only what is missing runs.
#
#   benchmarks/ifeval_held_out.sh [N]       # default 40
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE MOA_PARALLEL=${MOA_PARALLEL:-8}
N=${1:-40}
OUT=${OUT:-benchmarks/results}
for r in local benchmarks/recipes/local-greedy.yaml; do
  .venv/bin/moa eval ifeval -r "$r" --split held-out --limit "$N" --variants recipe \
    --concurrency 2 --no-progress --out "$OUT/ifeval-held-out" >/dev/null || echo "FAILED: $r" >&2
done
.venv/bin/python benchmarks/choose_local.py "$OUT/ifeval-held-out" --split held-out \
  --rows local-greedy,local
