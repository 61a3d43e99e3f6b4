"""Writing one object the way :class:`mlkernel.artifacts.store.ObjectStore` does, with
nothing but ``os`` and :mod:`mlkernel.digest`: the process worker stores every step's
output, and importing the object store (tempfile, tarfile) would cost it milliseconds a
step. Same layout, same guarantees: a temporary file in ``objects/tmp``, fsynced, made
read-only, renamed to ``objects/ab/cdef...``, the folder fsynced. A test checks that the
object store finds what this writes.

Like the store, it puts or finds the object under the store's shared gc lock
(:mod:`mlkernel.gclock`) and touches an object it finds, so gc's grace period covers the
time until the runner registers the output in the parent process."""

from __future__ import annotations

import contextlib
import os

from mlkernel import gclock

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
    with gclock.shared(root):
        if os.path.exists(final):
            with contextlib.suppress(PermissionError):
                os.utime(final)  # gc's grace period starts again
            return digest, len(data)
        _write(root, final, data)
    _fsync_dir(os.path.dirname(final))
    return digest, len(data)


def _write(root: str, final: str, data: bytes) -> None:
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
