#!/usr/bin/env python3
"""Throughput and server CPU per request of redis-mmap's commands, next to
each server's own GET, on Redis 7.0, Redis 8.2 and Valkey 9.1.

For each server (scripts/servers.sh lists them): starts it with the release
module on loopback (pinned to core 0 where there are two), prepares a
1,000,000-value vector, an empty one and a 10,000,000-value one, and runs
redis-benchmark (-P 16, 50 clients, pinned to core 1) on each command, five
times. Each command's run follows a GET run of its own, and its ratios are to
that GET: the machine's speed drifts less over two runs than over a whole
repetition; a second GET measured the same way shows how far apart two runs
of one command land.

Two ratios per command. Throughput: requests per second against GET's. On
two cores GET is partly limited by the client, so this one partly measures
the client. Server CPU: the server's user and system CPU time over the run
(from /proc/<pid>/task/*/schedstat, in nanoseconds) divided by the requests, GET's nanoseconds per
request against the command's; a client-bound run cannot hide what a
command costs the server. Also reports how busy the server was (below 100%
it waited for the client). Writes bench/results.md and bench/results.png,
then maps a sparse 8 GB file on each server and reports the time MMAP takes
and the server's resident memory.

Usage: python3 bench/run.py [--reps N] [--scale F] [--out DIR] [--server PATH ...]
"""

import argparse
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.path.join(ROOT, "target", "release", "libredis_mmap.so")

# (label, command, requests at scale 1). Indices are fixed but spread over
# the vector: redis-benchmark's __rand_int__ is zero-padded ("000000000713"),
# which Redis's integer rules, and so VGET's, refuse.
SPREAD = [(i * 7919 + 104729) * 2654435761 % 1_000_000 for i in range(100)]
VMGET10 = "MMAP.MGET bench " + " ".join(map(str, SPREAD[:10]))
VMGET100 = "MMAP.MGET bench " + " ".join(map(str, SPREAD))
MGET10 = "MGET " + " ".join(["s"] * 10)
MGET100 = "MGET " + " ".join(["s"] * 100)
CASES = [
    ("GET", "GET s", 1_000_000),
    # GET against GET: how far apart two runs of the same command land here.
    ("GET again", "GET s", 1_000_000),
    ("GETRANGE 8 bytes", "GETRANGE s8m 4000000 4000007", 1_000_000),
    ("MMAP.GET", "MMAP.GET bench 500000", 1_000_000),
    ("MMAP.SET", "MMAP.SET bench 500000 1.5", 1_000_000),
    ("MMAP.MGET 10", VMGET10, 500_000),
    ("MMAP.MGET 100", VMGET100, 150_000),
    # Redis's own reads of 10 and 100 keys: what 10 and 100 arguments and
    # bulk replies cost any command.
    ("MGET 10 (native)", MGET10, 500_000),
    ("MGET 100 (native)", MGET100, 150_000),
    ("MMAP.ADD (empty start)", "MMAP.ADD grow 1.5", 500_000),
    ("MMAP.ADD (10M start)", "MMAP.ADD big 1.5", 500_000),
    ("MMAP.COUNT", "MMAP.COUNT bench", 1_000_000),
]


def servers():
    """The three servers every test runs against, installed when missing."""
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "servers.sh")], capture_output=True, text=True, check=True)
    return out.stdout.split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(core):
    """taskset prefix for `core`, when the machine has two cores or more."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_name(server):
    """`Redis 7.0.15` or `Valkey 9.1.2`, from the binary's --version."""
    out = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    version = re.search(r"v=(\S+)", out)
    return f"{out.split()[0] if out else '?'} {version.group(1) if version else '?'}"


def machine(server="redis-server"):
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        rev = subprocess.run(["git", "-C", ROOT, "describe", "--always"], capture_output=True, text=True).stdout.strip()
        # Changed sources make the build "-dirty"; the benchmark's own output does not.
        changed = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--", ".", ":!bench/results.*", ":!bench/instructions.md"],
            capture_output=True, text=True,
        ).stdout.strip()
        if rev and changed:
            rev += "-dirty"
    except OSError:
        rev = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "server": server_name(server),
        "module": rev or "?",
    }


def cpu_seconds(pid):
    """CPU time the process has used, user and system, all its threads.

    /proc/<pid>/task/*/schedstat counts it in nanoseconds, where
    /proc/<pid>/stat counts clock ticks (10 ms): the same accounting, fine
    enough for a run of under a second. Falls back to ticks where the kernel
    keeps no schedstat."""
    total, tasks = 0, f"/proc/{pid}/task"
    try:
        for tid in os.listdir(tasks):
            with open(f"{tasks}/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(port, pid, command, requests):
    """Requests per second for one redis-benchmark run, the share of that
    run's time the server spent on a CPU, and the server's CPU nanoseconds
    per request."""
    cmd = pin(1) + [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", "16", "-c", "50",
        "-n", str(requests), "--csv",
    ] + command.split()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(pid) - cpu0
    busy = used / (time.perf_counter() - t0)
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) > 1 and cells[0] != "test":
            return float(cells[1]), busy, used * 1e9 / requests
    raise RuntimeError(f"no result from {cmd}:\n{out}")


def raise_open_files():
    """Soft open-file limit up to the hard one, as `make run` does: every
    bound key holds a descriptor (see the README's Limits)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(home, port, wrapper=None, server="redis-server"):
    """`server` with the module, run under `wrapper` (default: pinned to
    core 0); returns the process, a client and the module's data directory."""
    data = os.path.join(home, "data")
    os.makedirs(data)
    proc = subprocess.Popen(
        (pin(0) if wrapper is None else wrapper) + [
            server, "--port", str(port), "--bind", "127.0.0.1", "--dir", home,
            "--save", "", "--appendonly", "no", "--logfile", "redis.log",
            "--maxclients", "1000", "--loadmodule", MODULE, "dir", data,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=raise_open_files,
    )
    r = redis.Redis(port=port)
    # Under valgrind the server takes seconds to come up.
    for _ in range(1500):
        try:
            r.ping()
            return proc, r, data
        except redis.ConnectionError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start; see " + os.path.join(home, "redis.log"))


def prepare(r, data):
    with open(os.path.join(data, "bench.f64"), "wb") as f:
        for start in range(0, 1_000_000, 100_000):
            f.write(struct.pack("<100000d", *range(start, start + 100_000)))
    r.set("s", "abcdefgh")
    # The same million values as one string, read 8 bytes at a time: what a
    # user does without the module.
    r.set("s8m", b"\0" * 8_000_000)
    assert r.execute_command("MMAP", "bench", "bench.f64") == 1_000_000
    assert r.execute_command("MMAP", "grow", "grow.f64") == 0
    assert r.execute_command("MMAP", "big", "big.f64") == 0
    r.execute_command("MMAP.RESIZE", "big", 10_000_000)


def large(r, proc, data):
    """MMAP of a sparse 8 GB file: time, resident memory, reads and appends."""
    path = os.path.join(data, "huge.f64")
    with open(path, "wb") as f:
        f.truncate(8 << 30)
    before = rss_kib(proc.pid)
    t0 = time.perf_counter()
    n = r.execute_command("MMAP", "huge", "huge.f64")
    took = time.perf_counter() - t0
    after = rss_kib(proc.pid)
    assert n == 1 << 30
    port = r.connection_pool.connection_kwargs["port"]
    # Random indices all over the 8 GB: each MMAP.MGET faults in up to 100 pages.
    rng = random.Random(7)
    calls = 2000
    t0 = time.perf_counter()
    for _ in range(calls):
        got = r.execute_command("MMAP.MGET", "huge", *[rng.randrange(1 << 30) for _ in range(100)])
        assert len(got) == 100
    vmget = calls / (time.perf_counter() - t0)
    vadd = bench(port, proc.pid, "MMAP.ADD huge 1.5", 500_000)[0]
    after_reads = rss_kib(proc.pid)
    r.delete("huge")
    os.remove(path)
    return {
        "mmap_ms": took * 1000,
        "rss_before_mib": before / 1024,
        "rss_after_mib": after / 1024,
        "rss_after_reads_mib": after_reads / 1024,
        "vmget100_rps": vmget,
        "vadd_rps": vadd,
    }


def chart(results, info, path):
    """One panel per server: each command's server-CPU ratio to GET (bars)
    and throughput ratio (dots), medians, with the throughput range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 6), sharey=True)
    if len(results) == 1:
        axes = [axes]
    for ax, (name, rows) in zip(axes, results):
        labels = [r["label"] for r in rows]
        ys = range(len(rows))
        ax.barh(ys, [r["cpu_ratio"] for r in rows], color="#4477aa", label="server CPU: GET's ns ÷ command's ns")
        ax.errorbar(
            [r["ratio"] for r in rows], ys,
            xerr=[[r["ratio"] - r["low"] for r in rows], [r["high"] - r["ratio"] for r in rows]],
            fmt="o", color="#cc6677", capsize=3, label="throughput: command ÷ GET (range)",
        )
        ax.axvline(1.0, color="grey", linestyle=":")
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_title(name)
        ax.set_xlabel("ratio to the GET run before it (1.0: as cheap as GET)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"redis-mmap {info['module']}, {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; "
        "redis-benchmark -P 16 -c 50, server and client pinned to separate cores",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def measure(server, reps, scale):
    """Every case on one server; returns its rows and the large-file figures."""
    home = tempfile.mkdtemp(prefix="redis-mmap-bench")
    port = free_port()
    proc, r, data = start(home, port, server=server)
    runs = {label: [] for label, _, _ in CASES}
    try:
        prepare(r, data)
        get_n = CASES[0][2]
        for rep in range(reps):
            for label, command, n in CASES[1:]:
                base = bench(port, proc.pid, CASES[0][1], max(1000, int(get_n * scale)))
                got = bench(port, proc.pid, command, max(1000, int(n * scale)))
                runs["GET"].append((base, base))
                runs[label].append((got, base))
                print(
                    f"{server_name(server)} rep {rep + 1}: {label:24} {got[0]:>10,.0f} req/s "
                    f"(GET {base[0]:>10,.0f}), {got[2]:>7,.0f} ns/request (GET {base[2]:,.0f}), "
                    f"busy {got[1]:.0%}",
                    flush=True,
                )
        big = large(r, proc, data)
        big["count"] = r.execute_command("MMAP.COUNT", "grow")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    med = statistics.median
    rows = []
    for label, _, _ in CASES:
        pairs = runs[label]
        ratios = [got[0] / base[0] for got, base in pairs]
        rows.append({
            "label": label,
            "rps": med(got[0] for got, _ in pairs),
            "ratio": med(ratios),
            "low": min(ratios),
            "high": max(ratios),
            "ns": med(got[2] for got, _ in pairs),
            "cpu_ratio": med(base[2] / got[2] for got, base in pairs),
            "busy": med(got[1] for got, _ in pairs),
        })
    return rows, big


def report(name, rows, big, reps):
    by = {r["label"]: r for r in rows}
    slowdown = 1 - by["MMAP.ADD (10M start)"]["rps"] / by["MMAP.ADD (empty start)"]["rps"]
    lines = [
        f"### {name}",
        "",
        "| command | requests/s | throughput ÷ GET's | lowest–highest | server CPU ns/request | GET's ns ÷ this | server busy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        spread = f"{r['low']:.2f}–{r['high']:.2f}" if r["label"] != "GET" else ""
        lines.append(
            f"| {r['label']} | {r['rps']:,.0f} | {r['ratio']:.2f} | {spread} | {r['ns']:,.0f} | "
            f"{r['cpu_ratio']:.2f} | {r['busy']:.0%} |"
        )
    lines += [
        "",
        f"MMAP.ADD on a 10,000,000-value vector is {slowdown * 100:+.1f}% slower than on an empty one; "
        f"the growing vector ended with {big['count']:,} values. "
        f"Sparse 8 GB file (1,073,741,824 values): `MMAP` took {big['mmap_ms']:.2f} ms; the server's "
        f"resident memory went from {big['rss_before_mib']:.1f} MiB to {big['rss_after_mib']:.1f} MiB "
        f"({big['rss_after_reads_mib']:.1f} MiB after the reads below). `MMAP.MGET` of 100 random indices, "
        f"one call at a time from Python: {big['vmget100_rps']:,.0f} calls/s; `MMAP.ADD` of one value "
        f"(redis-benchmark as above): {big['vadd_rps']:,.0f} requests/s.",
        "",
    ]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the request counts")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--server", action="append", help="a server binary (default: the three of scripts/servers.sh)")
    args = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"{MODULE} is missing: run `make build` first")

    info = machine()
    results = []
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; redis-mmap {info['module']}.",
        "",
        f"`redis-benchmark -P 16 -c 50`, server on core 0 and client on core 1, {args.reps} "
        f"repetition{'s' if args.reps != 1 else ''}, medians. Each command's run follows a `GET` run of "
        "its own, and its ratios are to that `GET`. Server CPU: the server's user and system time over "
        "the run divided by its requests; `GET's ns ÷ this` is 1.00 for a command that costs the server "
        "what `GET` does. Server busy: the share of the run the server spent on a CPU; below 100%, it "
        "was waiting for the client.",
        "",
    ]
    for server in args.server or servers():
        name = server_name(server)
        rows, big = measure(server, args.reps, args.scale)
        results.append((name, rows))
        lines += report(name, rows, big, args.reps)
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "results.md")
    with open(md, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    try:
        chart(results, info, os.path.join(args.out, "results.png"))
        print(f"wrote {md} and {os.path.join(args.out, 'results.png')}")
    except ImportError:
        print(f"wrote {md}; no chart (pip install matplotlib)")


if __name__ == "__main__":
    main()
