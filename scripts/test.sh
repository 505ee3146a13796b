#!/usr/bin/env bash
# Set everything up and run the test suite (the command .ci/run calls).
# Installs MariaDB and Chromium and starts PostgreSQL and MariaDB on 127.0.0.1 when it can (one line
# each; RLSWEEP_NO_SYSTEM_DEPS=1 skips both, and the storage tests then use RLSWEEP_TEST_POSTGRES and
# RLSWEEP_TEST_MYSQL from the environment or skip); extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all,test || exit 1
. .venv/bin/activate
export SDL_VIDEODRIVER=dummy MUJOCO_GL="${MUJOCO_GL:-egl}"
if [ -n "${RLSWEEP_NO_SYSTEM_DEPS:-}" ] && [ "$RLSWEEP_NO_SYSTEM_DEPS" != 0 ]; then
  echo "test.sh: no system packages or servers (RLSWEEP_NO_SYSTEM_DEPS=$RLSWEEP_NO_SYSTEM_DEPS)"
else
  bash scripts/system-deps.sh
  eval "$(bash scripts/servers.sh start)"
  trap 'bash scripts/servers.sh stop' EXIT
fi
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
