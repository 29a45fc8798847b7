"""Code a user writes, checked by mypy --strict in the tests."""

import numpy as np
import numpy.typing as npt
import redis

from redis_mmap import Stats, Vector, Vectors


def mean_of(r: redis.Redis, key: str) -> float:
    v: Vector = Vectors(r).get(key)
    s: Stats = v.stats()
    part: npt.NDArray[np.float64] = v.read(0, 10)
    v.append(part)
    return 0.0 if s.mean is None else s.mean
