"""File-system helpers every layer uses: atomic writes, durable renames, live processes."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlkernel.errors import ConflictError, MLKernelError, NotFoundError, UsageError

__all__ = ["atomic_output", "fsync_dir", "is_stream", "output_error", "pid_alive", "write_atomic"]


def is_stream(path: Path | str) -> bool:
    """Whether ``path`` is, or links to, a pipe or a character device (``/dev/stdout``, a
    terminal, ``/dev/null``): such a target is written in place, never replaced by a file
    (a rename onto ``/dev/stdout`` would turn the device link into a plain file)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def fsync_dir(path: Path | str) -> None:
    """Make a rename, creation or unlink inside the folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    if is_stream(path):
        with open(path, "wb") as stream:
            stream.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def output_error(path: Path, exc: OSError) -> MLKernelError:
    """A one-line error, naming the fix, for a file the user asked for that cannot be written."""
    parent = path.parent
    if (isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT) and parent.is_dir():
        return UsageError(
            f"cannot write {path}: files cannot be made in {parent}; choose another path"
        )
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        return NotFoundError(
            f"cannot write {path}: folder {parent} does not exist; create it or choose another path"
        )
    if isinstance(exc, NotADirectoryError) or exc.errno == errno.ENOTDIR:
        return UsageError(
            f"cannot write {path}: a part of {parent} is a file, not a folder; choose another path"
        )
    if isinstance(exc, IsADirectoryError):
        return UsageError(f"cannot write {path}: it is a folder; name a file in it")
    reason = exc.strerror or type(exc).__name__
    return UsageError(f"cannot write {path}: {reason}; choose another path or free some space")


@contextmanager
def atomic_output(path: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary file beside ``path`` for the block to write; it becomes ``path`` when the
    block ends without error, and is removed otherwise, so ``path`` is never half-written.

    Without ``overwrite`` an existing ``path`` is refused (before the block runs, and again
    at the end, by a hard link that cannot replace a file). Errors the user can fix (a
    missing folder, a file in the way) are one-line :class:`MLKernelError` s.
    """
    if path.is_dir():
        raise UsageError(f"{path} is a folder; name a file to write")
    if is_stream(path):  # /dev/stdout, a pipe: written in place, nothing to replace
        try:
            yield path
        except OSError as exc:
            raise output_error(path, exc) from None
        return
    if not overwrite and os.path.lexists(path):
        raise ConflictError(f"{path} exists; pass --force to overwrite it, or choose another path")
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise output_error(path, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _link_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless a file has taken it meanwhile."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise ConflictError(
            f"{path} exists; pass --force to overwrite it, or choose another path"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        os.replace(tmp, path)  # a file system without hard links: checked above already
        return
    tmp.unlink()


def try_flock(path: Path | str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int | None:
    """Open ``path`` and take an exclusive ``flock`` on it without waiting: the descriptor
    (closing it releases the lock), or None when another open file holds the lock."""
    import fcntl

    fd = os.open(path, flags, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
