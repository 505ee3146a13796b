#!/usr/bin/env bash
# System packages the full test suite uses: MariaDB (storage tests), Chromium (report page check) and
# OpenMPI's mpiexec (the MPI worker test).
# Installs the missing ones with apt-get when run as root; otherwise says what is missing. One line
# per package; apt's own output goes to .ci/.system-deps.log. RLSWEEP_NO_SYSTEM_DEPS=1 skips it all.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${RLSWEEP_NO_SYSTEM_DEPS:-}" ] && [ "${RLSWEEP_NO_SYSTEM_DEPS}" != 0 ]; then
  echo "system-deps: skipped (RLSWEEP_NO_SYSTEM_DEPS=$RLSWEEP_NO_SYSTEM_DEPS)" >&2
  exit 0
fi
mkdir -p .ci
log=.ci/.system-deps.log
has_mariadb() { command -v mariadbd >/dev/null; }
has_chromium() { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }
has_mpiexec() { command -v mpiexec >/dev/null; }
need=()
has_mariadb || need+=(mariadb-server)
has_chromium || need+=(chromium)
has_mpiexec || need+=(openmpi-bin)
has_mariadb && echo "system-deps: mariadb-server present" >&2
has_chromium && echo "system-deps: chromium present" >&2
has_mpiexec && echo "system-deps: openmpi-bin present" >&2
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  for pkg in "${need[@]}"; do
    echo "system-deps: $pkg missing (not root or no apt-get); its tests will skip" >&2
  done
  exit 0
fi
: > "$log"
apt-get update -qq >>"$log" 2>&1 || echo "system-deps: apt-get update failed (see $log)" >&2
for pkg in "${need[@]}"; do
  start=$SECONDS
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >>"$log" 2>&1; then
    echo "system-deps: $pkg installed in $((SECONDS - start))s (apt output in $log)" >&2
  else
    echo "system-deps: could not install $pkg; its tests will skip (see $log)" >&2
  fi
done
