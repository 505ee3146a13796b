#!/usr/bin/env bash
# System packages the full test suite uses: MariaDB (storage tests) and Chromium (report page check).
# Installs them with apt-get when run as root and they are missing; otherwise says what is missing.
set -uo pipefail
need=()
command -v mariadbd >/dev/null || need+=(mariadb-server)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system-deps: installing ${need[*]}" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >&2 ||
    echo "system-deps: could not install ${need[*]}" >&2
else
  echo "system-deps: missing ${need[*]} (not root or no apt-get); their tests will skip" >&2
fi
