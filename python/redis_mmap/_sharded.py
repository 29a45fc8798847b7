"""One array larger than one node: a sharded vector over a Redis Cluster.

The array is cut into shards of ``shard_len`` values, each its own bound
key (``<name>/<i>``) and file (``<name>.<i>.<kind>``) on the master that
owns the key's slot: the shards spread over the cluster's masters, and each
node's disk and bandwidth carry only its share. A small hash
(``<name>/meta``) records the kind and the shard length. Reads and writes
split at shard edges and go to every shard's node in pipelines; appends fill
the last shard, then open the next. Statistics merge the shards'
``MMAP.STATS`` exactly as the module merges its blocks: compensated sums and
Chan's formula for the spread. A shard key moves with its data when its
slot is resharded, and the client follows it (``MOVED``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from ._client import CHUNK_BYTES, Call, Stats, _fill, _index, _indices_of, _number, _options, _pairs, _text, _within
from ._kinds import dtype_of, kind_of
from ._vectors import Vector

#: Values per shard by default: 8 MB of float64.
SHARD_LEN = 1_000_000


class ShardedVector:
    """One logical vector stored as many bound keys across a cluster."""

    def __init__(self, client: Any, name: str, kind: str, shard_len: int, chunk_bytes: int = CHUNK_BYTES):
        self.client = client
        self.name = name
        self.kind = kind_of(kind)
        self.dtype: np.dtype[Any] = dtype_of(self.kind)
        self.shard_len = int(shard_len)
        self.chunk_bytes = chunk_bytes

    @classmethod
    def create(
        cls, client: Any, name: str, dtype: Any = "float64", shard_len: int = SHARD_LEN, chunk_bytes: int = CHUNK_BYTES
    ) -> "ShardedVector":
        """A new, empty sharded vector (refused if ``name`` has one)."""
        kind = kind_of(dtype)
        if not client.hsetnx(f"{name}/meta", "kind", kind):
            raise ValueError(f"a sharded vector named {name!r} exists already")
        client.hset(f"{name}/meta", "shard_len", int(shard_len))
        return cls(client, name, kind, shard_len, chunk_bytes)

    @classmethod
    def open(cls, client: Any, name: str, chunk_bytes: int = CHUNK_BYTES) -> "ShardedVector":
        """An existing sharded vector."""
        meta = {_text(k): _text(v) for k, v in client.hgetall(f"{name}/meta").items()}
        if "kind" not in meta:
            raise KeyError(f"no sharded vector named {name!r}")
        return cls(client, name, meta["kind"], int(meta["shard_len"]), chunk_bytes)

    def __repr__(self) -> str:
        return f"ShardedVector({self.name!r}, kind={self.kind}, shard_len={self.shard_len})"

    # --- shards ----------------------------------------------------------

    def key(self, i: int) -> str:
        return f"{self.name}/{i}"

    def _shard(self, i: int) -> Vector:
        return Vector(self.client, self.key(i), self.kind, self.chunk_bytes)

    def _shards(self) -> int:
        return int(self.client.hget(f"{self.name}/meta", "shards") or 0)

    def _bind(self, i: int) -> Vector:
        path = f"{self.name}.{i}.{self.kind}"
        self.client.execute_command("MMAP", self.key(i), path, "TYPE", self.kind)
        self.client.hset(f"{self.name}/meta", "shards", max(self._shards(), i + 1))
        return self._shard(i)

    def __len__(self) -> int:
        n = self._shards()
        if n == 0:
            return 0
        return (n - 1) * self.shard_len + len(self._shard(n - 1))

    def _pieces(self, lo: int, hi: int) -> List[Tuple[int, int, int, int]]:
        """The shards a half-open span crosses: (shard, start, stop, offset in the span)."""
        out = []
        at = lo
        while at < hi:
            s, off = divmod(at, self.shard_len)
            end = min(hi, (s + 1) * self.shard_len)
            out.append((s, off, off + end - at, at - lo))
            at = end
        return out

    def _pipeline(self, calls: List[Tuple[Any, ...]], binary: bool = False) -> List[Any]:
        options: Dict[str, Any] = _options(Call((), binary))
        with self.client.pipeline(transaction=False) as p:
            for c in calls:
                p.execute_command(*c, **options)
            result: List[Any] = p.execute()
            return result

    # --- reads and writes -----------------------------------------------

    def read(self, start: Optional[int] = None, stop: Optional[int] = None) -> npt.NDArray[Any]:
        """Values ``start`` to ``stop`` (Python's slice ends), from every
        shard they cross, in pipelines of ``chunk_bytes`` slices."""
        lo, hi, _ = slice(start, stop).indices(len(self))
        out = np.empty(max(hi - lo, 0), dtype=self.dtype)
        per = max(1, self.chunk_bytes // self.dtype.itemsize)
        calls: List[Tuple[Any, ...]] = []
        places: List[int] = []
        for s, a, b, at in self._pieces(lo, hi):
            for x in range(a, b, per):
                calls.append(("MMAP.RANGE", self.key(s), x, min(x + per, b) - 1, "BLOB"))
                places.append(at + x - a)
        for first in range(0, len(calls), 16):
            for raw, at in zip(self._pipeline(calls[first : first + 16], True), places[first : first + 16]):
                part = np.frombuffer(raw, dtype=self.dtype)
                out[at : at + len(part)] = part
        return out

    def write(self, start: int, values: Any) -> int:
        """Writes values from index ``start`` (all within the vector)."""
        data = np.ascontiguousarray(np.asarray(values, dtype=self.dtype).reshape(-1))
        lo = int(start)
        if lo < 0 or lo + len(data) > len(self):
            raise IndexError(f"values {lo}..{lo + len(data)} are not all within {self.name!r}")
        per = max(1, self.chunk_bytes // self.dtype.itemsize)
        calls: List[Tuple[Any, ...]] = []
        for s, a, b, at in self._pieces(lo, lo + len(data)):
            for x in range(a, b, per):
                y = min(x + per, b)
                calls.append(("MMAP.SETRANGE", self.key(s), x, data[at + x - a : at + y - a].view(np.uint8).data))
        return sum(int(n) for first in range(0, len(calls), 16) for n in self._pipeline(calls[first : first + 16]))

    def append(self, values: Any) -> int:
        """Appends values, filling the last shard and opening new ones;
        returns the new length."""
        data = np.ascontiguousarray(np.asarray(values, dtype=self.dtype).reshape(-1))
        n = len(self)
        at = 0
        while at < len(data):
            s, off = divmod(n, self.shard_len)
            shard = self._shard(s) if s < self._shards() else self._bind(s)
            take = min(len(data) - at, self.shard_len - off)
            shard.append(data[at : at + take])
            at += take
            n += take
        return n

    def _positions(self, item: Any) -> List[int]:
        """The positions a step slice, an index array or a mask selects."""
        n = len(self)
        if isinstance(item, slice):
            return list(range(*item.indices(n)))
        return _within(_indices_of(item, n), n, self.name)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice) and item.step in (None, 1):
            return self.read(item.start, item.stop)
        if isinstance(item, (slice, list, tuple, np.ndarray)):
            return self._gather(self._positions(item))
        j = _within([_index(item)], len(self), self.name)[0]
        return self.read(j, j + 1)[0]

    def _gather(self, idx: List[int]) -> npt.NDArray[Any]:
        # Each index's value, as raw bytes, in one pipeline.
        calls = [("MMAP.RANGE", self.key(i // self.shard_len), i % self.shard_len, i % self.shard_len, "BLOB") for i in idx]
        raws = self._pipeline(calls, True) if calls else []
        return np.frombuffer(b"".join(raws), dtype=self.dtype).copy()

    def __setitem__(self, item: Any, values: Any) -> None:
        if isinstance(item, slice) and item.step in (None, 1):
            lo, hi, _ = item.indices(len(self))
            self.write(lo, _fill(values, self.dtype, max(hi - lo, 0)))
            return
        idx = self._positions(item) if isinstance(item, (slice, list, tuple, np.ndarray)) else None
        if idx is None:
            idx = _within([_index(item)], len(self), self.name)
        data = _fill(values, self.dtype, len(idx))
        calls: List[Tuple[Any, ...]] = [
            ("MMAP.SETRANGE", self.key(i // self.shard_len), i % self.shard_len, data[k : k + 1].tobytes())
            for k, i in enumerate(idx)
        ]
        if calls:
            self._pipeline(calls)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> npt.NDArray[Any]:
        if copy is False:
            raise ValueError("a sharded vector's values come over the network: reading them always makes a copy")
        a = self.read()
        return a if dtype is None else a.astype(dtype)

    # --- statistics -----------------------------------------------------

    def stats(self, start: Optional[int] = None, stop: Optional[int] = None) -> Stats:
        """``MMAP.STATS`` of every shard the range crosses, merged: counts
        added, sums added with compensation (Neumaier), spreads merged with
        Chan's formula, as the module merges its blocks."""
        lo, hi, _ = slice(start, stop).indices(len(self))
        calls = [("MMAP.STATS", self.key(s), a, b - 1) for s, a, b, _ in self._pieces(lo, hi)]
        count = nan = 0
        total = comp = plain = 0.0
        mean = m2 = 0.0
        lo_v: Optional[Union[float, int]] = None
        hi_v: Optional[Union[float, int]] = None
        floating = self.kind.startswith(("float", "bfloat"))
        for reply in self._pipeline(calls) if calls else []:
            part = _pairs(reply)
            n = int(part["count"])
            nan += int(part["nan"])
            if n == 0:
                continue
            x = float(_number(part["sum"], True))
            t = total + x
            comp += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
            total, plain = t, plain + x
            pm = float(_number(part["mean"], True))
            ps = float(_number(part["std"], True))
            na, nb = float(count), float(n)
            delta = pm - mean
            mean += delta * (nb / (na + nb))
            m2 += ps * ps * nb + delta * delta * (na * nb / (na + nb))
            count += n
            for v, is_min in ((part["min"], True), (part["max"], False)):
                f = _number(v, floating)
                if is_min:
                    lo_v = f if lo_v is None or f < lo_v else lo_v
                else:
                    hi_v = f if hi_v is None or f > hi_v else hi_v
        if count == 0:
            return Stats(0, nan, 0.0, None, None, None, None)
        s = total + comp if math.isfinite(total + comp) else plain
        scalar = self.dtype.type
        return Stats(count, nan, s, scalar(lo_v), scalar(hi_v), s / count, math.sqrt(m2 / count))

    def delete(self) -> None:
        """Deletes every shard key and the metadata; the files stay, as
        ``DEL`` leaves them."""
        for i in range(self._shards()):
            self.client.delete(self.key(i))
        self.client.delete(f"{self.name}/meta")
