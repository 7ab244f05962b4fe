#!/usr/bin/env bash
# The GSM8K measurement behind docs/evaluation.md and the `local` recipe: the first $N test
# problems on the local models (2 CPU cores: several hours in all).
#
#   benchmarks/gsm8k_local.sh            # resumable: run it again and only what is missing runs
#   N=20 N_AGG=10 benchmarks/gsm8k_local.sh   # a quicker look
#
# Every deterministic answer is cached (~/.cache/moa/responses.sqlite3, or $MOA_CACHE_DIR): the
# proposers have seeds, so each sample is generated once and reused by every row below (the
# 1.5B samples of the single-model rows are the Self-MoA proposals; aggregator calls shown the
# same messages are reused too). Results: $OUT/runs/*.jsonl, one line per problem with the
# answer, the score, tokens, seconds and the full trace. Wall times come from separate uncached
# runs, one question at a time, on the first $T problems ($OUT_TIME), on an otherwise idle
# machine. The table and plot: benchmarks/gsm8k_table.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE  # llama.cpp's threads must not spin on a busy machine
N=${N:-100}
N_AGG=${N_AGG:-20}  # the paper's synthesis rows, the slowest (an aggregator call per problem)
N_HELD=${N_HELD:-15}  # problems 100.. : a check of the chosen recipe on problems not used to choose it
T=${T:-3}
OUT=${OUT:-benchmarks/results/gsm8k}
OUT_TIME=${OUT_TIME:-benchmarks/results/gsm8k-time}
OUT_HELD=${OUT_HELD:-benchmarks/results/gsm8k-heldout}
R=benchmarks/recipes
MOA=${MOA:-.venv/bin/moa}
run() {
  local n=$1
  shift
  "$MOA" eval gsm8k --limit "$n" --out "$OUT" --no-progress "$@" || echo "FAILED: $*" >&2
}
timed() {  # N_PROBLEMS RECIPES...
  local n=$1
  shift
  "$MOA" eval gsm8k --limit "$n" --out "$OUT_TIME" --no-cache --concurrency 1 --no-progress "$@" \
    || echo "FAILED: $*" >&2
}

# 1. every proposer alone (T=0.7, seeds), and plain majority votes (no aggregator call)
run "$N" -r $R/mix.yaml -r $R/self-moa.yaml --variants alone,vote
# 2. the single model greedy, and Self-MoA with the votes used three ways
run "$N" -r $R/qwen1.5b-greedy.yaml --variants recipe
run "$N" -r $R/self-moa-votes-agree.yaml --variants recipe
run "$N" -r $R/self-moa-vote-or-aggregate.yaml --variants recipe
run "$N" -r local --variants recipe
# 3. the paper's synthesis: MoA of the three models, Self-MoA of three samples
run "$N_AGG" -r $R/mix.yaml --variants recipe
run "$N_AGG" -r $R/self-moa.yaml --variants recipe
# 4. the chosen recipe on problems that did not choose it (the greedy answers are its own)
"$MOA" eval gsm8k --offset 100 --limit "$N_HELD" --out "$OUT_HELD" --no-progress -r local \
  -r $R/qwen1.5b-greedy.yaml --variants recipe
"$MOA" eval gsm8k --offset 100 --limit "$N_HELD" --out "$OUT_HELD" --no-progress \
  -r $R/self-moa.yaml --variants alone,vote
# 5. wall time per question, uncached, one at a time
timed "$T" -r $R/qwen1.5b-greedy.yaml -r local --variants recipe

