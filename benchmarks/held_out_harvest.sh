#!/usr/bin/env bash
# The runs behind the held-out table of docs/evaluation.md. Resumable: run it again and only
# what is missing runs. Every call is cached, so rows made afterwards from the same answers
# (benchmarks/choose_local.py, Self-MoA's synthesis over them) cost only their own new calls.
#
#   benchmarks/held_out_harvest.sh dev        # local's four answers in full on the development
#                                             # problems (benchmarks/recipes/local-harvest.yaml)
#   benchmarks/held_out_harvest.sh held-out   # the `local` recipe itself on held-out problems,
#                                             # then the paper's Self-MoA and MoA on the first ones
#   benchmarks/held_out_harvest.sh recheck    # only `local` and its greedy answer on held-out
#                                             # HumanEval, then GSM8K (GSM_HELD=20: the first 20)
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE MOA_PARALLEL=${MOA_PARALLEL:-8}
MOA=${MOA:-.venv/bin/moa}
OUT=${OUT:-benchmarks/results}
R=benchmarks/recipes
C=${C:-2}  # two problems at once: eight sequences decode about 10% faster than four here
ev() { "$MOA" eval "$@" --variants recipe --concurrency "$C" --no-progress || echo "FAILED: $*" >&2; }
gsm() { ev gsm8k --offset 1000 --limit "$1" --out "$OUT/gsm8k-held-out" "${@:2}"; }
he() { ev humaneval --split held-out --limit "$1" --out "$OUT/humaneval-held-out" "${@:2}"; }
ifb() { ev ifbench --split held-out --limit "$1" --out "$OUT/ifbench-held-out" "${@:2}"; }
case ${1:-dev} in
  dev)
    H=$R/local-harvest.yaml
    ev gsm8k -r $H --limit "${GSM_DEV:-10}" --out "$OUT/gsm8k-dev"
    ev humaneval -r $H --split dev --limit "${HE_DEV:-36}" --out "$OUT/humaneval-dev"
    ev ifbench -r $H --split dev --limit "${IF_DEV:-20}" --out "$OUT/ifbench-dev"
    ;;
  held-out)
    # the greedy answer alone after each: the same call as local's greedy one, so cached but
    # where local stopped it early (three samples agreed before it ended)
    G=$R/local-greedy.yaml
    gsm "${GSM_HELD:-100}" -r local && gsm "${GSM_HELD:-100}" -r $G
    he "${HE_HELD:-30}" -r local && he "${HE_HELD:-30}" -r $G
    ifb "${IF_HELD:-20}" -r local && ifb "${IF_HELD:-20}" -r $G
    for r in $R/self-moa-over-local.yaml $R/moa-local-three.yaml; do
      gsm "${GSM_SYN:-10}" -r $r
      he "${HE_SYN:-8}" -r $r
      ifb "${IF_SYN:-6}" -r $r
    done
    ;;
  recheck)
    G=$R/local-greedy.yaml
    he "${HE_HELD:-30}" -r local && he "${HE_HELD:-30}" -r $G
    gsm "${GSM_HELD:-100}" -r local && gsm "${GSM_HELD:-100}" -r $G
    ;;
esac
