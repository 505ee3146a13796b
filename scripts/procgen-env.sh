#!/usr/bin/env bash
# Procgen's own environment for examples/procgen-bigfish.yaml: procgen-mirror (a maintained build
# of OpenAI's Procgen) needs numpy<2 and gym 0.26, which rlsweep's environment does not have. Makes
# .procgen-venv with them, torch (CPU, the CI pin) and TensorBoard; the sweep's trainer.python
# points at it. Not part of CI. About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
[ -x .procgen-venv/bin/python ] || "$py" -m venv .procgen-venv
.procgen-venv/bin/pip install -q --disable-pip-version-check -c .ci/constraints.txt \
    "numpy<2" gym==0.26.2 procgen-mirror torch tensorboard
.procgen-venv/bin/python -c "import procgen, torch; print('procgen-env: ready in .procgen-venv (torch', torch.__version__ + ')')"
