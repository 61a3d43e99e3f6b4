"""Stable 64-bit hashes of column values, vectorised with NumPy.

The distinct-count sketch needs a hash that is the same in every process and every
version of mlkernel, because profiles are stored and merged later. Python's ``hash()``
is salted per process, and hashlib is a Python call per value, so both are out.

* Floats (and integers, which are profiled as float64) hash their IEEE-754 bits,
  with ``-0.0`` folded onto ``0.0``, through the SplitMix64 finaliser (Steele et al.,
  "Fast splittable pseudorandom number generators", OOPSLA 2014).
* Strings hash their UTF-8 bytes with a polynomial over the bytes (mod 2**64) mixed
  with the length, then through the same finaliser. It runs on the Arrow buffers, with
  no Python call per value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["hash_floats", "hash_strings", "splitmix64", "splitmix64_int"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POLY = 0x100000001B3  # the FNV-1 64-bit prime, odd so every power is a unit mod 2**64
_MASK64 = (1 << 64) - 1

U64Array = npt.NDArray[np.uint64]


def splitmix64(x: U64Array) -> U64Array:
    """The SplitMix64 finaliser applied element-wise (wrapping uint64 arithmetic)."""
    z = x + _GOLDEN
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def splitmix64_int(x: int) -> int:
    """The SplitMix64 finaliser for one Python integer."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def hash_floats(values: npt.NDArray[np.float64]) -> U64Array:
    """Hash finite float64 values; equal values (including 0.0 and -0.0) hash alike."""
    folded = np.ascontiguousarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    return splitmix64(folded.view(np.uint64))


_powers_cache: list[U64Array] = []


def _powers(length: int) -> U64Array:
    """``_POLY**i mod 2**64`` for i < length (cached, grown on demand)."""
    if _powers_cache and len(_powers_cache[0]) >= length:
        return _powers_cache[0]
    size = max(length, 256)
    table = np.full(size, _POLY, dtype=np.uint64)
    table[0] = 1
    table = np.cumprod(table, dtype=np.uint64)  # wraps mod 2**64, as intended
    _powers_cache[:] = [table]
    return table


def hash_strings(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> U64Array:
    """Hash the strings of an Arrow (large) string/binary array given its buffers.

    ``offsets`` holds ``len + 1`` byte offsets into ``data``; string ``i`` is
    ``data[offsets[i]:offsets[i+1]]``.
    """
    offsets = offsets.astype(np.int64, copy=False)
    count = len(offsets) - 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    start = int(offsets[0])
    rel = offsets - start
    lengths = np.diff(rel)
    body = data[start : int(offsets[-1])].astype(np.uint64)
    sums = np.zeros(count, dtype=np.uint64)
    if len(body):
        position = np.arange(len(body), dtype=np.int64) - np.repeat(rel[:-1], lengths)
        terms = (body + np.uint64(1)) * _powers(int(lengths.max()))[position]
        nonempty = lengths > 0
        sums[nonempty] = np.add.reduceat(terms, rel[:-1][nonempty])
    return splitmix64(sums ^ splitmix64(lengths.astype(np.uint64)))
