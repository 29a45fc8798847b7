"""The two front ends over the shared plans: ``Vectors``/``Vector`` on
``redis.Redis`` or ``redis.cluster.RedisCluster``, and
``AsyncVectors``/``AsyncVector`` on their ``redis.asyncio`` twins."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional

import numpy as np
import numpy.typing as npt

from ._client import CHUNK_BYTES, Batch, Call, Commands, Plan, Stats, T, _options, _pairs, _text
from ._kinds import kind_of


def _bind_args(key: str, path: str, dtype: Any, readonly: bool, create: bool) -> list[Any]:
    args: list[Any] = ["MMAP", key, path, "TYPE", kind_of(dtype)]
    if readonly:
        args.append("READONLY")
    if create:
        args.append("CREATE")
    return args


class Vector(Commands):
    """One bound key as a numpy-like array: ``len(v)``, ``v[i]``, ``v[a:b]``,
    ``v[[i, j]]``, ``v[mask]``, assignment to each, ``np.asarray(v)``. Each
    is one round trip, or a few pipelined ones for a large slice. Arrays
    read are read-only views of the reply's bytes; copy one to change it."""

    def _run(self, plan: Plan[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = plan.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            reply = self._exec(step)

    def _exec(self, step: Any) -> Any:
        if isinstance(step, Call):
            return self.client.execute_command(*step.args, **_options(step))
        assert isinstance(step, Batch)
        with self.client.pipeline(transaction=step.atomic) as p:
            for c in step.calls:
                p.execute_command(*c.args, **_options(c))
            return p.execute()

    def __len__(self) -> int:
        return self._run(self._count())

    def count(self) -> int:
        """``MMAP.COUNT``: the number of values."""
        return self._run(self._count())

    def __getitem__(self, item: Any) -> Any:
        return self._run(self._item_plan(item))

    def __setitem__(self, item: Any, values: Any) -> None:
        self._run(self._set_plan(item, values))

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> npt.NDArray[Any]:
        if copy is False:
            raise ValueError("a Vector's values come over the network: reading them always makes a copy")
        a = self.read()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def __iter__(self) -> Iterator[Any]:
        return iter(self.read())

    def read(self, start: Optional[int] = None, stop: Optional[int] = None) -> npt.NDArray[Any]:
        """The values from ``start`` to ``stop`` (Python's slice ends:
        ``stop`` excluded, negative from the end; all when not given), as a
        read-only array."""
        return self._run(self._read(start, stop))

    def write(self, start: int, values: Any) -> int:
        """``MMAP.SETRANGE`` from index ``start``: any buffer of this kind's
        values (or raw bytes of them) is sent as is, without a copy; other
        values are converted. Returns how many were written."""
        return self._run(self._write(int(start), values))

    def append(self, values: Any) -> int:
        """``MMAP.APPEND``: appends the values (sent as :meth:`write` sends
        them) and returns the new length. An append larger than
        ``chunk_bytes`` goes in several commands."""
        return self._run(self._append(values))

    def stats(self, start: Optional[int] = None, stop: Optional[int] = None) -> Stats:
        """``MMAP.STATS`` of the values from ``start`` to ``stop`` (Python's
        slice ends; every value when not given)."""
        return self._run(self._stats(start, stop))

    def info(self) -> Dict[str, Any]:
        """``MMAP.INFO`` as a dict."""
        return self._run(self._info())

    def pop(self) -> Optional[np.generic]:
        """Removes and returns the last value (bit for bit, NaN payloads
        included), or None when the vector is empty."""
        return self._run(self._pop())

    def clear(self) -> int:
        """``MMAP.CLEAR``: empties the file; returns how many values it held."""
        return self._run(self._plain("MMAP.CLEAR", self.key))

    def resize(self, n: int) -> int:
        """``MMAP.RESIZE``: cuts the vector to ``n`` values or extends it
        with zeros; returns the length before."""
        return self._run(self._plain("MMAP.RESIZE", self.key, int(n)))

    def prefetch(self, start: Optional[int] = None, stop: Optional[int] = None) -> int:
        """``MMAP.PREFETCH``: has the server read the range into memory
        ahead of use; returns its bytes at once."""
        if start is None and stop is None:
            return self._run(self._plain("MMAP.PREFETCH", self.key))
        lo, hi = self._run(self._span(start, stop))
        return 0 if hi <= lo else self._run(self._plain("MMAP.PREFETCH", self.key, lo, hi - 1))


class Vectors:
    """The redis-mmap vectors reached through one redis-py client
    (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""

    def __init__(self, client: Any, chunk_bytes: int = CHUNK_BYTES, progress: bool = False):
        self.client = client
        self.chunk_bytes = chunk_bytes
        self.progress = progress

    def bind(self, key: str, path: str, dtype: Any = "float64", readonly: bool = False, create: bool = False) -> Vector:
        """``MMAP key path TYPE kind [READONLY] [CREATE]``: binds ``key`` to
        the file at ``path`` (relative to the server's ``mmap.dir``). A
        missing file is created empty unless ``readonly`` is set without
        ``create``."""
        self.client.execute_command(*_bind_args(key, path, dtype, readonly, create))
        return Vector(self.client, key, kind_of(dtype), self.chunk_bytes, self.progress)

    def get(self, key: str) -> Vector:
        """The vector an already bound key holds, its kind read from ``MMAP.INFO``."""
        info = _pairs(self.client.execute_command("MMAP.INFO", key))
        return Vector(self.client, key, _text(info["kind"]), self.chunk_bytes, self.progress)


class AsyncVector(Commands):
    """:class:`Vector` on ``redis.asyncio``: every call that makes a round
    trip is a coroutine (``await v.read(0, 10)``, ``await v[3]``,
    ``await v.count()``). The numpy protocols, which cannot wait, are the
    synchronous client's."""

    async def _run(self, plan: Plan[T]) -> T:
        reply: Any = None
        while True:
            try:
                step = plan.send(reply)
            except StopIteration as done:
                result: T = done.value
                return result
            reply = await self._exec(step)

    async def _exec(self, step: Any) -> Any:
        if isinstance(step, Call):
            return await self.client.execute_command(*step.args, **_options(step))
        assert isinstance(step, Batch)
        async with self.client.pipeline(transaction=step.atomic) as p:
            for c in step.calls:
                p.execute_command(*c.args, **_options(c))
            return await p.execute()

    async def count(self) -> int:
        return await self._run(self._count())

    def __getitem__(self, item: Any) -> Any:
        return self._run(self._item_plan(item))

    async def set(self, item: Any, values: Any) -> None:
        """``v[item] = values``, awaited."""
        await self._run(self._set_plan(item, values))

    async def read(self, start: Optional[int] = None, stop: Optional[int] = None) -> npt.NDArray[Any]:
        return await self._run(self._read(start, stop))

    async def write(self, start: int, values: Any) -> int:
        return await self._run(self._write(int(start), values))

    async def append(self, values: Any) -> int:
        return await self._run(self._append(values))

    async def stats(self, start: Optional[int] = None, stop: Optional[int] = None) -> Stats:
        return await self._run(self._stats(start, stop))

    async def info(self) -> Dict[str, Any]:
        return await self._run(self._info())

    async def pop(self) -> Optional[np.generic]:
        return await self._run(self._pop())

    async def clear(self) -> int:
        return await self._run(self._plain("MMAP.CLEAR", self.key))

    async def resize(self, n: int) -> int:
        return await self._run(self._plain("MMAP.RESIZE", self.key, int(n)))


class AsyncVectors:
    """:class:`Vectors` on ``redis.asyncio.Redis`` or ``RedisCluster``."""

    def __init__(self, client: Any, chunk_bytes: int = CHUNK_BYTES, progress: bool = False):
        self.client = client
        self.chunk_bytes = chunk_bytes
        self.progress = progress

    async def bind(
        self, key: str, path: str, dtype: Any = "float64", readonly: bool = False, create: bool = False
    ) -> AsyncVector:
        await self.client.execute_command(*_bind_args(key, path, dtype, readonly, create))
        return AsyncVector(self.client, key, kind_of(dtype), self.chunk_bytes, self.progress)

    async def get(self, key: str) -> AsyncVector:
        info = _pairs(await self.client.execute_command("MMAP.INFO", key))
        return AsyncVector(self.client, key, _text(info["kind"]), self.chunk_bytes, self.progress)
