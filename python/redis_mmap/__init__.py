"""numpy arrays over redis-mmap vectors.

A redis-mmap key is bound to a file of raw little-endian numbers. This
package reads and writes such a key as a numpy array through redis-py:
slices travel as raw bytes (``MMAP.RANGE ... BLOB``, ``MMAP.SETRANGE``,
``MMAP.APPEND``), never as text, large ones in pipelined slices.

    >>> v = Vectors(redis.Redis()).bind("t", "t.f64", create=True)
    >>> v.append([1.5, 2.5]); v[:]
    array([1.5, 2.5])

The same commands run on ``redis.asyncio`` (:class:`AsyncVectors`) and on
``redis.cluster.RedisCluster`` and its asyncio twin.
"""

from ._client import CHUNK_BYTES, Stats
from ._kinds import KINDS, dtype_of, kind_of
from ._sharded import SHARD_LEN, ShardedVector
from ._vectors import AsyncVector, AsyncVectors, Vector, Vectors

__all__ = [
    "AsyncVector",
    "AsyncVectors",
    "CHUNK_BYTES",
    "KINDS",
    "SHARD_LEN",
    "ShardedVector",
    "Stats",
    "Vector",
    "Vectors",
    "dtype_of",
    "kind_of",
]
#: The version of the module this client goes with.
__version__ = "0.1.0"
