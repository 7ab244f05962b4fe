#!/usr/bin/env bash
# Does our BFCL scoring (moa.evals.bfcl.read_calls and moa.evals.bfcl_check.check) give exactly
# the verdicts of bfcl-eval's own? Installs bfcl-eval without its dependencies (torch-sized) in a
# scratch virtualenv, with the few small ones its checker and its reader of prompted answers
# import (tree-sitter parsers for Java and JavaScript, filelock, tenacity), gives it a stand-in for its
# table of model configurations (the checker only asks whether a model writes '.' as '_': no, as
# for a prompted model), and scores the cases of benchmarks/bfcl_cases.py (~45,000 answers, right
# and wrong, on every item of the Python AST categories) with both; prints the agreement and the
# first differences.
#
#     bash benchmarks/bfcl_fidelity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
pip=("$tmp/venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" --no-deps "bfcl-eval==2026.3.23"
"${pip[@]}" "filelock==3.20.0" tenacity "tree_sitter==0.21.3" "tree-sitter-java==0.21.0" "tree-sitter-javascript==0.21.4"
.venv/bin/python benchmarks/bfcl_cases.py >"$tmp/cases.jsonl"

"$tmp/venv/bin/python" - "$tmp" <<'UPSTREAM'
import json, sys, types
from pathlib import Path

tmp = Path(sys.argv[1])
config = types.ModuleType("bfcl_eval.constants.model_config")
config.MODEL_CONFIG_MAPPING = {"prompted": types.SimpleNamespace(underscore_to_dot=False)}
sys.modules["bfcl_eval.constants.model_config"] = config
from bfcl_eval.constants.enums import Language
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
from bfcl_eval.model_handler.utils import default_decode_ast_prompting
from bfcl_eval.utils import is_empty_output

with (tmp / "cases.jsonl").open() as cases, (tmp / "upstream.jsonl").open("w") as out:
    for line in cases:
        case = json.loads(line)
        try:
            decoded = default_decode_ast_prompting(case["text"])
        except Exception:
            decoded = None
        category = case["category"]
        if "relevance" in category:  # eval_runner's relevance rule
            none = decoded is None or is_empty_output(decoded)
            valid = none if "irrelevance" in category else not none
        elif decoded is None:
            valid = False
        else:
            try:
                result = ast_checker(
                    case["function"], decoded, case["answer"], Language.PYTHON, category, "prompted"
                )
                valid = result["valid"]
            except Exception:
                valid = False
        out.write(json.dumps({"valid": bool(valid)}) + "\n")
UPSTREAM

.venv/bin/python - "$tmp" <<'OURS'
import json, sys
from pathlib import Path

from moa.evals.bfcl import read_calls
from moa.evals.bfcl_check import check

tmp = Path(sys.argv[1])
cases = [json.loads(line) for line in (tmp / "cases.jsonl").open()]
upstream = [json.loads(line) for line in (tmp / "upstream.jsonl").open()]
differ = []
for case, theirs in zip(cases, upstream, strict=True):
    ours = check(case["category"], case["function"], read_calls(case["text"]), case["answer"] or [])
    if ours.valid != theirs["valid"]:
        differ.append((case["id"], case["text"][:160], ours.valid, theirs["valid"]))
right = sum(u["valid"] for u in upstream)
items = len({c["id"] for c in cases})
print(f"{len(cases)} answers on {items} items; upstream judged {right} right; verdicts that "
      f"differ from ours: {len(differ)} ({100 * (1 - len(differ) / len(cases)):.3f}% agree)")
for d in differ[:12]:
    print("  ", d)
sys.exit(1 if differ else 0)
OURS
