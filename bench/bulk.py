#!/usr/bin/env python3
"""The bulk commands against their native counterparts, each ratio taken in
the same run, on Redis 7.0, Redis 8.2 and Valkey 9.1:

- MMAP.RANGE ... BLOB of 100, 10,000 and 1,000,000 float64 values against
  GETRANGE of the same bytes from a native string;
- MMAP.APPEND of 100 values against APPEND of 800 bytes to a string;
- MMAP.STATS over 10,000,000 float64 values against numpy computing the
  same fields on a memmap of the same file, in this process (GB/s);
- reading 1,000,000 values into numpy through the Python client against
  redis-py GETRANGE + np.frombuffer on a native string.

The first two run redis-benchmark (server on core 0, client on core 1) and
report throughput and the server's CPU nanoseconds per request; each
command's run alternates with its native counterpart's, and the ratio is
native ns / module ns (1.00: the module costs the server what the native
command does). Medians of --reps repetitions.

Usage: python3 bench/bulk.py [--reps N] [--out DIR] [--server PATH ...]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

from run import MODULE, cpu_seconds, free_port, machine, pin, seconds, server_name, servers, start, write_report  # noqa: E402
from redis_mmap import Vectors  # noqa: E402

# (values, requests, pipeline depth, clients): fewer requests in flight as
# replies grow, so that output buffers stay well inside memory.
RANGES = [(100, 300_000, 16, 50), (10_000, 40_000, 4, 10), (1_000_000, 600, 1, 4)]
APPENDS = 200_000
STATS_VALUES = 10_000_000


def benchmark(port, pid, args, requests, pipeline, clients):
    """Requests per second and server CPU ns per request of one run."""
    cmd = pin(1) + [
        "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-P", str(pipeline), "-c", str(clients),
        "-n", str(requests), "--csv",
    ] + args
    cpu0 = cpu_seconds(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(pid) - cpu0
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) > 1 and cells[0] != "test":
            return float(cells[1]), used * 1e9 / requests
    raise RuntimeError(f"no result from {cmd}:\n{out}")


def pair(port, pid, native, module, requests, pipeline, clients, reps, reset=None):
    """Alternating runs of the native command and the module's; medians of
    each side and of the per-repetition ratios."""
    rows = []
    for _ in range(reps):
        if reset:
            reset()
        n = benchmark(port, pid, native, requests, pipeline, clients)
        m = benchmark(port, pid, module, requests, pipeline, clients)
        rows.append((n, m))
    med = statistics.median
    return {
        "native_rps": med(n[0] for n, _ in rows),
        "module_rps": med(m[0] for _, m in rows),
        "native_ns": med(n[1] for n, _ in rows),
        "module_ns": med(m[1] for _, m in rows),
        "cpu_ratio": med(n[1] / m[1] for n, m in rows),
        "rps_ratio": med(m[0] / n[0] for n, m in rows),
    }


def numpy_stats(a):
    """What MMAP.STATS replies, computed by numpy."""
    nan = np.isnan(a)
    return {
        "count": int(a.size - np.count_nonzero(nan)),
        "nan": int(np.count_nonzero(nan)),
        "sum": float(np.nansum(a)),
        "min": float(np.nanmin(a)),
        "max": float(np.nanmax(a)),
        "mean": float(np.nanmean(a)),
        "std": float(np.nanstd(a)),
    }


def timed(f, reps):
    return statistics.median(seconds(f, reps))


def measure(server, reps):
    home = tempfile.mkdtemp(prefix="redis-mmap-bulk")
    port = free_port()
    proc, r, data = start(home, port, server=server)
    out = {}
    try:
        rng = np.random.default_rng(3)
        values = rng.random(1_000_000)
        values.tofile(os.path.join(data, "million.f64"))
        r.execute_command("MMAP", "million", "million.f64")
        r.set("native", values.tobytes())
        for n, requests, pipeline, clients in RANGES:
            last = str(n - 1)
            out[f"range {n}"] = pair(
                port, proc.pid,
                ["GETRANGE", "native", "0", str(8 * n - 1)],
                ["MMAP.RANGE", "million", "0", last, "BLOB"],
                requests, pipeline, clients, reps,
            )
            print(f"{server_name(server)}: RANGE BLOB {n:>9,} values {out[f'range {n}']}", flush=True)

        r.execute_command("MMAP", "grow", "grow.f64")
        blob = "A" * 800  # 100 float64 values, as any 8 bytes are

        def reset():
            r.delete("grown")
            r.execute_command("MMAP.CLEAR", "grow")

        out["append"] = pair(
            port, proc.pid, ["APPEND", "grown", blob], ["MMAP.APPEND", "grow", blob], APPENDS, 16, 50, reps, reset
        )
        print(f"{server_name(server)}: APPEND 800 bytes {out['append']}", flush=True)
        reset()

        big = rng.random(STATS_VALUES) * 2 - 0.5
        big[::1000] = np.nan
        path = os.path.join(data, "big.f64")
        big.tofile(path)
        del big
        r.execute_command("MMAP", "big", "big.f64")
        mapped = np.memmap(path, dtype=np.float64, mode="r")
        numpy_stats(mapped)  # both read the file from the page cache
        stats_s = timed(lambda: r.execute_command("MMAP.STATS", "big"), reps * 2)
        numpy_s = timed(lambda: numpy_stats(mapped), reps * 2)
        got = Vectors(r).get("big").stats()
        want = numpy_stats(mapped)
        gb = STATS_VALUES * 8 / 1e9
        out["stats"] = {
            "module_ms": stats_s * 1e3,
            "numpy_ms": numpy_s * 1e3,
            "module_gbps": gb / stats_s,
            "numpy_gbps": gb / numpy_s,
            "ms_per_gb": stats_s * 1e3 / gb,
            "sum_rel": abs(got.sum - want["sum"]) / abs(want["sum"]),
        }
        print(f"{server_name(server)}: STATS {out['stats']}", flush=True)
        del mapped

        v = Vectors(r).get("million")
        assert np.array_equal(v[:], values)
        client_s = timed(lambda: v[:], reps * 4)
        native_s = timed(lambda: np.frombuffer(r.getrange("native", 0, -1), dtype=np.float64), reps * 4)
        out["client"] = {"client_ms": client_s * 1e3, "native_ms": native_s * 1e3, "ratio": client_s / native_s}
        print(f"{server_name(server)}: client read {out['client']}", flush=True)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    return out


def report(name, m):
    lines = [
        f"### {name}",
        "",
        "| measurement | native | redis-mmap | native's server ns ÷ ours (target) | throughput ours ÷ native |",
        "|---|---:|---:|---:|---:|",
    ]
    for n, _, pipeline, clients in RANGES:
        x = m[f"range {n}"]
        lines.append(
            f"| `MMAP.RANGE ... BLOB` vs `GETRANGE`, {n:,} values (`-P {pipeline} -c {clients}`) | "
            f"{x['native_ns']:,.0f} ns | {x['module_ns']:,.0f} ns | {x['cpu_ratio']:.2f} (≥ 0.95) | {x['rps_ratio']:.2f} |"
        )
    x = m["append"]
    lines.append(
        f"| `MMAP.APPEND` of 100 values vs `APPEND` of 800 bytes (`-P 16 -c 50`) | {x['native_ns']:,.0f} ns | "
        f"{x['module_ns']:,.0f} ns | {x['cpu_ratio']:.2f} (≥ 0.80) | {x['rps_ratio']:.2f} |"
    )
    s = m["stats"]
    lines.append(
        f"| `MMAP.STATS` of 10,000,000 float64 vs numpy on a memmap | {s['numpy_ms']:.1f} ms ({s['numpy_gbps']:.2f} GB/s) | "
        f"{s['module_ms']:.1f} ms ({s['module_gbps']:.2f} GB/s) | {s['numpy_ms'] / s['module_ms']:.2f} (≥ 1.00) | |"
    )
    c = m["client"]
    lines.append(
        f"| 1,000,000 values into numpy: client `v[:]` vs `GETRANGE` + `np.frombuffer` | {c['native_ms']:.2f} ms | "
        f"{c['client_ms']:.2f} ms | {1 / c['ratio']:.2f} (≥ 0.83, within 1.2x) | |"
    )
    lines += [
        "",
        f"`MMAP.STATS` blocks the server for about {s['ms_per_gb']:.0f} ms per GB of values in the page cache; "
        f"its sum differs from numpy's `nansum` by {s['sum_rel']:.1e} (relative).",
        "",
    ]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--server", action="append", help="a server binary (default: the three of scripts/servers.sh)")
    args = ap.parse_args()
    if not os.path.exists(MODULE):
        sys.exit(f"{MODULE} is missing: run `make build` first")
    info = machine()
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}; redis-mmap {info['module']}.",
        "",
        f"`python3 bench/bulk.py --reps {args.reps}`: server on core 0, redis-benchmark on core 1, medians "
        "of alternating runs. Server ns: the server's CPU time over a run divided by its requests.",
        "",
    ]
    for server in args.server or servers():
        lines += report(server_name(server), measure(server, args.reps))
    print(f"wrote {write_report(args.out, 'bulk.md', lines)}")


if __name__ == "__main__":
    main()
