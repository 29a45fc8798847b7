"""numpy's side of the element-kind tests (tests/kinds.rs).

  kinds.py write DIR   writes DIR/<kind>.src for every kind: specials, then
                       spread values, as numpy writes them (tofile)
  kinds.py check DIR   reads DIR/<kind>.out (written by the server) and
                       DIR/<kind>.txt (the server's replies, one a line) and
                       checks both against DIR/<kind>.src, bit for bit
"""
import struct
import sys

import ml_dtypes
import numpy as np

DTYPES = {
    "int8": np.dtype("<i1"),
    "uint8": np.dtype("<u1"),
    "int16": np.dtype("<i2"),
    "uint16": np.dtype("<u2"),
    "int32": np.dtype("<i4"),
    "uint32": np.dtype("<u4"),
    "int64": np.dtype("<i8"),
    "uint64": np.dtype("<u8"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
}
UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def values(kind):
    dt = DTYPES[kind]
    rng = np.random.default_rng(7)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        edge = [info.min, info.max, 0, 1, info.min + 1, info.max - 1]
        if dt.kind == "i":
            edge.append(-1)
        spread = rng.integers(info.min, info.max, size=200, dtype=dt, endpoint=True)
        return np.concatenate([np.array(edge, dtype=dt), spread])
    bits = UINT[dt.itemsize]
    width = dt.itemsize * 8
    frac = {16: 10, 32: 23, 64: 52}[width] if kind != "bfloat16" else 7
    exp_all = ((1 << (width - 1 - frac)) - 1) << frac
    sign = 1 << (width - 1)
    special = [
        0, sign, 1, sign | 1,                       # zeros, smallest subnormals
        (1 << frac) - 1,                            # largest subnormal
        exp_all, sign | exp_all,                    # infinities
        exp_all | (1 << (frac - 1)),                # the usual quiet NaN
        sign | exp_all | (1 << (frac - 1)),
        exp_all | 1,                                # a signalling NaN
        sign | exp_all | ((1 << frac) - 1),         # a NaN with every payload bit
        exp_all - 1, sign | (exp_all - 1),          # largest finite
    ]
    special = np.array(special, dtype=bits).view(dt)
    spread = rng.integers(0, 1 << width, size=300, dtype=np.uint64, endpoint=False)
    spread = spread.astype(bits).view(dt)
    plain = np.array([0.1, 0.5, -2.25, 1e-3, 1234.5, 3.0], dtype=np.float64).astype(dt)
    return np.concatenate([special, spread, plain])


def same_bits(a, b, dt):
    return a.view(UINT[dt.itemsize]).tolist() == b.view(UINT[dt.itemsize]).tolist()


def check(directory, kind):
    dt = DTYPES[kind]
    src = np.fromfile(f"{directory}/{kind}.src", dtype=dt)
    out = np.fromfile(f"{directory}/{kind}.out", dtype=dt)
    assert len(src) == len(out), (kind, len(src), len(out))
    assert same_bits(src, out, dt), f"{kind}: the server's copy differs"
    with open(f"{directory}/{kind}.txt") as f:
        texts = f.read().split("\n")[:-1]
    assert len(texts) == len(src), (kind, len(texts), len(src))
    for x, t in zip(src, texts):
        if dt.kind in "iu":
            assert int(t) == int(x), (kind, t, x)
        elif np.isnan(x):
            assert "nan" in t, (kind, t, x)
        else:
            # The reply means the value numpy holds: parsed as a double and
            # rounded to the kind, it is the same bits.
            back = np.array([float(t)], dtype=np.float64).astype(dt)
            assert same_bits(back, np.array([x], dtype=dt), dt), (kind, t, x)


def main():
    cmd, directory = sys.argv[1], sys.argv[2]
    for kind in DTYPES:
        if cmd == "write":
            values(kind).tofile(f"{directory}/{kind}.src")
        else:
            check(directory, kind)
    print("ok")


if __name__ == "__main__":
    main()
