"""Writing one object the way :class:`mlkernel.artifacts.store.ObjectStore` does, with
nothing but ``os`` and :mod:`mlkernel.digest`: the process worker stores every step's
output, and importing the object store (tempfile, tarfile) would cost it milliseconds a
step. Same layout, same guarantees: a temporary file in ``objects/tmp``, fsynced, made
read-only, renamed to ``objects/ab/cdef...``, the folder fsynced. A test checks that the
object store finds what this writes."""

from __future__ import annotations

import os

__all__ = ["object_path", "put_bytes"]


def object_path(root: str, digest: str) -> str:
    return os.path.join(root, digest[:2], digest[2:])


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put_bytes(root: str, data: bytes) -> tuple[str, int]:
    from mlkernel.digest import of_bytes  # loads blake3 on first use only

    digest = of_bytes(data)
    final = object_path(root, digest)
    if os.path.exists(final):
        return digest, len(data)
    tmp_dir = os.path.join(root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    tmp = os.path.join(tmp_dir, f"obj-{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(os.path.dirname(final))
    return digest, len(data)
