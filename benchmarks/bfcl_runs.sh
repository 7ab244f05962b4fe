#!/usr/bin/env bash
# The runs behind docs/evaluation.md's BFCL tables: local's four answers in full (greedy and
# three samples; benchmarks/recipes/local-harvest.yaml) on the first N development items, every
# rule scored on them after the fact; then the `local` recipe and its greedy answer alone on
# the first N held-out items (the greedy answer's requests are local's own, so it is answered
# from the cache), and the held-out table. The categories are taken in turn, so N = 22 is two
# items of each of the 11. Resumable: run it again and only what is missing runs.
#
#   benchmarks/bfcl_runs.sh [N]      # default 22
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE MOA_PARALLEL=${MOA_PARALLEL:-8}
N=${1:-22}
OUT=${OUT:-benchmarks/results}
nice -n 5 .venv/bin/python benchmarks/harvest.py bfcl --split dev --limit "$N" \
  -r benchmarks/recipes/local-harvest.yaml --out "$OUT/bfcl-dev" --concurrency 2 \
  || echo "FAILED: dev" >&2
.venv/bin/python benchmarks/choose_local.py "$OUT/bfcl-dev" --split dev --answers local-harvest
for r in local benchmarks/recipes/local-greedy.yaml; do
  nice -n 5 .venv/bin/moa eval bfcl -r "$r" --split held-out --limit "$N" --variants recipe \
    --concurrency 2 --no-progress --out "$OUT/bfcl-held-out" >/dev/null || echo "FAILED: $r" >&2
done
.venv/bin/python benchmarks/choose_local.py "$OUT/bfcl-held-out" --split held-out \
  --answers local --rows local-greedy,local
