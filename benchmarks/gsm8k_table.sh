#!/usr/bin/env bash
# The tables and plots of docs/evaluation.md from the results of benchmarks/gsm8k_local.sh
# (runs nothing; a row counts the problems done so far, its n column says how many).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gsm8k}
OUT_HELD=${OUT_HELD:-benchmarks/results/gsm8k-heldout}
R=benchmarks/recipes
report() {  # N OUT DOCS_NAME RECIPES...
  local n=$1 out=$2 name=$3
  shift 3
  .venv/bin/moa eval gsm8k --report-only --limit "$n" --out "$out" --variants alone,vote,recipe \
    --timing "${OUT_TIME:-benchmarks/results/gsm8k-time}" "$@"
  cp "$out/report.png" "docs/$name.png"
  cp "$out/report.md" "benchmarks/$name.md"
}
ALL=(-r $R/mix.yaml -r $R/self-moa.yaml -r $R/qwen1.5b-greedy.yaml
  -r $R/self-moa-votes-agree.yaml -r $R/self-moa-vote-or-aggregate.yaml -r local)
report 100 "$OUT" gsm8k-local-100 "${ALL[@]}"
N_AGG=${N_AGG:-20}
report "$N_AGG" "$OUT" gsm8k-local-first-$N_AGG "${ALL[@]}"
.venv/bin/moa eval gsm8k --report-only --offset 100 --limit "${N_HELD:-15}" --out "$OUT_HELD" \
  --variants alone,vote,recipe -r $R/self-moa.yaml -r $R/qwen1.5b-greedy.yaml -r local
cp "$OUT_HELD/report.md" benchmarks/gsm8k-local-heldout.md
