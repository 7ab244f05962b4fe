#!/usr/bin/env bash
# Set up .venv with the package and its extras. Usage: scripts/setup.sh [EXTRAS]  (default: local,server,eval)
# Nothing compiles: the `local` extra is xllamacpp, llama.cpp in prebuilt wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local,server,eval}"
python="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip >/dev/null
"${pip[@]}" install --only-binary xllamacpp -e ".[$extras]"
