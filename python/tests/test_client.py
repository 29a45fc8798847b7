"""The Python client against a real server: every dtype through every
method, checked against numpy on the same file."""

import dataclasses
import math

import ml_dtypes
import numpy as np
import pytest
import redis

from redis_mmap import KINDS, Vector, Vectors, dtype_of, kind_of

DTYPES = [np.dtype(KINDS[k]) if KINDS[k] else np.dtype(ml_dtypes.bfloat16) for k in KINDS]


def random_values(dtype, n, seed=1):
    """Any bit patterns of the dtype: NaN payloads, infinities, subnormals."""
    rng = np.random.default_rng(seed)
    return np.frombuffer(rng.bytes(n * dtype.itemsize), dtype=dtype).copy()


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: kind_of(d))
def test_every_dtype_reads_and_writes_bit_for_bit(server, r, dtype):
    values = random_values(dtype, 257)
    values.tofile(server.data / "v.bin")
    v = Vectors(r).bind("v", "v.bin", dtype=dtype)
    assert isinstance(v, Vector) and v.kind == kind_of(dtype) and v.dtype == dtype
    assert len(v) == 257
    assert same_bits(v[:], values)
    assert same_bits(v.read(), values) and same_bits(np.asarray(v), values)
    for i in [0, 1, 128, 256, -1, -257]:
        got = v[i]
        assert isinstance(got, np.generic) and got.dtype == dtype
        assert got.tobytes() == values[i].tobytes()
    for bad in [257, -258, 10**12]:
        with pytest.raises(IndexError):
            v[bad]
    with pytest.raises(TypeError):
        v[1.5]
    for s in [
        slice(None),
        slice(3, 9),
        slice(-5, None),
        slice(None, -250),
        slice(-3, -1),
        slice(250, 400),
        slice(9, 3),
        slice(0, 0),
        slice(-1000, 5),
        slice(None, None, 3),
        slice(200, 10, -7),
        slice(None, None, -1),
        slice(5, 5, 2),
    ]:
        assert same_bits(v[s], values[s]), s

    # Slice assignment and append: the bytes numpy would hold.
    model = values.copy()
    new = random_values(dtype, 10, seed=2)
    v[5:15] = new
    model[5:15] = new
    v[-1] = new[0]
    model[-1] = new[0]
    v[20:23] = new[0]  # a scalar fills the slice
    model[20:23] = new[0]
    v[30:30] = []
    assert same_bits(np.fromfile(server.data / "v.bin", dtype=dtype), model)
    with pytest.raises(ValueError):
        v[0:3] = new[:2]
    with pytest.raises(ValueError):
        v[0:6:2] = new[:3]
    with pytest.raises(IndexError):
        v[257] = new[0]
    more = random_values(dtype, 1000, seed=3)
    assert v.append(more) == 1257
    assert v.append(more[:0]) == 1257
    model = np.concatenate([model, more])
    assert same_bits(np.fromfile(server.data / "v.bin", dtype=dtype), model)
    assert same_bits(v[:], model)

    # pop gives back the last value's exact bits.
    last = v.pop()
    assert last.tobytes() == model[-1].tobytes() and last.dtype == dtype
    assert len(v) == 1256
    assert v.resize(1300) == 1256
    assert same_bits(v[1256:], np.zeros(44, dtype=dtype))
    info = v.info()
    assert (info["kind"], info["length"], info["element-size"]) == (kind_of(dtype), 1300, dtype.itemsize)
    assert info["read-only"] is False and info["path"] == "v.bin"
    assert v.clear() == 1300
    assert len(v) == 0 and v.pop() is None and len(v[:]) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: kind_of(d))
def test_stats_match_numpy_in_every_dtype(server, r, dtype):
    rng = np.random.default_rng(5)
    floating = "float" in kind_of(dtype)
    if not floating:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=50_000, dtype=dtype, endpoint=True)
    else:
        values = (rng.standard_normal(50_000) * 100).astype(dtype)
        values[::37] = np.nan
    values.tofile(server.data / "s.bin")
    v = Vectors(r).bind("s", "s.bin", dtype=dtype)
    # Python's slice ends, as read() takes them.
    for start, stop in [(None, None), (10, 21), (-100, None), (-100, -1), (7, 8), (5, 2), (None, 30)]:
        part = values[start:stop]
        wide = part.astype(np.float64) if floating else part.astype(object)
        kept = wide[~np.isnan(part.astype(np.float64))]
        got = v.stats(start, stop)
        assert [f.name for f in dataclasses.fields(got)] == ["count", "nan", "sum", "min", "max", "mean", "std"]
        assert got.count == len(kept) and got.nan == len(part) - len(kept)
        if len(kept) == 0:
            assert got.sum == 0 and got.min is None and got.std is None
            continue
        exact = math.fsum(kept) if floating else float(sum(int(x) for x in kept))
        assert got.sum == pytest.approx(exact, rel=1e-12, abs=1e-9)
        assert got.min == kept.min() and got.max == kept.max()
        assert got.min.dtype == dtype
        k64 = kept.astype(np.float64)
        assert got.mean == pytest.approx(exact / len(kept), rel=1e-12, abs=1e-12)
        assert got.std == pytest.approx(np.std(k64), rel=1e-9, abs=1e-9)


def test_stats_of_ten_million_values_match_numpy_to_1e12(server, r):
    rng = np.random.default_rng(9)
    values = rng.random(10_000_000) * 2 - 0.25
    values[::1001] = np.nan
    values.tofile(server.data / "big.f64")
    v = Vectors(r).bind("big", "big.f64")
    got = v.stats()
    kept = values[~np.isnan(values)]
    assert got.count == len(kept) and got.nan == len(values) - len(kept)
    assert abs(got.sum - np.sum(kept)) <= 1e-12 * abs(np.sum(kept))
    assert abs(got.sum - math.fsum(kept)) <= 1e-13 * abs(math.fsum(kept))
    assert got.min == np.nanmin(values) and got.max == np.nanmax(values)
    assert abs(got.mean - np.nanmean(values)) <= 1e-12 * abs(np.nanmean(values))
    assert abs(got.std - np.nanstd(values)) <= 1e-12 * np.nanstd(values)
    # float32 is summed in double precision: numpy's float64 sum of it.
    single = values.astype(np.float32)
    single.tofile(server.data / "big.f32")
    got = Vectors(r).bind("single", "big.f32", dtype="float32").stats()
    wide = single[~np.isnan(single)].astype(np.float64)
    assert abs(got.sum - np.sum(wide)) <= 1e-12 * abs(np.sum(wide))


def test_dtypes_map_to_kinds_and_back():
    for kind in KINDS:
        assert kind_of(dtype_of(kind)) == kind
        assert kind_of(kind) == kind and kind_of(kind.upper()) == kind
    assert dtype_of("double") == np.dtype("<f8") and dtype_of("float") == np.dtype("<f4")
    assert kind_of(">f8") == "float64" and kind_of(np.int16) == "int16" and kind_of(ml_dtypes.bfloat16) == "bfloat16"
    for bad in [np.complex128, "U4", np.bool_, object]:
        with pytest.raises(TypeError):
            kind_of(bad)
    with pytest.raises(ValueError):
        dtype_of("int128")


def test_a_big_endian_array_is_written_little_endian(server, r):
    v = Vectors(r).bind("b", "b.i32", dtype=">i4", create=True)
    assert v.dtype == np.dtype("<i4")
    v.append(np.array([1, -2, 3], dtype=">i4"))
    assert (server.data / "b.i32").read_bytes() == np.array([1, -2, 3], dtype="<i4").tobytes()


def test_read_only_vectors_read_and_refuse_writes(server, r):
    values = np.arange(10, dtype=np.uint16)
    values.tofile(server.data / "ro.u16")
    v = Vectors(r).bind("ro", "ro.u16", dtype=np.uint16, readonly=True)
    assert v.info()["read-only"] is True
    assert same_bits(v[2:5], values[2:5]) and v.stats().sum == 45
    for write in [lambda: v.append([1]), lambda: v.__setitem__(slice(0, 2), [5, 6]), v.pop, v.clear]:
        with pytest.raises(redis.ResponseError, match="read-only"):
            write()
    assert same_bits(np.fromfile(server.data / "ro.u16", dtype=np.uint16), values)
    # A missing file is not created read-only.
    with pytest.raises(redis.ResponseError):
        Vectors(r).bind("gone", "gone.u16", dtype=np.uint16, readonly=True)
    assert not (server.data / "gone.u16").exists()


def test_a_decoding_client_and_an_existing_key(server):
    r = server.client(decode_responses=True)
    v = Vectors(r).bind("d", "d.f64", create=True)
    v.append([0.5, 1.5, float("nan")])
    assert np.isnan(v[2]) and v[0] == 0.5
    same = Vectors(r).get("d")
    assert same.kind == "float64" and same_bits(same[:], v[:])
    assert same.stats().nan == 1
    with pytest.raises(redis.ResponseError, match="no such key"):
        Vectors(r).get("nothing")
    with pytest.raises(redis.ResponseError, match="is bound as float64"):
        Vectors(r).bind("d", "d.f64", dtype=np.float32)
