#!/usr/bin/env bash
# `make cluster`: a local Redis Cluster of three masters and three replicas
# with the module, each node in ./data/cluster/<port> (its working directory
# and mmap.dir), snapshots carrying the files' content (mmap.rdb-content yes).
# `make cluster-stop` (this script with `stop`) shuts it down; the data stays.
# REDIS_SERVER picks the server binary; CLUSTER_PORT the first port (7000).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${REDIS_SERVER:-redis-server}
first=${CLUSTER_PORT:-7000}
ports=$(seq "$first" $((first + 5)))
root=$PWD/data/cluster
so=$PWD/target/release/libredis_mmap.so

if [ "${1:-start}" = stop ]; then
  for p in $ports; do redis-cli -p "$p" shutdown >/dev/null 2>&1 || true; done
  echo "cluster stopped; its data stays under $root"
  exit 0
fi

# Each bound key holds a descriptor: start from the hard open-file limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fresh=yes
for p in $ports; do
  dir=$root/$p
  mkdir -p "$dir"
  [ -f "$dir/nodes.conf" ] && fresh=no
  cat >"$dir/redis.conf" <<CONF
port $p
bind 127.0.0.1
daemonize yes
dir $dir
logfile redis.log
pidfile $dir/redis.pid
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 5000
appendonly yes
maxclients 1000
loadmodule $so
mmap.rdb-content yes
CONF
  "$server" "$dir/redis.conf"
done
for p in $ports; do
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
done
if [ $fresh = yes ]; then
  # shellcheck disable=SC2046
  redis-cli --cluster create $(for p in $ports; do printf '127.0.0.1:%s ' "$p"; done) \
    --cluster-replicas 1 --cluster-yes >/dev/null
fi
until redis-cli -p "$first" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; do sleep 0.2; done
cat <<MSG
A cluster of 3 masters and 3 replicas runs on 127.0.0.1:$first-$((first + 5)),
each node in $root/<port> (log, RDB, AOF, and the bound files).

  connect:   redis-cli -c -p $first
  try:       MMAP {user1}:scores scores.f64      then MMAP.ADD {user1}:scores 1 2 3
  nodes:     redis-cli -p $first cluster nodes
  reshard:   redis-cli --cluster reshard 127.0.0.1:$first
  leftovers: redis-cli -p <port> MMAP.UNBOUND
  stop:      make cluster-stop
MSG
