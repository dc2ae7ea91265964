#!/usr/bin/env bash
# Set up .venv from nothing: Python >= 3.11, llama-cpp-python (compiles llama.cpp the first time,
# about 6 minutes on 2 cores; pip caches the wheel after), then rp-context with its extras.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
# CMAKE_ARGS passes through to the llama.cpp build: CMAKE_ARGS="-DGGML_METAL=on" or "-DGGML_CUDA=on".
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
VENV=".venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "rp-context needs Python 3.11 or newer (found $("$PY" --version 2>&1)); set PYTHON=..." >&2
    exit 2
  }
  echo "==> creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  echo "==> installing llama-cpp-python: the first time this compiles llama.cpp (about 6 minutes"
  echo "    on 2 cores; the wheel is cached after). Build progress follows."
  # pip -v prints the build (ninja's "[N/M] <command>" lines, or make's "[ NN%]" lines); keep
  # only a short progress line per compiled file, so progress is visible but not noisy.
  # A GPU build (CMAKE_ARGS set) must not reuse a cached CPU wheel.
  NOCACHE=()
  [ -n "${CMAKE_ARGS:-}" ] && NOCACHE=(--no-cache-dir --force-reinstall)
  "$VENV/bin/python" -m pip install -v ${NOCACHE[@]+"${NOCACHE[@]}"} 'llama-cpp-python>=0.3.16' 2>&1 \
    | awk '
        /^[[:space:]]*\[[0-9]+\/[0-9]+\]/ {
          f = ""; for (i = 2; i <= NF; i++) if ($i == "-o") f = $(i + 1)
          sub(/.*\//, "", f); print "    " $1 " " f; fflush(); next
        }
        /^[[:space:]]*\[ *[0-9]+%\]/ { print "    " $0; fflush(); next }
        /Successfully installed|Using cached|ERROR|[Ee]rror:/ { print "  " $0; fflush() }
      ' || true
  "$VENV/bin/python" -c 'import llama_cpp' || { echo "llama-cpp-python failed to install" >&2; exit 1; }
fi

SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[$EXTRAS]"
echo "==> installing rp-context${EXTRAS:+ with [$EXTRAS]}"
"$VENV/bin/python" -m pip install --quiet --progress-bar off -e "$SPEC"
touch "$VENV/.setup-${EXTRAS:-run}"
echo "==> ready"
