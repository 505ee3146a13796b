#!/usr/bin/env bash
# Create .venv (if missing) and install rlsweep with the given extras. Idempotent and quick when done.
# usage: bash scripts/setup.sh [EXTRAS]     e.g. bash scripts/setup.sh sb3,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all,test}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
stamp=".venv/.rlsweep-installed-$(echo "$extras" | tr ',' '-')"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ .ci/constraints.txt -nt "$stamp" ]; then
  echo "setup: installing rlsweep[$extras] into .venv (torch CPU first, pinned in .ci/constraints.txt)"
  quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
  quiet python -m pip install -q --upgrade pip setuptools wheel
  # torch before stable-baselines3, so sb3 does not pull a multi-GB CUDA build.
  quiet python -m pip install -q -c .ci/constraints.txt torch
  # PYTHONWARNINGS: setuptools' editable-install banner says nothing a user can act on.
  PYTHONWARNINGS=ignore quiet python -m pip install -q -c .ci/constraints.txt -e ".[$extras]"
  touch "$stamp"
fi
