#!/usr/bin/env python3
"""Throughput of redis-mmap's commands next to Redis's own GET.

Starts redis-server with the release module on loopback (pinned to core 0
where there are two), prepares a 1,000,000-value vector, an empty one and a
10,000,000-value one, and runs redis-benchmark (-P 16, 50 clients, pinned to
core 1) on each command, seven times. Each command's run follows a GET run of
its own, and its ratio is to that GET: the machine's speed drifts less over
two runs than over a whole repetition; a second GET measured the same way
shows how far apart two runs of one command land. Reports medians, the
ratios with their range, and how busy the server was (a server below 100%
was waiting for the client), as bench/results.md and bench/results.png.
Then maps a sparse 8 GB file and reports the time MMAP takes and the
server's resident memory.

Usage: python3 bench/run.py [--reps N] [--scale F] [--out DIR]
"""

import argparse
import os
import platform
import random
import re
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
VMGET10 = "VMGET bench " + " ".join(map(str, SPREAD[:10]))
VMGET100 = "VMGET bench " + " ".join(map(str, SPREAD))
MGET10 = "MGET " + " ".join(["s"] * 10)
MGET100 = "MGET " + " ".join(["s"] * 100)
CASES = [
    ("GET", "GET s", 2_000_000),
    # GET against GET: how far apart two runs of the same command land here.
    ("GET again", "GET s", 2_000_000),
    ("GETRANGE 8 bytes", "GETRANGE s8m 4000000 4000007", 2_000_000),
    ("VGET", "VGET bench 500000", 2_000_000),
    ("VSET", "VSET bench 500000 1.5", 2_000_000),
    ("VMGET 10", VMGET10, 1_000_000),
    ("VMGET 100", VMGET100, 300_000),
    # Redis's own reads of 10 and 100 keys: what 10 and 100 arguments and
    # bulk replies cost any command.
    ("MGET 10 (native)", MGET10, 1_000_000),
    ("MGET 100 (native)", MGET100, 300_000),
    ("VADD (empty start)", "VADD grow 1.5", 1_000_000),
    ("VADD (10M start)", "VADD big 1.5", 1_000_000),
    ("VCOUNT", "VCOUNT bench", 2_000_000),
]
TARGETS = {"VGET": 0.95, "VSET": 0.90, "VMGET 100": 0.15, "VADD (empty start)": 0.35, "VCOUNT": 0.95}


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


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"v=(\S+)", server)
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
        "redis": version.group(1) if version else "?",
        "module": rev or "?",
    }


def cpu_seconds(pid):
    """User plus system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(port, pid, command, requests):
    """Requests per second for one redis-benchmark run, and the share of
    that run's time the server spent on a CPU."""
    cmd = pin(1) + [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", "16", "-c", "50",
        "-n", str(requests), "--csv",
    ] + command.split()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    busy = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) > 1 and cells[0] != "test":
            return float(cells[1]), busy
    raise RuntimeError(f"no result from {cmd}:\n{out}")


def start(home, port, wrapper=None):
    """redis-server with the module, run under `wrapper` (default: pinned to
    core 0); returns the process, a client and the module's data directory."""
    data = os.path.join(home, "data")
    os.makedirs(data)
    proc = subprocess.Popen(
        (pin(0) if wrapper is None else wrapper) + [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", home,
            "--save", "", "--appendonly", "no", "--logfile", "redis.log",
            "--loadmodule", MODULE, "dir", data,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    r.execute_command("VRESIZE", "big", 10_000_000)


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
    # Random indices all over the 8 GB: each VMGET faults in up to 100 pages.
    rng = random.Random(7)
    calls = 2000
    t0 = time.perf_counter()
    for _ in range(calls):
        got = r.execute_command("VMGET", "huge", *[rng.randrange(1 << 30) for _ in range(100)])
        assert len(got) == 100
    vmget = calls / (time.perf_counter() - t0)
    vadd, _ = bench(port, proc.pid, "VADD huge 1.5", 500_000)
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


def chart(rows, info, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r[0] for r in rows]
    rps = [r[1] for r in rows]
    ratios = [r[2] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5.5))
    a.barh(labels, [x / 1e6 for x in rps], color="#4477aa")
    a.set_xlabel("million requests/s (median)")
    a.invert_yaxis()
    def shade(label, ratio):
        if label not in TARGETS:
            return "#999999"
        return "#228833" if ratio >= TARGETS[label] else "#cc3311"

    spread = [[r[2] - r[3] for r in rows], [r[4] - r[2] for r in rows]]
    b.barh(labels, ratios, xerr=spread, capsize=3, color=[shade(l, x) for l, x in zip(labels, ratios)])
    for l, t in TARGETS.items():
        if l in labels:
            i = labels.index(l)
            b.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2)
    b.axvline(1.0, color="grey", linestyle=":")
    b.set_xlabel("ratio to the GET run before it, median and range (black: target)")
    b.invert_yaxis()
    b.set_yticklabels([])
    fig.suptitle(
        f"redis-mmap {info['module']} on Redis {info['redis']}, {info['cpu']}, {info['cores']} cores, "
        f"Linux {info['kernel']}\nredis-benchmark -P 16 -c 50, server and client pinned to separate cores",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the request counts")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    args = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"{MODULE} is missing: run `make build` first")

    info = machine()
    home = tempfile.mkdtemp(prefix="redis-mmap-bench")
    port = free_port()
    proc, r, data = start(home, port)
    try:
        prepare(r, data)
        runs = {label: [] for label, _, _ in CASES}
        ratios = {label: [] for label, _, _ in CASES}
        busy = {label: [] for label, _, _ in CASES}
        get_n = CASES[0][2]
        for rep in range(args.reps):
            for label, command, n in CASES[1:]:
                base, base_busy = bench(port, proc.pid, CASES[0][1], max(1000, int(get_n * args.scale)))
                rps, rps_busy = bench(port, proc.pid, command, max(1000, int(n * args.scale)))
                runs["GET"].append(base)
                busy["GET"].append(base_busy)
                ratios["GET"].append(1.0)
                runs[label].append(rps)
                busy[label].append(rps_busy)
                ratios[label].append(rps / base)
                print(
                    f"rep {rep + 1}: {label:20} {rps:>12,.0f} req/s, GET {base:>12,.0f}, "
                    f"ratio {rps / base:.3f}, server busy {rps_busy:.0%} (GET {base_busy:.0%})",
                    flush=True,
                )
        big = large(r, proc, data)
        count = r.execute_command("VCOUNT", "grow")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)

    med = statistics.median
    rows = [(l, med(runs[l]), med(ratios[l]), min(ratios[l]), max(ratios[l]), med(busy[l])) for l, _, _ in CASES]
    vadd_slowdown = 1 - statistics.median(runs["VADD (10M start)"]) / statistics.median(runs["VADD (empty start)"])
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; "
        f"Redis {info['redis']}; redis-mmap {info['module']}.",
        "",
        f"`redis-benchmark -P 16 -c 50`, server on core 0 and client on core 1, "
        f"{args.reps} repetition{'s' if args.reps != 1 else ''}, medians. Each command's run follows a `GET` run of its own, and "
        f"its ratio is to that `GET`. Server busy: the share of the run the server spent on a CPU; "
        f"below 100%, it was waiting for the client.",
        "",
        "| command | requests/s | ratio to GET | lowest–highest ratio | target | server busy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, rps, ratio, low, high, on_cpu in rows:
        target = f"≥ {TARGETS[label]:.2f}" if label in TARGETS else ""
        spread = f"{low:.2f}–{high:.2f}" if label != "GET" else ""
        lines.append(f"| {label} | {rps:,.0f} | {ratio:.2f} | {spread} | {target} | {on_cpu:.0%} |")
    lines += [
        "",
        f"VADD on a 10,000,000-value vector is {vadd_slowdown * 100:+.1f}% slower than on an empty one "
        f"(target: at most 10%); the growing vector ended with {count:,} values.",
        "",
        f"Sparse 8 GB file (1,073,741,824 values): `MMAP` took {big['mmap_ms']:.2f} ms; the server's "
        f"resident memory went from {big['rss_before_mib']:.1f} MiB to {big['rss_after_mib']:.1f} MiB "
        f"({big['rss_after_reads_mib']:.1f} MiB after the reads below). `VMGET` of 100 random indices, "
        f"one call at a time from Python: {big['vmget100_rps']:,.0f} calls/s; `VADD` of one value "
        f"(redis-benchmark as above): {big['vadd_rps']:,.0f} requests/s.",
    ]
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "results.md")
    with open(md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        chart(rows, info, os.path.join(args.out, "results.png"))
        print(f"wrote {md} and {os.path.join(args.out, 'results.png')}")
    except ImportError:
        print(f"wrote {md}; no chart (pip install matplotlib)")


if __name__ == "__main__":
    main()
