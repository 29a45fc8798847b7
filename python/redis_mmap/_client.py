"""The commands, shared by the synchronous and the asyncio client.

Every operation is written once, as a *plan*: a generator that yields the
commands it needs (one, or a batch to pipeline) and gets their replies
back. ``Vector`` runs plans on a ``redis.Redis`` or ``RedisCluster``;
``AsyncVector`` awaits them on their asyncio twins. Large transfers are cut
into slices of ``chunk_bytes`` and pipelined a few at a time, so that
neither the server nor the client holds a whole large vector in one buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Generator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import numpy.typing as npt

from ._kinds import dtype_of, kind_of

try:  # redis-py's option to hand a reply back as bytes on a decoding client
    from redis.client import NEVER_DECODE
except ImportError:  # pragma: no cover - older redis-py
    NEVER_DECODE = "NEVER_DECODE"

T = TypeVar("T")

#: Bytes per slice of a large read or write: 8 MiB.
CHUNK_BYTES = 8 << 20
#: Slices pipelined at a time.
DEPTH = 4


class Call(NamedTuple):
    """One command; ``binary`` asks for its reply as bytes."""

    args: Tuple[Any, ...]
    binary: bool = False


class Batch(NamedTuple):
    """Commands sent in one round trip (a pipeline); ``atomic`` makes them
    one transaction (MULTI/EXEC), whose replies are the commands' own."""

    calls: List[Call]
    atomic: bool = False


Step = Union[Call, Batch]
Plan = Generator[Step, Any, T]


@dataclass(frozen=True)
class Stats:
    """``MMAP.STATS`` of a range: ``min`` and ``max`` are scalars of the
    vector's dtype; they, ``mean`` and ``std`` are None when no value is
    counted (every value NaN, or none)."""

    count: int
    nan: int
    sum: float
    min: Optional[np.generic]
    max: Optional[np.generic]
    mean: Optional[float]
    std: Optional[float]


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _pairs(reply: Any) -> Dict[str, Any]:
    """A map reply (RESP3) or a flat field/value array (RESP2) as a dict."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


def _index(item: Any) -> int:
    if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
        raise TypeError(f"vector indices are integers, slices or index arrays, not {type(item).__name__}")
    return int(item)


def _number(v: Any, floating: bool) -> Union[int, float]:
    """A value reply (an integer, a double, or their text) as a Python number.
    A NaN's payload text (``nan(0x3)``) reads as NaN."""
    if isinstance(v, (int, float)):
        return v
    text = _text(v)
    if not floating:
        return int(text)
    if "nan" in text.lower():
        return math.nan
    return float(text)


def _fill(values: Any, dtype: np.dtype[Any], count: int) -> npt.NDArray[Any]:
    """``count`` values of ``dtype`` for an assignment: a scalar fills them;
    any other count is a ``ValueError``."""
    data = np.asarray(values, dtype=dtype)
    if data.ndim == 0:
        data = np.full(count, data, dtype=dtype)
    if data.shape != (count,):
        raise ValueError(f"cannot assign {data.shape} values to {count} places")
    return data


def _is_mask(item: Any) -> bool:
    return isinstance(item, (list, tuple, np.ndarray)) and np.asarray(item).dtype == np.bool_


def _indices_of(item: Any, n: Optional[int] = None) -> List[int]:
    """An integer index array, or a boolean mask over ``n`` values, as a
    list of indices (negative ones left as they are)."""
    arr = np.asarray(item)
    if arr.dtype == np.bool_:
        if arr.shape != (n,):
            raise IndexError(f"a boolean index of shape {arr.shape} for {n} values")
        arr = np.flatnonzero(arr)
    return [_index(i) for i in arr.reshape(-1).tolist()]


def _within(idx: Sequence[int], n: int, name: Any) -> List[int]:
    """Indices (negative from the end) as positions below ``n``; an index
    outside is an ``IndexError`` that names it."""
    out = [i + n if i < 0 else i for i in idx]
    for i, j in zip(idx, out):
        if not 0 <= j < n:
            raise IndexError(f"index {i} is out of range for {name!r}")
    return out


def _word(x: Any, floating: bool) -> str:
    """A value as the text ``MMAP.SET`` reads: exact for every kind."""
    if floating:
        f = float(x)
        return "nan" if math.isnan(f) else repr(f)
    return str(int(x))


class Commands:
    """The plans of one bound key. Subclasses run them."""

    def __init__(self, client: Any, key: str, kind: str, chunk_bytes: int = CHUNK_BYTES, progress: bool = False):
        self.client = client
        self.key = key
        self.kind = kind_of(kind)
        self.dtype: np.dtype[Any] = dtype_of(self.kind)
        self.chunk_bytes = max(int(chunk_bytes), self.dtype.itemsize)
        self.progress = progress
        self._floating = self.kind.startswith(("float", "bfloat"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r}, kind={self.kind})"

    # --- plans ---------------------------------------------------------

    def _count(self) -> Plan[int]:
        n = yield Call(("MMAP.COUNT", self.key))
        return int(n)

    def _span(self, start: Optional[int], stop: Optional[int]) -> Plan[Tuple[int, int]]:
        """Python's slice ends (``stop`` excluded, negative from the end,
        clipped) as a half-open span of the vector; asks for the length
        only when an end needs it."""
        if start is not None and stop is not None and start >= 0 and stop >= 0:
            return start, max(stop, start)
        n = yield from self._count()
        lo, hi, _ = slice(start, stop).indices(n)
        return lo, max(hi, lo)

    def _read(self, start: Optional[int], stop: Optional[int]) -> Plan[npt.NDArray[Any]]:
        lo, hi = yield from self._span(start, stop)
        per = max(1, self.chunk_bytes // self.dtype.itemsize)
        if hi <= lo:
            return np.empty(0, dtype=self.dtype)
        if hi - lo <= per:
            raw = yield Call(("MMAP.RANGE", self.key, lo, hi - 1, "BLOB"), True)
            return np.frombuffer(raw, dtype=self.dtype)
        out = np.empty(hi - lo, dtype=self.dtype)
        got = lo
        bar = self._bar(hi - lo)
        for first in range(lo, hi, per * DEPTH):
            batch = [
                Call(("MMAP.RANGE", self.key, at, min(at + per, hi) - 1, "BLOB"), True)
                for at in range(first, min(first + per * DEPTH, hi), per)
            ]
            replies = yield Batch(batch)
            for raw in replies:
                part = np.frombuffer(raw, dtype=self.dtype)
                out[got - lo : got - lo + len(part)] = part
                got += len(part)
                _tick(bar, len(part))
            if got < min(first + per * DEPTH, hi):
                break  # the vector ended sooner: another client shrank it
        _close(bar)
        out = out[: got - lo]
        out.flags.writeable = False
        return out

    def _bytes_of(self, values: Any) -> memoryview:
        """The values as the file holds them: the caller's own buffer when
        it already is (contiguous values of this kind, or raw bytes), else
        a converted copy."""
        if not isinstance(values, np.ndarray):
            try:
                m = memoryview(values)
            except TypeError:
                m = None
            if m is not None and m.c_contiguous and m.format in ("B", "b", "c"):
                # Raw bytes: the elements as the file holds them.
                if m.nbytes % self.dtype.itemsize:
                    raise ValueError(f"{m.nbytes} bytes are not a whole number of {self.kind} values")
                return m.cast("B")
            if m is not None:
                values = np.asarray(m)  # a typed buffer (array.array, ...): a view
        if isinstance(values, np.ndarray) and values.dtype == self.dtype and values.flags.c_contiguous:
            # Viewed as bytes (a buffer cannot carry every dtype: bfloat16).
            return _bytes_view(values)
        return _bytes_view(np.ascontiguousarray(np.asarray(values, dtype=self.dtype).reshape(-1)))

    def _chunks(self, data: memoryview) -> List[memoryview]:
        per = max(1, self.chunk_bytes // self.dtype.itemsize) * self.dtype.itemsize
        return [data[at : at + per] for at in range(0, len(data), per)]

    def _write(self, start: int, values: Any) -> Plan[int]:
        data = self._bytes_of(values)
        size = self.dtype.itemsize
        pieces = self._chunks(data)
        bar = self._bar(len(data) // size)
        at = start
        written = 0
        for first in range(0, len(pieces), DEPTH):
            batch = []
            for p in pieces[first : first + DEPTH]:
                batch.append(Call(("MMAP.SETRANGE", self.key, at, p)))
                at += len(p) // size
            replies = yield Batch(batch)
            for r in replies:
                written += int(r)
                _tick(bar, int(r))
        _close(bar)
        return written

    def _append(self, values: Any) -> Plan[int]:
        data = self._bytes_of(values)
        if len(data) == 0:
            return (yield from self._count())
        pieces = self._chunks(data)
        if len(pieces) == 1:
            n = yield Call(("MMAP.APPEND", self.key, pieces[0]))
            return int(n)
        bar = self._bar(len(data) // self.dtype.itemsize)
        n = 0
        for first in range(0, len(pieces), DEPTH):
            replies = yield Batch([Call(("MMAP.APPEND", self.key, p)) for p in pieces[first : first + DEPTH]])
            n = int(replies[-1])
            for p in pieces[first : first + DEPTH]:
                _tick(bar, len(p) // self.dtype.itemsize)
        _close(bar)
        return n

    def _gather(self, indices: Sequence[int]) -> Plan[npt.NDArray[Any]]:
        """``MMAP.MGET``: the values at any indices (negative from the end)."""
        idx = [int(i) for i in indices]
        if any(i < 0 for i in idx):
            n = yield from self._count()
            idx = [i + n if i < 0 else i for i in idx]
        if not idx:
            return np.empty(0, dtype=self.dtype)
        reply = yield Call(("MMAP.MGET", self.key, *idx))
        if any(v is None for v in reply):
            bad = idx[[v is None for v in reply].index(True)]
            raise IndexError(f"index {bad} is out of range for {self.key!r}")
        wide = np.array([_number(v, self._floating) for v in reply], dtype=np.float64 if self._floating else object)
        return wide.astype(self.dtype)

    def _scatter(self, indices: Sequence[int], values: Any) -> Plan[int]:
        """``MMAP.SET`` of each index (negative from the end) and value."""
        n = yield from self._count()
        idx = _within([int(i) for i in indices], n, self.key)
        data = _fill(values, self.dtype, len(idx))
        if not idx:
            return 0
        words: List[Any] = []
        for i, x in zip(idx, data.astype(np.float64) if self._floating else data.tolist()):
            words += [i, _word(x, self._floating)]
        written = yield Call(("MMAP.SET", self.key, *words))
        return int(written)

    def _stats(self, start: Optional[int], stop: Optional[int]) -> Plan[Stats]:
        args: Tuple[Any, ...] = ("MMAP.STATS", self.key)
        if start is not None or stop is not None:
            lo, hi = yield from self._span(start, stop)
            if hi <= lo:
                return Stats(0, 0, 0.0, None, None, None, None)
            args += (lo, hi - 1)
        out = _pairs((yield Call(args)))
        scalar = self.dtype.type

        def extreme(v: Any) -> Optional[np.generic]:
            return None if v is None else scalar(_number(v, self._floating))

        def real(v: Any) -> Optional[float]:
            return None if v is None else float(_number(v, True))

        return Stats(
            count=int(out["count"]),
            nan=int(out["nan"]),
            sum=float(_number(out["sum"], True)),
            min=extreme(out["min"]),
            max=extreme(out["max"]),
            mean=real(out["mean"]),
            std=real(out["std"]),
        )

    def _info(self) -> Plan[Dict[str, Any]]:
        out = _pairs((yield Call(("MMAP.INFO", self.key))))
        result: Dict[str, Any] = {k: (_text(v) if isinstance(v, bytes) else v) for k, v in out.items()}
        result["read-only"] = bool(out["read-only"])  # 1 or 0 under RESP2
        return result

    def _pop(self) -> Plan[Optional[np.generic]]:
        # The last value's exact bits first, then the POP; both in one
        # round trip, as a transaction.
        raw, popped = yield Batch(
            [Call(("MMAP.RANGE", self.key, -1, -1, "BLOB"), True), Call(("MMAP.POP", self.key))], atomic=True
        )
        if popped is None:
            return None
        value: np.generic = np.frombuffer(raw, dtype=self.dtype)[0]
        return value

    def _plain(self, *args: Any) -> Plan[int]:
        n = yield Call(args)
        return int(n)

    # --- items ---------------------------------------------------------

    def _item_plan(self, item: Any) -> Plan[Any]:
        """What ``v[item]`` reads: an integer, a slice, or an integer or
        boolean index array."""
        if isinstance(item, slice):
            if item.step in (None, 1):
                return (yield from self._read(item.start, item.stop))
            n = yield from self._count()
            picked = range(*item.indices(n))
            if len(picked) == 0:
                return np.empty(0, dtype=self.dtype)
            lo = min(picked[0], picked[-1])
            got = yield from self._read(lo, max(picked[0], picked[-1]) + 1)
            return got[picked[0] - lo :: picked.step]
        if isinstance(item, (list, tuple, np.ndarray)):
            size = (yield from self._count()) if _is_mask(item) else None
            return (yield from self._gather(_indices_of(item, size)))
        i = _index(item)
        got = yield from self._read(i, i + 1 if i != -1 else None)
        if len(got) != 1:
            raise IndexError(f"index {i} is out of range for {self.key!r}")
        return got[0]

    def _set_plan(self, item: Any, values: Any) -> Plan[int]:
        if isinstance(item, slice):
            n = yield from self._count()
            start, stop, step = item.indices(n)
            if step != 1:
                raise ValueError("slice assignment takes a step of 1; use an index array")
            count = max(stop - start, 0)
            data = _fill(values, self.dtype, count)
            if count == 0:
                return 0
            return (yield from self._write(start, values if _exact(values, self.dtype, count) else data))
        if isinstance(item, (list, tuple, np.ndarray)):
            size = (yield from self._count()) if _is_mask(item) else None
            return (yield from self._scatter(_indices_of(item, size), values))
        i = _index(item)
        n = yield from self._count()
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"index {i} is out of range for {self.key!r}")
        one = np.asarray(values, dtype=self.dtype).reshape(-1)
        if one.shape != (1,):
            raise ValueError(f"cannot assign {one.shape} values to one place")
        return (yield from self._write(j, one))

    def _bar(self, total: int) -> Any:
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:  # the progress extra is not installed: no bar
            return None
        return tqdm(total=total, unit=" values", desc=str(self.key), leave=False)


def _bytes_view(a: npt.NDArray[Any]) -> memoryview:
    """A contiguous array's bytes, without a copy (a buffer cannot carry
    every dtype, bfloat16's among them, so the bytes are viewed as uint8)."""
    flat: Any = a.reshape(-1).view(np.uint8)
    return memoryview(flat)


def _exact(values: Any, dtype: np.dtype[Any], count: int) -> bool:
    """Whether ``values`` is already ``count`` contiguous values of ``dtype``."""
    return isinstance(values, np.ndarray) and values.dtype == dtype and values.shape == (count,) and values.flags.c_contiguous


def _tick(bar: Any, n: int) -> None:
    if bar is not None:
        bar.update(n)


def _close(bar: Any) -> None:
    if bar is not None:
        bar.close()


def _options(call: Call) -> Dict[str, Any]:
    return {NEVER_DECODE: True} if call.binary else {}
