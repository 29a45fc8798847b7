#!/usr/bin/env python3
"""Each single-value command of redis-mmap against the native command that
does the same job without the module, by the server's CPU time per request,
on Redis 7.0, Redis 8.2 and Valkey 9.1.

For each server (scripts/servers.sh lists them): starts it with the module
built with `--features floor` (the release build plus MMAP.FL0,
MMAP.FLK and MMAP.FLW, which do nothing) on loopback, pinned to core 0 where there
are two, prepares a 1,000,000-value float64 vector holding i * 0.5, an
8,000,000-byte string, 100 string keys and a 10,000,000-value vector, and
runs redis-benchmark (-P 16, 50 clients, pinned to core 1) on each pair: the
native command, then the module's, then the floors with the module
command's arguments. Five repetitions, each on a fresh start of the server:
Redis seeds its hash tables anew at every start, so which command and key
names share a bucket, and cost more to look up, changes from start to start.

The measure is the server's CPU time per request: its user and system time
over the run (from /proc/<pid>/task/*/schedstat, in nanoseconds) divided by
the requests. A client-bound run cannot hide what a command costs the server,
where a throughput ratio partly measures the client. Each ratio is the
native command's nanoseconds divided by the module command's, from the same
repetition: 1.00 means as cheap as native. The floor is what a module command
that does nothing with the same arguments costs (MMAP.FL0), and with its
key opened and closed (MMAP.FLK), which no command of the module can go
below; for a write, with its key opened for writing, the command propagated
and its keyspace event fired (MMAP.FLW), which no write can. Throughput (requests per second) is reported beside. Writes
bench/results.md and bench/results.png, then maps a sparse 8 GB file on each
server and reports the time MMAP takes and the server's resident memory.

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
# The release build with the floor commands (`make bench` builds it).
FLOOR_MODULE = os.path.join(ROOT, "target", "floor", "release", "libredis_mmap.so")

# Indices are fixed but spread over the vector: redis-benchmark's
# __rand_int__ is zero-padded ("000000000713"), which Redis's integer rules,
# and so MMAP.GET's, refuse.
SPREAD = [(i * 7919 + 104729) * 2654435761 % 1_000_000 for i in range(100)]
VMGET100 = "MMAP.MGET bench " + " ".join(map(str, SPREAD))
# Redis's own read of 100 keys, each holding one value's text.
MGET100 = "MGET " + " ".join(f"k{i}" for i in range(100))

# (label, module command, native counterpart, requests at scale 1, target
# ratio). The native command does the same job for a user without the module:
# a value read or written as 8 bytes of a string, 100 values as 100 keys, an
# append to a string.
CASES = [
    ("MMAP.GET", "MMAP.GET bench 500000", "GETRANGE s8m 800 807", 1_000_000, 0.95),
    ("MMAP.SET", "MMAP.SET bench 7 1.25", "SETRANGE s8m 800 abcdefgh", 1_000_000, 0.95),
    ("MMAP.MGET 100", VMGET100, MGET100, 150_000, 0.85),
    ("MMAP.ADD", "MMAP.ADD grow 1.5", "APPEND tail abcdefgh", 1_000_000, 0.50),
    ("MMAP.ADD, 10M values", "MMAP.ADD big 1.5", "APPEND tail abcdefgh", 500_000, None),
    ("MMAP.COUNT", "MMAP.COUNT bench", "GET s", 1_000_000, None),
    # GET against GET: how far apart two runs of one command land here.
    ("GET", "GET s", "GET s", 1_000_000, None),
    # A write by its short name against the same write by its dotted name:
    # the log gets the dotted name either way.
    ("VSET vs MMAP.SET", "VSET bench 7 1.25", "MMAP.SET bench 7 1.25", 1_000_000, None),
    ("VADD vs MMAP.ADD", "VADD grow 1.5", "MMAP.ADD grow 1.5", 1_000_000, None),
    # 100 values as raw bytes against the same 800 bytes of a string.
    ("MMAP.RANGE 100 BLOB", "MMAP.RANGE bench 0 99 BLOB", "GETRANGE s8m 0 799", 500_000, None),
]


# The module's writes: their floor also propagates and notifies, as each must.
WRITES = ("MMAP.SET", "MMAP.ADD", "VSET", "VADD")


def available(r, command):
    """Whether this server runs `command` as the module's: a short name
    the server owns itself (Redis 8's VADD) is not."""
    name = command.split()[0].lower()
    if name.startswith("mmap") or not name.startswith("v"):
        return True
    names = r.info("mmap").get("mmap_short_names") or []
    return name in (names if isinstance(names, list) else str(names).split(","))


def floors(command):
    """The do-nothing command with `command`'s key and arguments, and the
    floor of its sort: the key opened (and for a write, the command
    propagated and its keyspace event fired), nothing else done."""
    name, *rest = command.split()
    full = "MMAP.FLW" if name in WRITES else "MMAP.FLK"
    return [" ".join([f] + rest) for f in ("MMAP.FL0", full)]


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


def seconds(f, reps):
    """The times of `reps` calls of `f`, in seconds."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return times


def write_report(out, name, lines):
    """Writes `lines` as `out/name`, prints them, and returns the path."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return path


def raise_open_files():
    """Soft open-file limit up to the hard one, as `make run` does: every
    bound key holds a descriptor (see the README's Limits)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(home, port, wrapper=None, server="redis-server", module=MODULE):
    """`server` with the module, run under `wrapper` (default: pinned to
    core 0); returns the process, a client and the module's data directory."""
    data = os.path.join(home, "data")
    os.makedirs(data)
    proc = subprocess.Popen(
        (pin(0) if wrapper is None else wrapper) + [
            server, "--port", str(port), "--bind", "127.0.0.1", "--dir", home,
            "--save", "", "--appendonly", "no", "--logfile", "redis.log",
            "--maxclients", "1000", "--loadmodule", module, "dir", data,
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
            f.write(struct.pack("<100000d", *[i * 0.5 for i in range(start, start + 100_000)]))
    r.set("s", "abcdefgh")
    r.set("tail", "")
    # The same million values as one string, read 8 bytes at a time: what a
    # user does without the module.
    r.set("s8m", b"\0" * 8_000_000)
    for i, at in enumerate(SPREAD):
        r.set(f"k{i}", str(at * 0.5))
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
    """One panel per server: each command's server-CPU ratio to its native
    counterpart (bars, medians, with the range), the floor's (white dots)
    and the target (black ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5), sharey=True)
    if len(results) == 1:
        axes = [axes]
    for ax, (name, rows) in zip(axes, results):
        labels = [f"{r['label']}\nvs {r['native'].split()[0]}" for r in rows]
        ys = range(len(rows))
        ax.barh(
            ys, [r["ratio"] for r in rows], color="#4477aa",
            xerr=[[r["ratio"] - r["low"] for r in rows], [r["high"] - r["ratio"] for r in rows]],
            capsize=3, label="native ns ÷ module ns (range)",
        )
        ax.plot([r["floorkey_ratio"] for r in rows], ys, "o", color="white", markeredgecolor="black",
                label="floor: a command that only opens its key (a write: and propagates)")
        for y, r in zip(ys, rows):
            if r["target"]:
                ax.plot([r["target"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.axvline(1.0, color="grey", linestyle=":")
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(name)
        ax.set_xlabel("server CPU per request: native ÷ module (1.0: as cheap as native)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"redis-mmap {info['module']}, {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; "
        "redis-benchmark -P 16 -c 50, server and client pinned to separate cores; black ticks: targets",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def measure(server, reps, scale, module):
    """Every case on one server; returns its rows and the large-file figures."""
    runs = {label: [] for label, *_ in CASES}
    for rep in range(reps):
        # A start of its own for each rep: Redis seeds its hash tables anew at
        # every start, and a name that shares a bucket costs more to look up.
        last = rep == reps - 1
        home = tempfile.mkdtemp(prefix="redis-mmap-bench")
        port = free_port()
        proc, r, data = start(home, port, server=server, module=module)
        try:
            prepare(r, data)
            for label, command, native, n, _ in CASES:
                if not available(r, command):
                    runs.pop(label, None)
                    continue
                n = max(1000, int(n * scale))
                base = bench(port, proc.pid, native, n)
                got = bench(port, proc.pid, command, n)
                floor, floorkey = (bench(port, proc.pid, f, n) for f in floors(command))
                runs[label].append((got, base, floor, floorkey))
                print(
                    f"{server_name(server)} rep {rep + 1}: {label:22} {got[2]:>7,.0f} ns/request "
                    f"({native.split()[0]} {base[2]:,.0f}, floor {floor[2]:,.0f}, of its sort {floorkey[2]:,.0f}), "
                    f"{got[0]:>10,.0f} req/s, busy {got[1]:.0%}",
                    flush=True,
                )
            if last:
                big = large(r, proc, data)
                big["count"] = r.execute_command("MMAP.COUNT", "grow")
        finally:
            proc.kill()
            proc.wait()
            shutil.rmtree(home, ignore_errors=True)
    med = statistics.median
    rows = []
    for label, command, native, _, target in CASES:
        runs_ = runs.get(label)
        if not runs_:
            continue  # a short name this server owns
        ratios = [base[2] / got[2] for got, base, _, _ in runs_]
        rows.append({
            "label": label,
            "native": native if len(native) < 40 else native[:30] + " …",
            "ns": med(got[2] for got, _, _, _ in runs_),
            "native_ns": med(base[2] for _, base, _, _ in runs_),
            "ratio": med(ratios),
            "low": min(ratios),
            "high": max(ratios),
            "target": target,
            "floor_ns": med(f[2] for _, _, f, _ in runs_),
            "floorkey_ns": med(k[2] for _, _, _, k in runs_),
            "floorkey_ratio": med(base[2] / k[2] for _, base, _, k in runs_),
            "rps": med(got[0] for got, _, _, _ in runs_),
            "native_rps": med(base[0] for _, base, _, _ in runs_),
            "busy": med(got[1] for got, _, _, _ in runs_),
        })
    return rows, big


def report(name, rows, big):
    by = {r["label"]: r for r in rows}
    slowdown = by["MMAP.ADD, 10M values"]["ns"] / by["MMAP.ADD"]["ns"] - 1
    lines = [
        f"### {name}",
        "",
        "| module command | native counterpart | module ns | native ns | native ÷ module | lowest–highest | target "
        "| floor ns (of its sort) | native ÷ floor of its sort | module req/s | native req/s | server busy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = f"≥ {r['target']:.2f}" if r["target"] else ""
        lines.append(
            f"| {r['label']} | `{r['native']}` | {r['ns']:,.0f} | {r['native_ns']:,.0f} | **{r['ratio']:.2f}** | "
            f"{r['low']:.2f}–{r['high']:.2f} | {target} | {r['floor_ns']:,.0f} ({r['floorkey_ns']:,.0f}) | "
            f"{r['floorkey_ratio']:.2f} | {r['rps']:,.0f} | {r['native_rps']:,.0f} | {r['busy']:.0%} |"
        )
    lines += [
        "",
        f"MMAP.ADD on a 10,000,000-value vector costs {slowdown * 100:+.1f}% of what it does on a growing one; "
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
    if not os.path.exists(FLOOR_MODULE):
        sys.exit(f"{FLOOR_MODULE} is missing: run `make bench`, or "
                 "`cargo build --release --lib --features floor --target-dir target/floor`")

    info = machine()
    results = []
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; redis-mmap {info['module']}.",
        "",
        f"`redis-benchmark -P 16 -c 50`, server on core 0 and client on core 1, {args.reps} "
        f"repetition{'s' if args.reps != 1 else ''}, each on a fresh start of the server, medians. Server CPU per request: the server's user and "
        "system time over a run divided by its requests. `native ÷ module` is the native counterpart's "
        "nanoseconds over the module command's in the same repetition: 1.00 is as cheap as native. The floor "
        "is `MMAP.FL0` with the module command's arguments, a command that does nothing, and in brackets "
        "`MMAP.FLK`, which also opens and closes the key (for a write, `MMAP.FLW`, which opens it for "
        "writing, propagates the command as sent and fires its keyspace event): no command of its sort costs less. "
        "Server busy: the "
        "share of the module command's run the server spent on a CPU.",
        "",
    ]
    for server in args.server or servers():
        name = server_name(server)
        rows, big = measure(server, args.reps, args.scale, FLOOR_MODULE)
        results.append((name, rows))
        lines += report(name, rows, big)
    md = write_report(args.out, "results.md", lines)
    try:
        chart(results, info, os.path.join(args.out, "results.png"))
        print(f"wrote {md} and {os.path.join(args.out, 'results.png')}")
    except ImportError:
        print(f"wrote {md}; no chart (pip install matplotlib)")


if __name__ == "__main__":
    main()
