#!/usr/bin/env python3
"""Instructions the server runs per request, counted by callgrind, for the
pairs bench/run.py times.

Time per request on a shared machine drifts from run to run by up to 15%;
instruction counts do not. Runs each of the three servers (Redis 7.0, Redis
8.2, Valkey 9.1) with the module's floor build under
`valgrind --tool=callgrind`, sends each command with redis-benchmark (-P 16,
50 clients), and counts the user-space instructions of each command's run
alone (callgrind_control zeroes the counters before it and dumps them
after), less the server's timer (`serverCron`, see `costs`). Each server
is started five times (--starts) and each count is the median over the
starts: Redis seeds its hash tables anew at every start, so whether a
command's name or a key's name shares a bucket with another, which costs
60 to 150 instructions a lookup, changes from start to start. For each of
run.py's cases: the module command, its native counterpart and the floor of
its sort (MMAP.FLK, or MMAP.FLW for a write, with the same arguments);
native ÷ module as a ratio of medians and, per start, its lowest and
highest; native ÷ floor; and the module command's instructions in the module's
own code and in the server's module API (the command dispatcher, the context
set up for each call, the RedisModule_* functions). Writes
bench/instructions.md. The kernel's share (TCP) is not counted: it is about
the same for every command.

`GET s` against `GET s` shows how far apart two runs of one command land.

Usage: python3 bench/instructions.py [--starts N] [--out DIR] [--server PATH ...]
"""

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from run import CASES, FLOOR_MODULE, ROOT, available, floors, free_port, machine, prepare, server_name, servers, start, write_report

# run.py's cases but the one that only shows size; a fiftieth of its
# requests, which callgrind runs about fifty times slower.
PAIRS = [(label, command, native, max(2000, n // 50)) for label, command, native, n, _ in CASES
         if label != "MMAP.ADD, 10M values"]
# The server's side of a module command: what a native command does not
# run. Valkey names its module API VM_ and its dispatcher ValkeyModule...
API = re.compile(r"^(RM_|VM_|moduleCreateContext$|moduleFreeContext$|(Redis|Valkey)ModuleCommandDispatcher$)")


def dumps(home):
    return sorted(glob.glob(os.path.join(home, "cg.out.*")))


def functions(path, inclusive):
    """(instructions, function, where) of each function in one callgrind dump."""
    out = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$", line)
        if m:
            where = m.group(2)
            func = where.split(":", 1)[1].rsplit(" [", 1)[0] if ":" in where else where
            yield int(m.group(1).replace(",", "")), func, where


def costs(path):
    """(total, module's own, module API) instructions in one callgrind dump.

    The total leaves out the server's timer, `serverCron`. It runs ten times
    a second of wall time whatever the load, and callgrind runs the server
    about fifty times slower, so per request it would count some fifty times
    what it costs at full speed: on Redis 8, which reads the allocator's
    statistics there, 300 to 450 instructions per request, moving from run
    to run with how long the run took."""
    total = own = api = 0
    for n, func, where in functions(path, inclusive=False):
        if "PROGRAM TOTALS" in where:
            total = n
        elif "libredis_mmap.so" in where:
            own += n
        elif API.match(func):
            api += n
    timer = sum(n for n, func, _ in functions(path, inclusive=True) if func == "serverCron")
    return total - timer, own, api


def count(server, starts):
    """Instructions per request of every pair on one server: for each
    pair, the medians over `starts` starts of the server."""
    runs = [count_once(server) for _ in range(starts)]
    med = statistics.median
    rows = []
    for k, (label, _, native, _) in enumerate(PAIRS):
        if runs[0][k] is None:
            continue  # a short name this server owns
        # Each start's own ratio too: which starts were lucky differs
        # between the two commands, so their spread shows what the medians
        # can tell apart.
        ratios = [native_count / module for _, _, module, native_count, *_ in (run[k] for run in runs)]
        rows.append((label, native, *(med(run[k][j] for run in runs) for j in range(2, 7)), min(ratios), max(ratios)))
    return rows


def count_once(server):
    """Instructions per request of every pair on one start of a server."""
    home = tempfile.mkdtemp(prefix="redis-mmap-callgrind")
    port = free_port()
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={home}/cg.out.%p"]
    proc, r, data = start(home, port, wrapper, server=server, module=FLOOR_MODULE)

    def run(command, n):
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
            raise RuntimeError(f"callgrind wrote no dump for {command.split()[0]}")
        time.sleep(0.2)  # let the dump finish writing
        return [c / n for c in costs(new[0])]

    rows = []
    try:
        prepare(r, data)
        for label, command, native, n in PAIRS:
            if not available(r, command):
                rows.append(None)
                continue
            module, own, api = run(command, n)
            base = run(native, n)[0]
            floor = run(floors(command)[1], n)[0]
            rows.append((label, native, module, base, floor, own, api))
            print(f"{server_name(server)} {label:16} {module:>9,.0f} instructions/request, "
                  f"native {base:,.0f}, floor {floor:,.0f}", flush=True)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=5, help="server starts; each count is their median")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--server", action="append", help="a server binary (default: the three of scripts/servers.sh)")
    args = ap.parse_args()
    if not os.path.exists(FLOOR_MODULE):
        sys.exit(f"{FLOOR_MODULE} is missing: run `make bench`, or "
                 "`cargo build --release --lib --features floor --target-dir target/floor`")
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (Debian: apt-get install valgrind)")

    info = machine()
    lines = [
        f"redis-mmap {info['module']}; valgrind's callgrind, user-space instructions per request "
        "(the kernel's TCP work is not counted, nor the server's timer, `serverCron`, which callgrind's "
        "slowdown inflates about fiftyfold per request), `redis-benchmark -P 16 -c 50`, each the median of "
        f"{args.starts} starts of the server (per start: the lowest and highest of the starts' own "
        "native ÷ module). The floor is the floor of "
        "the command's sort with its arguments: `MMAP.FLK` opens and closes the key, `MMAP.FLW` "
        "(for the writes) also propagates the command and fires its keyspace event.",
        "",
    ]
    for server in args.server or servers():
        lines += [
            f"### {server_name(server)}",
            "",
            "| module command | native counterpart | module | native | floor | native ÷ module | per start "
            "| native ÷ floor | module's own code | server's module API |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, native, module, base, floor, own, api, lo, hi in count(server, args.starts):
            native = native if len(native) < 40 else native[:30] + " …"
            lines.append(
                f"| {label} | `{native}` | {module:,.0f} | {base:,.0f} | {floor:,.0f} | **{base / module:.3f}** | "
                f"{lo:.2f}–{hi:.2f} | {base / floor:.2f} | {own:,.0f} | {api:,.0f} |"
            )
        lines.append("")
    print(f"wrote {write_report(args.out, 'instructions.md', lines)}")


if __name__ == "__main__":
    main()
