#!/usr/bin/env bash
# Runs every test once per server (REDIS_SERVER picks it for the harness),
# all three even when one fails, then says which failed.
set -uo pipefail
cd "$(dirname "$0")/.."
list=$(bash scripts/servers.sh) || { echo "cannot install the servers" >&2; exit 1; }
mapfile -t servers <<<"$list"
[ ${#servers[@]} -eq 3 ] || { echo "expected three servers, found: ${servers[*]}" >&2; exit 1; }
run() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast
  else
    cargo test --no-fail-fast
  fi
}
# The Python client is tested as users get it: installed from ./python.
pip_install() {
  python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$@" >/dev/null 2>&1 \
    || python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps --break-system-packages "$@"
}
pip_install ./python || { echo "cannot install the Python client from ./python" >&2; exit 1; }
failed=()
for server in "${servers[@]}"; do
  version=$("$server" --version | cut -d' ' -f1-3)
  echo "--- every test against $version ($server)"
  REDIS_SERVER="$server" run || failed+=("$version")
  echo "--- the Python client against $version"
  (cd python && REDIS_SERVER="$server" python3 -m pytest -q -p no:cacheprovider tests) || failed+=("$version (Python client)")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed against: ${failed[*]}"
  exit 1
fi
echo "all tests passed against all three servers"
