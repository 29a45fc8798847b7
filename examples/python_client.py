#!/usr/bin/env python3
"""The Python client on a million values: binds a float32 vector, appends
to it, slices and assigns like a numpy array, summarises it on the server,
and checks every step against numpy reading the same file.

Run a server with `make run`, then, from the repository root:
    pip install ./python
    python3 examples/python_client.py --port 6380 --dir data
"""

import argparse
import os
import time

import numpy as np
import redis

from redis_mmap import Vectors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6380)
    ap.add_argument("--dir", default="data", help="the server's mmap.dir, as seen from here")
    ap.add_argument("-n", type=int, default=1_000_000)
    args = ap.parse_args()
    path = os.path.join(args.dir, "client.f32")

    r = redis.Redis(host=args.host, port=args.port)
    r.delete("temps")
    if os.path.exists(path):
        os.remove(path)
    v = Vectors(r).bind("temps", "client.f32", dtype=np.float32, create=True)
    values = np.linspace(-1, 1, args.n, dtype=np.float32)
    print("append %d values -> length %d" % (args.n, v.append(values)))

    t0 = time.perf_counter()
    everything = v[:]
    took = time.perf_counter() - t0
    assert np.array_equal(everything, values)
    print("v[:] -> %d float32 values in %.1f ms" % (len(everything), took * 1e3))
    print("v[0], v[-1] -> %r, %r" % (float(v[0]), float(v[-1])))

    v[10:13] = [100, 200, 300]
    values[10:13] = [100, 200, 300]
    on_disk = np.fromfile(path, dtype="<f4")
    assert np.array_equal(on_disk, values)
    print("v[10:13] = [100, 200, 300] -> numpy reads %s from the file" % on_disk[10:13])

    stats = v.stats()
    want = float(np.sum(values.astype(np.float64)))
    assert abs(stats.sum - want) <= 1e-12 * abs(want), (stats.sum, want)
    assert stats.max == values.max() and stats.count == args.n
    print("stats -> count %d, sum %.6f, min %s, max %s, std %.6f" % (
        stats.count, stats.sum, stats.min, stats.max, stats.std))
    print("stats(0, 100) -> count %d" % v.stats(0, 100).count)
    print("pop -> %r, length %d" % (float(v.pop()), len(v)))
    print("ok")


if __name__ == "__main__":
    main()
