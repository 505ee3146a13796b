#!/usr/bin/env bash
# Set everything up and run the test suite (the command .ci/run calls).
# Starts PostgreSQL and MariaDB on 127.0.0.1 when it can; extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all,test || exit 1
bash scripts/system-deps.sh
. .venv/bin/activate
export SDL_VIDEODRIVER=dummy MUJOCO_GL="${MUJOCO_GL:-egl}"
eval "$(bash scripts/servers.sh start)"
trap 'bash scripts/servers.sh stop' EXIT
echo "test.sh: ruff and mypy"
ruff check rlsweep tests bench || exit 1
mypy || exit 1
python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
  rc=1
fi
exit "$rc"
