#!/usr/bin/env bash
# Installs what building and testing need, only when it is missing:
# Debian's redis-server (with redis-cli and redis-benchmark) and libclang-dev
# for bindgen, plus the Python packages the Python example and the kind tests
# use: the redis client, numpy, ml_dtypes (numpy's bfloat16), and pytest for
# the Python client's tests, tqdm (its progress bars) and mypy (its types are checked).
set -euo pipefail

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=()
command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || pkgs+=(redis-tools)
dpkg -s libclang-dev >/dev/null 2>&1 || pkgs+=(libclang-dev)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -qq
  sudo_if_needed apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  # Debian's package may start a server on 6379; this project never uses it.
fi

for pkg in redis numpy ml_dtypes pytest tqdm mypy; do
  if command -v python3 >/dev/null 2>&1 && ! python3 -c "import $pkg" >/dev/null 2>&1; then
    echo "installing $pkg for Python"
    python3 -m pip install -q --disable-pip-version-check "$pkg" >/dev/null 2>&1 \
      || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$pkg"
  fi
done
