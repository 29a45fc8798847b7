#!/usr/bin/env bash
# Runs one of the long tests that `make test` leaves out (soak, fuzz)
# against each of the three servers in turn, one run at a time; the
# settings (NAME=value) follow.
set -euo pipefail
cd "$(dirname "$0")/.."
test=$1
shift
for setting in "$@"; do export "${setting?}"; done
list=$(bash scripts/servers.sh)
mapfile -t servers <<<"$list"
for server in "${servers[@]}"; do
  echo "--- $test against $("$server" --version | cut -d' ' -f1-3)"
  set +e
  REDIS_SERVER="$server" cargo test --test "$test" -- --nocapture --test-threads=1 2>&1 |
    grep -E "soak \(|fuzz: |panicked|FAILED|^test result|got |want |operation "
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { echo "$test failed against $server" >&2; exit 1; }
done
