#!/usr/bin/env bash
# Set up .venv with the package and its extras. Usage: scripts/setup.sh [EXTRAS]  (default: local,server,eval)
# llama-cpp-python has no wheel for every platform and compiles for ~5 minutes on 2 cores:
# the wheel we build is kept in $MOA_WHEEL_CACHE so that no later setup compiles it again.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local,server,eval}"
python="${PYTHON:-python3}"
llama_version="0.3.36"
# A portable x86-64 build: llama.cpp's default (-march=native) compiles in AMX and AVX-512
# where the CPU lists them, and such a wheel dies with "Illegal instruction" on virtual
# machines that list AMX without allowing it, and on any other CPU the cache may meet.
portable=""
[ "$(uname -m)" = x86_64 ] && portable="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
llama_flags="${LLAMA_CMAKE_ARGS:-$portable}"
flavour=$(printf '%s' "$llama_flags" | sha256sum | cut -c1-8)
wheels="${MOA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/moa-ci/wheels}/$flavour"

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip >/dev/null

if [[ ",$extras," == *",local,"* ]] || [[ ",$extras," == *",dev,"* ]]; then
  if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    mkdir -p "$wheels"
    wheel=$(ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl 2>/dev/null | head -1 || true)
    if [ -z "$wheel" ]; then
      echo "setup: getting llama-cpp-python $llama_version (a source build takes ~5 minutes on 2 cores; done once)" >&2
      CMAKE_ARGS="$llama_flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "${pip[@]}" wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$wheels" "llama-cpp-python==$llama_version"
      wheel=$(ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl | head -1)
    fi
    "${pip[@]}" install "$wheel"
  fi
fi
"${pip[@]}" install -e ".[$extras]"
