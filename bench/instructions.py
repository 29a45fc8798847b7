#!/usr/bin/env python3
"""Instructions the server runs per request, counted by callgrind.

Throughput on a shared machine drifts from run to run; instruction counts do
not. Runs each of the three servers (Redis 7.0, Redis 8.2, Valkey 9.1) with
the release module under
`valgrind --tool=callgrind`, sends each command with redis-benchmark (-P 16,
50 clients), and counts the user-space instructions of each command's run
alone (callgrind_control zeroes the counters before it and dumps them after).
Reports, per request: all instructions, those in the module's own code, and
those in Redis's module API (the command dispatcher, the context set up for
each call, and the RedisModule_* functions), each command's instructions as a
ratio of GET's, as bench/instructions.md. The kernel's share (TCP) is not
counted: it is about the same for every command.

Usage: python3 bench/instructions.py [--out DIR] [--server PATH ...]
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from run import MGET100, MODULE, ROOT, VMGET100, free_port, machine, prepare, server_name, servers, start

CASES = [
    ("GET", "GET s", 100_000),
    ("MMAP.GET", "MMAP.GET bench 500000", 100_000),
    ("MMAP.SET", "MMAP.SET bench 500000 1.5", 100_000),
    ("MMAP.COUNT", "MMAP.COUNT bench", 100_000),
    ("MMAP.ADD", "MMAP.ADD grow 1.5", 100_000),
    ("MMAP.MGET 100", VMGET100, 20_000),
    ("MGET 100 (native)", MGET100, 20_000),
]
# The server's side of a module command: what a native command does not
# run. Valkey names its module API VM_ and its dispatcher ValkeyModule...
API = re.compile(r"^(RM_|VM_|moduleCreateContext$|moduleFreeContext$|(Redis|Valkey)ModuleCommandDispatcher$)")


def dumps(home):
    return sorted(glob.glob(os.path.join(home, "cg.out.*")))


def costs(path):
    """(total, module's own, module API) instructions in one callgrind dump."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    total = own = api = 0
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        n, where = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in where:
            total = n
            continue
        func = where.split(":", 1)[1].rsplit(" [", 1)[0] if ":" in where else where
        if "libredis_mmap.so" in where:
            own += n
        elif API.match(func):
            api += n
    return total, own, api


def count(server):
    """Instructions per request of every case on one server."""
    home = tempfile.mkdtemp(prefix="redis-mmap-callgrind")
    port = free_port()
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={home}/cg.out.%p"]
    proc, r, data = start(home, port, wrapper, server=server)
    rows = []
    try:
        prepare(r, data)
        for label, command, n in CASES:
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
            subprocess.run(
                ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", "16", "-c", "50",
                 "-n", str(n), "-q"] + command.split(),
                capture_output=True, check=True,
            )
            before = dumps(home)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
            for _ in range(500):
                new = [d for d in dumps(home) if d not in before]
                if new:
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError(f"callgrind wrote no dump for {label}")
            time.sleep(0.2)  # let the dump finish writing
            total, own, api = costs(new[0])
            rows.append((label, total / n, own / n, api / n))
            print(f"{server_name(server)} {label:20} {total / n:>9,.0f} instructions/request", flush=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--server", action="append", help="a server binary (default: the three of scripts/servers.sh)")
    args = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"{MODULE} is missing: run `make build` first")
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (Debian: apt-get install valgrind)")

    info = machine()
    lines = [
        f"redis-mmap {info['module']}; valgrind's callgrind, user-space instructions per request "
        "(the kernel's TCP work is not counted), `redis-benchmark -P 16 -c 50`.",
        "",
    ]
    for server in args.server or servers():
        rows = count(server)
        get = rows[0][1]
        lines += [
            f"### {server_name(server)}",
            "",
            "| command | instructions/request | GET's count ÷ this | module's own code | server's module API |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, total, own, api in rows:
            lines.append(f"| {label} | {total:,.0f} | {get / total:.2f} | {own:,.0f} | {api:,.0f} |")
        lines.append("")
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "instructions.md")
    with open(md, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
