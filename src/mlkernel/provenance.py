"""What produced an artifact: the Python environment and the git state of the code.

The environment (interpreter and installed distributions) is canonical JSON, hashed, and
cached on disk under a key made of the interpreter and the modification times of the
``sys.path`` folders, which change whenever a package is installed or removed. Listing
distributions costs tens of milliseconds; the cached answer costs a few ``stat`` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mlkernel import digest as digests

__all__ = ["Environment", "GitState", "ProvenanceProbe", "environment", "git_state"]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Environment:
    digest: str
    payload: bytes
    summary: str  # e.g. "CPython 3.11.7, 142 distributions"


@dataclass(frozen=True, slots=True)
class GitState:
    commit: str | None
    dirty: bool | None


def _cache_key() -> str:
    parts = [sys.executable, sys.version]
    for entry in sys.path:
        try:
            parts.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            continue
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _describe() -> bytes:
    from importlib import metadata

    packages = sorted(
        {
            f"{d.metadata['Name']}=={d.version}"
            for d in metadata.distributions()
            if d.metadata["Name"]
        },
        key=str.lower,
    )
    doc = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": packages,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


_memo: dict[str, Environment] = {}


def environment(cache_dir: Path | None = None) -> Environment:
    key = _cache_key()
    found = _memo.get(key)
    if found is not None:
        return found
    payload: bytes | None = None
    cache_file = cache_dir / f"env-{key}.json" if cache_dir is not None else None
    if cache_file is not None:
        try:
            payload = cache_file.read_bytes()
            json.loads(payload)
        except (OSError, ValueError):
            payload = None
    if payload is None:
        payload = _describe()
        if cache_file is not None:
            from mlkernel.fsutil import write_atomic

            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(cache_file, payload)
            except OSError:
                pass  # a read-only project still tracks; it only re-lists next time
    doc = json.loads(payload)
    env = Environment(
        digest=digests.of_bytes(payload),
        payload=payload,
        summary=f"{doc['implementation']} {doc['python']}, {len(doc['packages'])} distributions",
    )
    _memo[key] = env
    return env


def _git_dir(root: Path) -> Path | None:
    for folder in (root, *root.parents):
        candidate = folder / ".git"
        if candidate.exists():
            return candidate
    return None


def git_state(root: Path) -> GitState:
    """The commit checked out at ``root`` and whether tracked files differ from it.

    Outside a repository no process is started. Inside one, ``git rev-parse`` and
    ``git status`` run in the run's background provenance thread, so they overlap the
    run's own work instead of delaying its start.
    """
    if _git_dir(root) is None:
        return GitState(None, None)
    return _ask_git(root)


def _read_head(git_dir: Path) -> str | None:
    """The commit HEAD names, read from the files (no process); None if unusual."""
    if not git_dir.is_dir():
        return None  # a worktree or submodule pointer file: let git answer
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head if len(head) == 40 else None
        ref = head[5:]
        loose = git_dir / ref
        if loose.is_file():
            return loose.read_text().strip()
        for line in (git_dir / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _ask_git(root: Path) -> GitState:
    git_dir = _git_dir(root)
    commit = _read_head(git_dir) if git_dir is not None else None
    try:
        if commit is None:
            head = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if head.returncode != 0:
                return GitState(None, None)
            commit = head.stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return GitState(commit, None)
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return GitState(commit, dirty)


class ProvenanceProbe:
    """One background worker per kernel that answers "which environment, which commit".

    Runs ask at their start and wait for the answers at their end, so the lookups
    overlap the run's own work and always happen while the run is alive. The
    environment is listed once per process (then memoised). Git lookups are coalesced:
    a run that asks while another lookup is still queued shares it, since that lookup
    starts after both runs started and ends before either ends.
    """

    def __init__(self, root: Path, cache_dir: Path) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._root = root
        self._cache_dir = cache_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlk-provenance")
        self._lock = threading.Lock()
        self._queued: Future[GitState] | None = None
        self._in_repo = _git_dir(root) is not None

    def environment(self) -> Future[Environment]:
        found = _memo.get(_cache_key())
        if found is not None:
            return _done(found)
        return self._pool.submit(environment, self._cache_dir)

    def git(self) -> Future[GitState]:
        if not self._in_repo:
            return _done(GitState(None, None))
        with self._lock:
            queued = self._queued
            if queued is not None and not queued.running() and not queued.done():
                return queued
            self._queued = self._pool.submit(_ask_git, self._root)
            return self._queued

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future
