#!/usr/bin/env bash
# The GSM8K measurement behind docs/evaluation.md and the `local` recipe: the first $N test
# problems on the local models, one model call at a time (2 CPU cores).
#
#   benchmarks/gsm8k_local.sh            # resumable: run it again and only what is missing runs
#   N=20 benchmarks/gsm8k_local.sh       # a quicker look
#
# Every proposer answer is cached (~/.cache/moa/responses.sqlite3, or $MOA_CACHE_DIR), so each
# is generated once and reused by every recipe below. Results: $OUT/runs/*.jsonl, one line per
# problem with the answer, the score, tokens, seconds and the full trace. Wall times come from
# separate uncached runs, one question at a time, on the first $T problems ($OUT_TIME). The
# table and plot: benchmarks/gsm8k_table.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE  # llama.cpp's threads must not spin on a busy machine
N=${N:-100}
N_SMALL=${N_SMALL:-30}  # the exploratory strategies, on fewer problems first
OUT=${OUT:-benchmarks/results/gsm8k}
R=benchmarks/recipes
MOA=${MOA:-.venv/bin/moa}
T=${T:-10}
OUT_TIME=${OUT_TIME:-benchmarks/results/gsm8k-time}
timed() {
  "$MOA" eval gsm8k --limit "$T" --out "$OUT_TIME" --no-cache --concurrency 1 --no-progress "$@" \
    || echo "FAILED: $*" >&2
}
run() {
  local n=$1
  shift
  "$MOA" eval gsm8k --limit "$n" --out "$OUT" --no-progress "$@" || echo "FAILED: $*" >&2
}

# 1. every proposer alone, and plain majority votes (no aggregator call)
run "$N" -r $R/mix.yaml -r $R/self-moa.yaml --variants alone,vote
# 2. aggregation, the most telling first, then the wall time of those rows
run "$N" -r $R/self-moa-votes-agree.yaml --variants recipe
run "$N" -r $R/self-moa-votes-agree-strict.yaml --variants vote,recipe
run "$N" -r $R/self-moa-vote-or-aggregate.yaml --variants recipe
run "$N" -r $R/self-moa.yaml --variants recipe
run "$N" -r $R/self-moa-votes.yaml --variants recipe
timed -r $R/mix.yaml -r $R/self-moa.yaml --variants alone,vote
timed -r $R/self-moa-votes-agree.yaml -r $R/self-moa-votes-agree-strict.yaml \
  -r $R/self-moa-vote-or-aggregate.yaml -r $R/self-moa.yaml -r $R/self-moa-votes.yaml --variants recipe
# 3. the paper's recipe, its ranker baseline, greedy decoding
run "$N" -r $R/mix.yaml --variants recipe
run "$N" -r $R/self-moa.yaml -r $R/mix.yaml --variants rank
run "$N" -r $R/qwen1.5b-greedy.yaml --variants recipe
timed -r $R/mix.yaml -r $R/self-moa.yaml --variants rank
timed -r $R/mix.yaml -r $R/qwen1.5b-greedy.yaml --variants recipe
# 4. more variations (on fewer problems first)
run "$N_SMALL" -r $R/self-moa-check.yaml --variants recipe
run "$N_SMALL" -r $R/self-moa-votes-agg05.yaml --variants recipe
run "$N_SMALL" -r $R/mix-votes.yaml --variants recipe
run "$N_SMALL" -r $R/mix-filtered-votes.yaml --variants vote,recipe
run "$N_SMALL" -r $R/self-moa-seq.yaml --variants recipe
run "$N_SMALL" -r $R/self-moa-select.yaml --variants recipe
run "$N_SMALL" -r $R/self-moa-council.yaml --variants recipe
run "$N_SMALL" -r $R/self-moa-3layer.yaml --variants recipe
run "$N_SMALL" -r $R/self-moa-agree.yaml --variants recipe
