#!/usr/bin/env python3
"""Instructions the server runs per request, counted by callgrind.

Throughput on a shared machine drifts from run to run; instruction counts do
not. Runs redis-server with the release module under
`valgrind --tool=callgrind`, sends each command with redis-benchmark (-P 16,
50 clients), and counts the user-space instructions of each command's run
alone (callgrind_control zeroes the counters before it and dumps them after).
Reports, per request: all instructions, those in the module's own code, and
those in Redis's module API (the command dispatcher, the context set up for
each call, and the RedisModule_* functions), each command's instructions as a
ratio of GET's, as bench/instructions.md. The kernel's share (TCP) is not
counted: it is about the same for every command.

Usage: python3 bench/instructions.py [--out DIR]
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

from run import MGET100, MODULE, ROOT, VMGET100, free_port, machine, prepare, start

CASES = [
    ("GET", "GET s", 100_000),
    ("VGET", "VGET bench 500000", 100_000),
    ("VSET", "VSET bench 500000 1.5", 100_000),
    ("VCOUNT", "VCOUNT bench", 100_000),
    ("VADD", "VADD grow 1.5", 100_000),
    ("VMGET 100", VMGET100, 20_000),
    ("MGET 100 (native)", MGET100, 20_000),
]
# Redis's side of a module command: what a native command does not run.
API = re.compile(r"^(RM_|moduleCreateContext$|moduleFreeContext$|RedisModuleCommandDispatcher$)")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    args = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"{MODULE} is missing: run `make build` first")
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (Debian: apt-get install valgrind)")

    home = tempfile.mkdtemp(prefix="redis-mmap-callgrind")
    port = free_port()
    proc, r, data = start(home, port, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={home}/cg.out.%p"])
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
            print(f"{label:20} {total / n:>9,.0f} instructions/request", flush=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)

    info = machine()
    get = rows[0][1]
    lines = [
        f"Redis {info['redis']}; redis-mmap {info['module']}; valgrind's callgrind, "
        "user-space instructions per request (the kernel's TCP work is not counted), "
        "`redis-benchmark -P 16 -c 50`.",
        "",
        "| command | instructions/request | GET's count ÷ this | module's own code | Redis's module API |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, total, own, api in rows:
        lines.append(f"| {label} | {total:,.0f} | {get / total:.2f} | {own:,.0f} | {api:,.0f} |")
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "instructions.md")
    with open(md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
