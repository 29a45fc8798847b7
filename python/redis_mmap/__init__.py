"""numpy arrays over redis-mmap vectors.

A redis-mmap key is bound to a file of raw little-endian numbers. This
package reads and writes such a key as a numpy array through one redis-py
client: slices travel as raw bytes (``MMAP.RANGE ... BLOB``,
``MMAP.SETRANGE``, ``MMAP.APPEND``), never as text.

    >>> v = Vectors(redis.Redis()).bind("t", "t.f64", dtype="float64", create=True)
    >>> v.append([1.5, 2.5]); v[:]
    array([1.5, 2.5])
"""

from __future__ import annotations

import numpy as np

try:  # redis-py's option to hand a reply back as bytes on a decoding client
    from redis.client import NEVER_DECODE
except ImportError:  # pragma: no cover - older redis-py
    NEVER_DECODE = "NEVER_DECODE"

__all__ = ["Vectors", "Vector", "KINDS", "kind_of", "dtype_of"]
__version__ = "0.1.0"

#: The module's element kinds and the numpy dtypes that hold them.
KINDS = {
    "int8": "<i1",
    "uint8": "<u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
    "uint64": "<u8",
    "float16": "<f2",
    "bfloat16": None,  # ml_dtypes.bfloat16, when installed
    "float32": "<f4",
    "float64": "<f8",
}


def _bfloat16():
    try:
        import ml_dtypes
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise TypeError("bfloat16 needs the ml_dtypes package (pip install ml_dtypes)") from e
    return np.dtype(ml_dtypes.bfloat16)


def dtype_of(kind: str) -> np.dtype:
    """The little-endian numpy dtype of a module kind (``float``/``double``
    are float32/float64, as in ``MMAP ... TYPE``)."""
    name = {"float": "float32", "double": "float64"}.get(kind.lower(), kind.lower())
    if name not in KINDS:
        raise ValueError(f"unknown element kind {kind!r} (known: {', '.join(KINDS)})")
    return _bfloat16() if name == "bfloat16" else np.dtype(KINDS[name])


def kind_of(dtype) -> str:
    """The module kind that holds a dtype (any byte order), or a kind name
    given as is."""
    if isinstance(dtype, str) and dtype.lower() in (*KINDS, "float", "double"):
        return {"float": "float32", "double": "float64"}.get(dtype.lower(), dtype.lower())
    dt = np.dtype(dtype)
    if dt.name == "bfloat16":
        return "bfloat16"
    if dt.kind in "iuf" and dt.name in KINDS:
        return dt.name
    raise TypeError(f"no element kind holds dtype {dt} (kinds: {', '.join(KINDS)})")


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else x


def _pairs(reply) -> dict:
    """A map reply (RESP3) or a flat field/value array (RESP2) as a dict."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


class Vectors:
    """The redis-mmap vectors reached through one redis-py client."""

    def __init__(self, client):
        self.client = client

    def bind(self, key, path, dtype="float64", readonly=False, create=False) -> "Vector":
        """``MMAP key path TYPE kind [READONLY] [CREATE]``: binds ``key`` to
        the file at ``path`` (relative to the server's ``mmap.dir``) and
        returns it as a :class:`Vector`. A missing file is created empty
        unless ``readonly`` is set without ``create``."""
        kind = kind_of(dtype)
        args = ["MMAP", key, path, "TYPE", kind]
        if readonly:
            args.append("READONLY")
        if create:
            args.append("CREATE")
        self.client.execute_command(*args)
        return Vector(self.client, key, kind)

    def get(self, key) -> "Vector":
        """The vector an already bound key holds, its kind read from ``MMAP.INFO``."""
        info = _pairs(self.client.execute_command("MMAP.INFO", key))
        return Vector(self.client, key, _text(info["kind"]))


class Vector:
    """One bound key as a numpy-like array: ``len(v)``, ``v[i]``, ``v[a:b]``
    and slice assignment, each one round trip. Arrays read are read-only
    views of the reply's bytes; ``.copy()`` one to change it."""

    def __init__(self, client, key, kind):
        self.client = client
        self.key = key
        self.kind = kind_of(kind)
        self.dtype = dtype_of(self.kind)

    def __repr__(self):
        return f"Vector({self.key!r}, kind={self.kind})"

    def _call(self, *args):
        return self.client.execute_command(*args)

    def _blob(self, start, stop) -> np.ndarray:
        raw = self.client.execute_command("MMAP.RANGE", self.key, start, stop, "BLOB", **{NEVER_DECODE: True})
        return np.frombuffer(raw, dtype=self.dtype)

    def __len__(self):
        return int(self._call("MMAP.COUNT", self.key))

    def __getitem__(self, item):
        if isinstance(item, slice):
            if item.step in (None, 1):
                # Python's ends map onto MMAP.RANGE's (inclusive, negative
                # from the end, clipped) without asking for the length.
                if item.stop == 0:
                    return np.empty(0, dtype=self.dtype)
                start = 0 if item.start is None else _index(item.start)
                stop = -1 if item.stop is None else _index(item.stop) - 1
                return self._blob(start, stop)
            picked = range(*item.indices(len(self)))
            if len(picked) == 0:
                return np.empty(0, dtype=self.dtype)
            lo = min(picked[0], picked[-1])
            got = self._blob(lo, max(picked[0], picked[-1]))
            return got[picked[0] - lo :: picked.step]
        i = _index(item)
        got = self._blob(i, i)
        if len(got) == 0:
            raise IndexError(f"index {i} is out of range for {self.key!r}")
        return got[0]

    def __setitem__(self, item, values):
        n = len(self)
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step != 1:
                raise ValueError("slice assignment takes a step of 1")
            count = max(stop - start, 0)
        else:
            start = _index(item)
            if start < 0:
                start += n
            if not 0 <= start < n:
                raise IndexError(f"index {item} is out of range for {self.key!r}")
            count = 1
        data = np.asarray(values, dtype=self.dtype)
        if data.ndim == 0:
            data = np.full(count, data, dtype=self.dtype)
        if data.ndim != 1 or len(data) != count:
            raise ValueError(f"cannot assign {data.shape} values to {count} places")
        if count:
            self._call("MMAP.SETRANGE", self.key, start, data.tobytes())

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a if dtype is None else a.astype(dtype)

    def __iter__(self):
        return iter(self[:])

    def read(self) -> np.ndarray:
        """Every value, as a read-only array."""
        return self[:]

    def append(self, values) -> int:
        """``MMAP.APPEND``: appends the values (converted to the kind) and
        returns the new length."""
        data = np.asarray(values, dtype=self.dtype).reshape(-1)
        return int(self._call("MMAP.APPEND", self.key, data.tobytes()))

    def stats(self, start=None, stop=None) -> dict:
        """``MMAP.STATS``: count, nan, sum, min, max, mean and std of the
        values from ``start`` to ``stop`` (inclusive, as MMAP.RANGE counts
        them; every value when not given). min and max are scalars of the
        dtype; they and mean and std are None when nothing is counted."""
        args = ["MMAP.STATS", self.key]
        if (start is None) != (stop is None):
            raise ValueError("stats takes start and stop together, or neither")
        if start is not None:
            args += [int(start), int(stop)]
        out = _pairs(self._call(*args))
        scalar = self.dtype.type
        result = {"count": int(out["count"]), "nan": int(out["nan"]), "sum": float(out["sum"])}
        for f in ("min", "max"):
            v = out[f]
            result[f] = None if v is None else scalar(_number(v, self.kind))
        for f in ("mean", "std"):
            result[f] = None if out[f] is None else float(out[f])
        return result

    def info(self) -> dict:
        """``MMAP.INFO`` as a dict: path, kind, element-size, length, bytes,
        read-only, state, cause, reserved-bytes, lock."""
        out = _pairs(self._call("MMAP.INFO", self.key))
        result = {k: _text(v) for k, v in out.items()}
        result["read-only"] = bool(out["read-only"])  # 1/0 under RESP2
        return result

    def pop(self):
        """Removes and returns the last value (bit for bit, NaN payloads
        included), or None when the vector is empty."""
        with self.client.pipeline(transaction=True) as p:
            p.execute_command("MMAP.RANGE", self.key, -1, -1, "BLOB", **{NEVER_DECODE: True})
            p.execute_command("MMAP.POP", self.key)
            raw, popped = p.execute()
        if popped is None:
            return None
        return np.frombuffer(raw, dtype=self.dtype)[0]

    def clear(self) -> int:
        """``MMAP.CLEAR``: empties the file; returns how many values it held."""
        return int(self._call("MMAP.CLEAR", self.key))

    def resize(self, n) -> int:
        """``MMAP.RESIZE``: cuts the vector to ``n`` values or extends it with
        zeros; returns the length before."""
        return int(self._call("MMAP.RESIZE", self.key, int(n)))


def _index(item) -> int:
    if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
        raise TypeError(f"vector indices are integers or slices, not {type(item).__name__}")
    return int(item)


def _number(v, kind):
    """A min or max reply (an integer, a double, or their text) as a Python number."""
    if isinstance(v, (int, float)):
        return v
    text = _text(v)
    return float(text) if kind.startswith(("float", "bfloat")) else int(text)
