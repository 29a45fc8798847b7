#!/usr/bin/env python3
"""Writes an array of doubles with numpy (or struct, where numpy is absent),
binds it with MMAP, reads it back through Redis, and writes through Redis
into the file that numpy reads.

Run a server with `make run`, then, from the repository root:
    python3 examples/numpy_roundtrip.py --port 6380 --dir data

Needs the `redis` package (`pip install redis`); numpy is optional.
"""

import argparse
import os
import struct

import redis

try:
    import numpy as np
except ImportError:  # the file format is plain enough for struct
    np = None


def write_file(path, n):
    if np is not None:
        np.arange(n, dtype="<f8").tofile(path)
    else:
        with open(path, "wb") as f:
            f.write(struct.pack("<%dd" % n, *range(n)))


def read_file(path):
    if np is not None:
        return np.fromfile(path, dtype="<f8").tolist()
    with open(path, "rb") as f:
        data = f.read()
    return list(struct.unpack("<%dd" % (len(data) // 8), data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6380)
    ap.add_argument("--dir", default="data", help="the server's mmap.dir, as seen from here")
    ap.add_argument("--name", default="numpy.f64")
    ap.add_argument("-n", type=int, default=1000)
    args = ap.parse_args()

    path = os.path.join(args.dir, args.name)
    write_file(path, args.n)

    r = redis.Redis(host=args.host, port=args.port)
    count = r.execute_command("MMAP", "np", args.name)
    assert count == args.n, count
    got = [float(v) for v in r.execute_command("MMAP.MGET", "np", 0, 1, args.n - 1, args.n)[:3]]
    assert got == [0.0, 1.0, float(args.n - 1)], got
    print("MMAP np %s -> %d values; MMAP.MGET 0 1 %d -> %s" % (args.name, count, args.n - 1, got))

    # A write through Redis is in the file at once.
    r.execute_command("MMAP.SET", "np", 0, 0.1)
    r.execute_command("MMAP.ADD", "np", 1e-20, "inf")
    on_disk = read_file(path)
    assert on_disk[0] == 0.1 and on_disk[-2:] == [1e-20, float("inf")], on_disk[-2:]
    print("after MMAP.SET and MMAP.ADD the file holds %d values, first %r, last %r" % (len(on_disk), on_disk[0], on_disk[-1]))
    r.delete("np")
    print("ok")


if __name__ == "__main__":
    main()
