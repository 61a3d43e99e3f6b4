"""Content digests: BLAKE3 (256 bits, 64 lowercase hex characters).

Every object in the store is named by the BLAKE3 of its bytes, and every recorded content
digest (a dataset's source files, an environment) is one too, so one algorithm answers
"is this the same content" everywhere.

Why BLAKE3 rather than SHA-256: hashing is, after the parse, the largest cost of ingesting
a dataset (its source and its Arrow file, 1.6 GB for the 860 MB benchmark CSV). On this
project's 2-core AMD EPYC machines BLAKE3 hashes 2.9 GB/s on one core against SHA-256's
1.3 GB/s with the SHA extensions, and it can spread one large file over every core
(:func:`of_file`), which ``mlk verify`` uses. It is a cryptographic hash, as signed
artifacts need; a non-cryptographic checksum (xxHash) would let crafted content collide.

``blake3`` is imported on first use, so importing this module costs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blake3 import blake3 as Hasher

__all__ = ["ALGORITHM", "HEX_LENGTH", "is_digest", "new", "of_bytes", "of_file"]

ALGORITHM = "blake3"
HEX_LENGTH = 64
_HEX = frozenset("0123456789abcdef")
MULTITHREAD_FROM = 64 << 20  # below this, one thread is faster than starting the others
CHUNK = 16 << 20


def new() -> Hasher:
    """An empty hasher: ``update(bytes)`` (releases the GIL), then ``hexdigest()``."""
    from blake3 import blake3

    return blake3()


def of_bytes(data: bytes | bytearray | memoryview) -> str:
    from blake3 import blake3

    return blake3(data).hexdigest()


def of_file(path: Path | str) -> str:
    """The digest of a file's bytes; a large file is hashed on every core.

    Read into one buffer rather than memory-mapped: a file that another process
    truncates meanwhile would kill a process reading it through a map (SIGBUS).
    Raises OSError (FileNotFoundError ...) like ``open``.
    """
    from blake3 import blake3

    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        hasher = blake3(max_threads=blake3.AUTO if size >= MULTITHREAD_FROM else 1)
        buffer = bytearray(min(max(size, 1), CHUNK))
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            hasher.update(view[:n])
    return str(hasher.hexdigest())


def is_digest(text: str) -> bool:
    return len(text) == HEX_LENGTH and all(c in _HEX for c in text)
