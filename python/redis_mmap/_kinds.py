"""The module's element kinds and the numpy dtypes that hold them."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

#: The module's element kinds and the little-endian numpy dtypes that hold
#: them (bfloat16: ``ml_dtypes.bfloat16``, when installed).
KINDS: Dict[str, Optional[str]] = {
    "int8": "<i1",
    "uint8": "<u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
    "uint64": "<u8",
    "float16": "<f2",
    "bfloat16": None,
    "float32": "<f4",
    "float64": "<f8",
}

_ALIASES = {"float": "float32", "double": "float64"}


def _bfloat16() -> np.dtype[Any]:
    try:
        import ml_dtypes
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise TypeError("bfloat16 needs the ml_dtypes package (pip install 'redis-mmap[bfloat16]')") from e
    dt: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return dt


def dtype_of(kind: str) -> np.dtype[Any]:
    """The little-endian numpy dtype of a module kind (``float`` and
    ``double`` are float32 and float64, as in ``MMAP ... TYPE``)."""
    name = _ALIASES.get(kind.lower(), kind.lower())
    if name not in KINDS:
        raise ValueError(f"unknown element kind {kind!r} (known: {', '.join(KINDS)})")
    held = KINDS[name]
    return _bfloat16() if held is None else np.dtype(held)


def kind_of(dtype: Any) -> str:
    """The module kind that holds a dtype (any byte order), or a kind name
    given as is."""
    if isinstance(dtype, str) and dtype.lower() in (*KINDS, *_ALIASES):
        return _ALIASES.get(dtype.lower(), dtype.lower())
    dt = np.dtype(dtype)
    name = str(dt.name)
    if name == "bfloat16":
        return "bfloat16"
    if dt.kind in "iuf" and name in KINDS:
        return name
    raise TypeError(f"no element kind holds dtype {dt} (kinds: {', '.join(KINDS)})")
