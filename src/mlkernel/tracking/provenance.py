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
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Environment", "GitState", "environment", "git_state"]


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
            from mlkernel.config import write_atomic

            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(cache_file, payload)
            except OSError:
                pass  # a read-only project still tracks; it only re-lists next time
    doc = json.loads(payload)
    env = Environment(
        digest=hashlib.sha256(payload).hexdigest(),
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


def _ask_git(root: Path) -> GitState:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return GitState(None, None)
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return GitState(None, None)
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return GitState(head.stdout.strip(), dirty)
