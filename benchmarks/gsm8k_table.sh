#!/usr/bin/env bash
# The table and plot of docs/evaluation.md from the results of benchmarks/gsm8k_local.sh
# (runs nothing; a row counts the problems done so far, its n column says how many).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100}
OUT=${OUT:-benchmarks/results/gsm8k}
R=benchmarks/recipes
.venv/bin/moa eval gsm8k --report-only --limit "$N" --out "$OUT" --variants alone,vote,recipe \
  --timing "${OUT_TIME:-benchmarks/results/gsm8k-time}" \
  -r $R/mix.yaml -r $R/self-moa.yaml -r $R/qwen1.5b-greedy.yaml \
  -r $R/self-moa-votes-agree.yaml -r $R/self-moa-vote-or-aggregate.yaml -r local
cp "$OUT/report.png" "docs/gsm8k-local-$N.png"
echo "plot: docs/gsm8k-local-$N.png"
