#!/usr/bin/env python3
"""What long reads cost every other client, with and without worker threads.

For each server (Redis 7.0, Redis 8.2, Valkey 9.1) and for `mmap.threads`
0 (every read on the main thread) and its default (one per core), one
client sends PING after PING while another runs, back to back:

- `MMAP.STATS` over a hot 2 GiB float64 file;
- `MMAP.RANGE ... BLOB` of 256 MiB of it;
- 200 random `MMAP.GET`s of a cold file (its pages dropped from the page cache
  first), which stay on the main thread: a single value is never handed
  over;
- random `MMAP.MGET`s of 256 indices of the same cold file, which are.

It reports each PING's p50, p99 and worst latency, beside a baseline with
no other load. Then, in the same run, `MMAP.STATS` over a hot 1 GiB range
against `numpy.sum` alone of a `numpy.memmap` of the same file, each the
best of five. Writes bench/threads.md and bench/threads.png.

Usage: python3 bench/threads.py [--secs S] [--out DIR] [--server PATH ...]
"""

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import tempfile
import time

import numpy as np
import redis

from run import ROOT, free_port, machine, seconds, server_name, servers, start, write_report

GIB = 1 << 30


def drop_cache(path):
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def load_once(r, kind, rng, n, cold):
    """One round of a load, by name (a separate process runs it)."""
    if kind == "stats":
        r.execute_command("MMAP.STATS", "big")
    elif kind == "range":
        r.execute_command("MMAP.RANGE", "big", 0, 256 * 1024 * 128 - 1, "BLOB")
    elif kind == "gets":
        drop_cache(cold)
        for _ in range(200):
            r.execute_command("MMAP.GET", "cold", rng.randrange(n))
    elif kind == "mgets":
        drop_cache(cold)
        r.execute_command("MMAP.MGET", "cold", *[rng.randrange(n) for _ in range(256)])


def loader(port, kind, n, cold, stop, done):
    r = redis.Redis(port=port)
    rng = random.Random(9)
    while not stop.is_set():
        load_once(r, kind, rng, n, cold)
        with done.get_lock():
            done.value += 1


def pings_beside(port, kind, secs, n, cold):
    """PING latencies (seconds) while the load `kind` runs in a loop in
    another process (a thread would share the PING client's interpreter
    lock while it parses a large reply), and how many loads completed."""
    stop = multiprocessing.Event()
    done = multiprocessing.Value("l", 0)
    proc = None
    if kind:
        proc = multiprocessing.Process(target=loader, args=(port, kind, n, cold, stop, done), daemon=True)
        proc.start()
        time.sleep(0.3)
    p = redis.Redis(port=port)
    lat = []
    end = time.perf_counter() + secs
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        p.ping()
        lat.append(time.perf_counter() - t0)
        time.sleep(0.0005)
    stop.set()
    if proc:
        proc.join()
    return lat, done.value


def summary(lat):
    lat = sorted(lat)
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1e3
    return {"n": len(lat), "p50": q(0.50), "p99": q(0.99), "max": lat[-1] * 1e3}


def measure(server, secs):
    home = tempfile.mkdtemp(prefix="redis-mmap-threads")
    port = free_port()
    # Not pinned to one core, as the other benchmarks pin the server: the
    # workers need the cores the main thread does not use.
    proc, r, data = start(home, port, wrapper=[], server=server)
    out = {"rows": []}
    try:
        big = os.path.join(data, "big.f64")
        np.random.default_rng(5).standard_normal(2 * GIB // 8).tofile(big)
        cold = os.path.join(data, "cold.f64")
        np.random.default_rng(6).standard_normal(2 * GIB // 8).tofile(cold)
        r.execute_command("MMAP", "big", "big.f64")
        r.execute_command("MMAP", "cold", "cold.f64")
        default = int(r.config_get("mmap.threads")["mmap.threads"])
        n = 2 * GIB // 8
        loads = [
            ("no other load", None),
            ("MMAP.STATS of 2 GiB, hot", "stats"),
            ("MMAP.RANGE BLOB of 256 MiB, hot", "range"),
            ("200 random MMAP.GETs, cold", "gets"),
            ("MMAP.MGET of 256 random indices, cold", "mgets"),
        ]
        r.execute_command("MMAP.STATS", "big")  # hot: in the page cache
        for threads in (0, default):
            r.config_set("mmap.threads", threads)
            for label, kind in loads:
                lat, done = pings_beside(port, kind, secs, n, cold)
                s = summary(lat)
                out["rows"].append((threads, label, s, done))
                print(f"{server_name(server)} threads {threads}: {label:40} PING p50 {s['p50']:.3f} ms "
                      f"p99 {s['p99']:.3f} ms worst {s['max']:.1f} ms ({done} loads)", flush=True)
        # STATS against numpy.sum over the same hot 1 GiB.
        r.config_set("mmap.threads", default)
        m = np.memmap(big, dtype="<f8", mode="r")[: GIB // 8]
        m.sum()
        stop = GIB // 8 - 1

        def best(f, reps=10):
            return min(seconds(f, reps))

        r.execute_command("MMAP.STATS", "big", 0, stop)
        out["numpy_sum"] = best(lambda: m.sum())
        out["stats"] = best(lambda: r.execute_command("MMAP.STATS", "big", 0, stop))
        r.config_set("mmap.threads", 0)
        out["stats_inline"] = best(lambda: r.execute_command("MMAP.STATS", "big", 0, stop), 3)
        out["default"] = default
        print(f"{server_name(server)}: 1 GiB numpy.sum {out['numpy_sum'] * 1e3:.1f} ms, MMAP.STATS "
              f"{out['stats'] * 1e3:.1f} ms ({default} threads), {out['stats_inline'] * 1e3:.1f} ms inline", flush=True)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    return out


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for _, label, _, _ in next(iter(results.values()))["rows"] if True]
    labels = list(dict.fromkeys(labels))
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5), sharey=True)
    if len(results) == 1:
        axes = [axes]
    for ax, (name, res) in zip(axes, results.items()):
        for k, threads in enumerate(sorted({t for t, *_ in res["rows"]})):
            worst = [next(s["max"] for t, l, s, _ in res["rows"] if t == threads and l == label) for label in labels]
            ax.barh([i + 0.4 * k for i in range(len(labels))], worst, height=0.4,
                    label=f"mmap.threads {threads}")
        ax.set_xscale("log")
        ax.set_yticks([i + 0.2 for i in range(len(labels))])
        ax.set_yticklabels(labels)
        ax.set_title(f"{name}: worst PING (ms)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=4.0, help="seconds of PINGs per load")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"))
    ap.add_argument("--server", action="append")
    args = ap.parse_args()
    info = machine()
    results = {}
    for server in args.server or servers():
        results[server_name(server)] = measure(server, args.secs)
    lines = [
        f"redis-mmap {info['module']}; one client sends PING after PING (0.5 ms apart) for "
        f"{args.secs:g} s while another runs the load back to back; latencies as the PING client "
        "sees them (Python, loopback).",
        "",
    ]
    for name, res in results.items():
        lines += [f"### {name}", "", "| load | mmap.threads | PING p50 | PING p99 | worst PING | loads done |",
                  "|---|---:|---:|---:|---:|---:|"]
        for threads, label, s, done in res["rows"]:
            lines.append(f"| {label} | {threads} | {s['p50']:.3f} ms | {s['p99']:.3f} ms | {s['max']:.1f} ms | {done} |")
        gb = GIB / 1e9
        lines += ["", f"`MMAP.STATS` over a hot 1 GiB float64 range (all seven fields): "
                      f"**{res['stats'] * 1e3:.1f} ms ({gb / res['stats']:.1f} GB/s)** with {res['default']} threads, "
                      f"{res['stats_inline'] * 1e3:.1f} ms ({gb / res['stats_inline']:.1f} GB/s) inline; "
                      f"`numpy.sum` alone on a `numpy.memmap` of it: {res['numpy_sum'] * 1e3:.1f} ms "
                      f"({gb / res['numpy_sum']:.1f} GB/s); numpy.sum ÷ STATS = "
                      f"**{res['numpy_sum'] / res['stats']:.2f}**.", ""]
    os.makedirs(args.out, exist_ok=True)
    chart(results, os.path.join(args.out, "threads.png"))
    print(f"wrote {write_report(args.out, 'threads.md', lines)}")


if __name__ == "__main__":
    main()
