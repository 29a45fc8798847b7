#!/usr/bin/env python3
"""Writes arrays with numpy, binds them with MMAP (float64, then float32,
int64 and uint8 with TYPE), reads them back through Redis, and writes
through Redis into the files that numpy reads.

Run a server with `make run`, then, from the repository root:
    python3 examples/numpy_roundtrip.py --port 6380 --dir data

Needs the `redis` and `numpy` packages (`pip install redis numpy`).
"""

import argparse
import os

import numpy as np
import redis

# The module's kinds and numpy's dtypes: same bytes, no header.
KINDS = {"float32": "<f4", "int64": "<i8", "uint8": "u1"}


def float64_roundtrip(r, directory, name, n):
    path = os.path.join(directory, name)
    np.arange(n, dtype="<f8").tofile(path)
    count = r.execute_command("MMAP", "np", name)
    assert count == n, count
    got = [float(v) for v in r.execute_command("MMAP.MGET", "np", 0, 1, n - 1, n)[:3]]
    assert got == [0.0, 1.0, float(n - 1)], got
    print("MMAP np %s -> %d values; MMAP.MGET 0 1 %d -> %s" % (name, count, n - 1, got))

    # A write through Redis is in the file at once.
    r.execute_command("MMAP.SET", "np", 0, 0.1)
    r.execute_command("MMAP.ADD", "np", 1e-20, "inf")
    on_disk = np.fromfile(path, dtype="<f8")
    assert on_disk[0] == 0.1 and on_disk[-2:].tolist() == [1e-20, float("inf")], on_disk[-2:]
    print("after MMAP.SET and MMAP.ADD the file holds %d values, first %r, last %r" % (len(on_disk), on_disk[0], on_disk[-1]))
    r.delete("np")


def typed_roundtrip(r, directory, kind, n):
    dtype = np.dtype(KINDS[kind])
    name = "numpy-%s.bin" % kind
    path = os.path.join(directory, name)
    values = (np.arange(n) % 200).astype(dtype)
    values.tofile(path)
    key = "np-" + kind
    assert r.execute_command("MMAP", key, name, "TYPE", kind) == n
    info = r.execute_command("MMAP.INFO", key)
    info = dict(zip(info[::2], info[1::2])) if isinstance(info, list) else info
    assert info[b"element-size"] == dtype.itemsize, info
    # Integers come back as integers, floats in the shortest text of their kind.
    got = r.execute_command("MMAP.MGET", key, 1, n - 1)
    assert [dtype.type(float(x)) for x in got] == [values[1], values[n - 1]], got
    r.execute_command("MMAP.SET", key, 0, 7)
    r.execute_command("MMAP.ADD", key, 250 if kind == "uint8" else -3)
    on_disk = np.fromfile(path, dtype=dtype)
    assert on_disk[0] == 7 and len(on_disk) == n + 1, on_disk[:3]
    print("%s: MMAP %s TYPE %s -> %d values; numpy reads back %s ... %s" % (kind, key, kind, n, on_disk[0], on_disk[-1]))
    r.delete(key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6380)
    ap.add_argument("--dir", default="data", help="the server's mmap.dir, as seen from here")
    ap.add_argument("--name", default="numpy.f64")
    ap.add_argument("-n", type=int, default=1000)
    args = ap.parse_args()

    r = redis.Redis(host=args.host, port=args.port)
    float64_roundtrip(r, args.dir, args.name, args.n)
    for kind in KINDS:
        typed_roundtrip(r, args.dir, kind, args.n)
    print("ok")


if __name__ == "__main__":
    main()
