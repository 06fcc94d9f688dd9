"""64-bit image hashes as numpy ``uint64``: reading and writing their 16-hex-digit form, Hamming distance.

The hex form is imagededup's (and imagehash's ``str()``): most significant bit first. Reading a
column of a million hashes goes straight from the Arrow string buffers to ``uint64``, with every
malformed value an error rather than a silent zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_HEX_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_LUT[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX_LUT[_c] = 10 + _i


def hex_to_uint64(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """16-hex-digit strings (imagededup's format, most significant bit first) -> ``uint64`` array.

    Accepts a list of ``str``, a numpy string array or a pyarrow string array without nulls; raises
    ``ValueError`` on anything that is not exactly 16 hex digits.
    """
    if hasattr(values, "buffers") or hasattr(values, "combine_chunks"):  # pyarrow, read from its buffers
        return _hex_from_arrow(values)
    arr = np.asarray(values)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if arr.dtype.kind in "OU":
        try:
            arr = arr.astype("S16")  # strings longer than 16 are truncated here, shorter ones padded
        except UnicodeEncodeError:
            raise ValueError("hashes must be 16 hex digits (non-ASCII found)") from None
        lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=n)
        if (lengths != 16).any():
            bad = int(np.flatnonzero(lengths != 16)[0])
            raise ValueError(f"hash {values[bad]!r} at {bad} is not 16 hex digits")
    if arr.dtype != np.dtype("S16"):
        raise ValueError(f"cannot read hashes from an array of dtype {arr.dtype}")
    nibbles = _HEX_LUT[np.ascontiguousarray(arr).view(np.uint8).reshape(n, 16)]
    if (nibbles == 255).any():
        bad = int(np.flatnonzero((nibbles == 255).any(axis=1))[0])
        raise ValueError(f"hash {arr[bad].decode(errors='replace')!r} at {bad} is not 16 hex digits")
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return packed.view(">u8").reshape(n).astype(np.uint64)


def _hex_from_arrow(values) -> np.ndarray:
    arr = values.combine_chunks() if hasattr(values, "combine_chunks") else values
    if arr.null_count:
        raise ValueError("hash array holds nulls; mask them first")
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offsets_buf, data_buf = arr.buffers()[:3]
    offset_type = np.int64 if "large" in str(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=offset_type)[arr.offset:arr.offset + n + 1]
    if (np.diff(offsets) != 16).any():
        bad = int(np.flatnonzero(np.diff(offsets) != 16)[0])
        raise ValueError(f"hash {arr[bad].as_py()!r} at {bad} is not 16 hex digits")
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
    return hex_to_uint64(data.view("S16"))


def uint64_to_hex(hashes: np.ndarray) -> list[str]:
    """Inverse of :func:`hex_to_uint64`."""
    return [f"{h:016x}" for h in np.asarray(hashes, dtype=np.uint64).tolist()]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of two ``uint64`` arrays."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)
