"""The lock that keeps ``gc`` from deleting an object a writer is about to register.

Two ``flock`` files in the object store's folder:

- ``.gc.lock``: a writer holds it SHARED from the moment its object is in place (or found
  there already) until the artifact that references it is committed; ``gc`` holds it
  EXCLUSIVE while it re-reads the referenced digests and deletes. So the delete phase sees
  every registration that finished and none is half-way.
- ``.gc.turn``: a turnstile. A writer passes it (takes and drops it) before taking the
  shared lock; ``gc`` holds it while it waits for the exclusive one, so a stream of
  overlapping writers cannot starve ``gc`` (``flock`` grants shared locks while an
  exclusive one waits).

Shared holds are counted per process and per folder, so nested and concurrent writers in
one process take the file lock once and never queue behind a waiting ``gc`` while they
already hold it. A writer costs two ``open``s and four ``flock`` calls (tens of microseconds).
Nothing here imports more than ``os``, ``fcntl`` and ``threading``: the pipeline's process
worker uses it.

The folder is the object store's: :class:`mlkernel.artifacts.store.LocalObjectStore` is the
only caller of :func:`shared` and :func:`exclusive` (writers elsewhere hold
``store.writing()``), so where the lock files live is part of the
store's layout (``tests/test_architecture.py`` checks it).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOCK_NAME", "TURN_NAME", "exclusive", "held_here", "shared"]

LOCK_NAME = ".gc.lock"
TURN_NAME = ".gc.turn"

_mutex = threading.Lock()
# folder -> [fd, depth, pid] of this process's shared hold
_held: dict[str, list[int]] = {}
_mine = threading.local()  # .depth: {folder: holds by this thread}


def _open(root: str, name: str) -> int:
    path = os.path.join(root, name)
    flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:  # a store nothing was written to yet
        os.makedirs(root, exist_ok=True)
        return os.open(path, flags, 0o666)


def _depths() -> dict[str, int]:
    depths: dict[str, int] | None = getattr(_mine, "depth", None)
    if depths is None:
        depths = _mine.depth = {}
    return depths


def held_here(root: str | os.PathLike[str]) -> bool:
    """Whether this thread holds the shared lock of ``root`` now.

    (Another thread's hold is no obstacle to ``exclusive``: it waits until that
    thread's registration is done, as for another process's.)
    """
    held = _held.get(os.fspath(root))
    return bool(
        held is not None and held[2] == os.getpid() and _depths().get(os.fspath(root), 0) > 0
    )


def _acquire(key: str) -> None:
    with _mutex:
        held = _held.get(key)
        if held is not None and held[2] != os.getpid():
            # Inherited through fork: the lock is the parent's; unlocking would free it.
            os.close(held[0])
            del _held[key]
            held = None
        if held is not None:
            held[1] += 1
            return
        turn = _open(key, TURN_NAME)
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)  # waits while gc is waiting or deleting
            fd = _open(key, LOCK_NAME)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            except BaseException:
                os.close(fd)
                raise
        finally:
            os.close(turn)  # closing drops the turnstile
        _held[key] = [fd, 1, os.getpid()]


def _release(key: str) -> None:
    with _mutex:
        held = _held.get(key)
        if held is None or held[2] != os.getpid():
            return
        held[1] -= 1
        if held[1] == 0:
            del _held[key]
            os.close(held[0])  # closing the only descriptor drops the lock


@contextmanager
def shared(root: str | os.PathLike[str]) -> Iterator[None]:
    """Hold off ``gc``'s delete phase in ``root`` while the block runs."""
    key = os.fspath(root)
    _acquire(key)
    depths = _depths()
    depths[key] = depths.get(key, 0) + 1
    try:
        yield
    finally:
        depths[key] -= 1
        _release(key)


@contextmanager
def exclusive(root: str | os.PathLike[str]) -> Iterator[None]:
    """Wait until no writer holds ``root``'s shared lock and keep new ones out."""
    key = os.fspath(root)
    if held_here(key):
        from mlkernel.errors import UsageError

        raise UsageError("gc cannot run while this thread is registering an artifact; run it after")
    turn = _open(key, TURN_NAME)
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)
        fd = _open(key, LOCK_NAME)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
    finally:
        os.close(turn)
