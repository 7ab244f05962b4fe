#!/usr/bin/env bash
# The table and plot of docs/evaluation.md from the results of benchmarks/gsm8k_local.sh
# (runs nothing; a row counts the problems done so far).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100}
OUT=${OUT:-benchmarks/results/gsm8k}
R=benchmarks/recipes
.venv/bin/moa eval gsm8k --report-only --limit "$N" --out "$OUT" --variants alone,vote,rank,recipe \
  --timing "${OUT_TIME:-benchmarks/results/gsm8k-time}" \
  -r $R/qwen1.5b-greedy.yaml -r $R/mix.yaml -r $R/self-moa.yaml \
  -r $R/self-moa-votes.yaml -r $R/self-moa-votes-agree.yaml -r $R/self-moa-votes-agree-strict.yaml \
  -r $R/self-moa-vote-or-aggregate.yaml \
  -r $R/self-moa-agree.yaml \
  -r $R/self-moa-check.yaml -r $R/self-moa-votes-agg05.yaml -r $R/mix-votes.yaml \
  -r $R/mix-filtered-votes.yaml -r $R/self-moa-seq.yaml -r $R/self-moa-select.yaml \
  -r $R/self-moa-council.yaml -r $R/self-moa-3layer.yaml
cp "$OUT/report.png" docs/gsm8k-local.png
echo "plot: docs/gsm8k-local.png"
