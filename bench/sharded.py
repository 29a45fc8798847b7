#!/usr/bin/env python3
"""One array of 10,000,000 float64 values, sharded over a three-master
Redis Cluster by the Python client's ShardedVector, against the same
values as one vector on one node: the time to read all of it into numpy,
and to summarise it (MMAP.STATS), each the best of five, on each server.
Writes bench/sharded.md.

Usage: python3 bench/sharded.py [--out DIR] [--server PATH ...]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import redis
from redis.cluster import RedisCluster

from run import MODULE, ROOT, free_port, machine, seconds, server_name, servers, write_report

sys.path.insert(0, os.path.join(ROOT, "python"))
from redis_mmap import ShardedVector, Vectors  # noqa: E402

N = int(os.environ.get("SHARDED_N", 10_000_000))


def node(server, home, cluster):
    """A server with the module; a port that turns out taken (a cluster
    node's bus port is its port + 10000) is given up for another."""
    os.makedirs(os.path.join(home, "data"))
    for _ in range(5):
        port = free_port()
        args = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", home, "--save", "",
                "--appendonly", "no", "--logfile", "redis.log", "--maxclients", "1000",
                "--loadmodule", MODULE, "dir", os.path.join(home, "data")]
        if cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
        for _ in range(200):
            if proc.poll() is not None:
                break
            try:
                r.ping()
                return proc, port
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"{server} did not start")


def best(f, reps=5):
    return min(seconds(f, reps))


def measure(server):
    top = tempfile.mkdtemp(prefix="redis-mmap-sharded")
    procs = []
    try:
        values = np.random.default_rng(4).standard_normal(N)
        # One node.
        p, port = node(server, os.path.join(top, "one"), False)
        procs.append(p)
        r = redis.Redis(port=port)
        v = Vectors(r).bind("v", "v.f64", create=True)
        v.append(values)
        one_read = best(lambda: v.read())
        one_stats = best(lambda: v.stats())
        # Three masters.
        ports = []
        for i in range(3):
            p, port = node(server, os.path.join(top, str(i)), True)
            procs.append(p)
            ports.append(port)
        for port, (a, b) in zip(ports, [(0, 5461), (5461, 10923), (10923, 16384)]):
            redis.Redis(port=port).execute_command("CLUSTER", "ADDSLOTS", *range(a, b))
        for port in ports[1:]:
            redis.Redis(port=ports[0]).execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        for _ in range(300):
            infos = [redis.Redis(port=port).cluster("info") for port in ports]
            if all(str(i.get("cluster_state")) == "ok" and int(i.get("cluster_known_nodes", 0)) == 3 for i in infos):
                break
            time.sleep(0.1)
        rc = RedisCluster(host="127.0.0.1", port=ports[0])
        sv = ShardedVector.create(rc, "a", shard_len=1_000_000)
        sv.append(values)
        assert np.array_equal(sv.read(), values)
        sharded_read = best(lambda: sv.read())
        sharded_stats = best(lambda: sv.stats())
        s1, s2 = v.stats(), sv.stats()
        rc.close()
        return {
            "one_read": one_read, "one_stats": one_stats,
            "sharded_read": sharded_read, "sharded_stats": sharded_stats,
            "sum_rel": abs(s1.sum - s2.sum) / abs(s1.sum),
        }
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--server", action="append")
    args = ap.parse_args()
    info = machine()
    lines = [
        f"redis-mmap {info['module']}; {N:,} float64 values, as one vector on one node and as a ShardedVector "
        "of 1,000,000-value shards over three masters (all on this machine's loopback and two cores), "
        "through the Python client; best of five.",
        "",
        "| server | read all, one node | read all, sharded | MMAP.STATS, one node | STATS merged from the shards |",
        "|---|---:|---:|---:|---:|",
    ]
    for server in args.server or servers():
        m = measure(server)
        lines.append(
            f"| {server_name(server)} | {m['one_read'] * 1e3:.0f} ms | {m['sharded_read'] * 1e3:.0f} ms | "
            f"{m['one_stats'] * 1e3:.1f} ms | {m['sharded_stats'] * 1e3:.1f} ms |"
        )
        print(lines[-1], flush=True)
    lines += ["", "The two sums differ by at most a few units in the last place (merged in a different order)."]
    print(f"wrote {write_report(args.out, 'sharded.md', lines)}")


if __name__ == "__main__":
    main()
