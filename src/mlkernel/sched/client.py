"""Talking to the machine's scheduler controller, starting it when none runs.

>>> from mlkernel.sched import ml_mode
>>> with ml_mode():          # this process (and its children) in ML mode
...     train()
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlkernel import errors
from mlkernel.errors import MLKernelError, StorageError
from mlkernel.sched.journal import default_runtime_dir

__all__ = ["Client", "ml_mode", "ping", "start_controller"]

SOCKET_NAME = "sched.sock"


def _error(kind: str, message: str) -> MLKernelError:
    cls = getattr(errors, kind, MLKernelError)
    if not (isinstance(cls, type) and issubclass(cls, MLKernelError)):
        cls = MLKernelError
    return cls(message)


def start_controller(
    runtime_dir: Path, config: Mapping[str, Any] | None = None, timeout: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start ``python -m mlkernel.sched.controller`` as a daemon (own session) and wait for
    its socket. Its log goes to ``<runtime_dir>/controller.log``."""
    try:
        runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise errors.UsageError(
            f"the scheduler's runtime folder {runtime_dir} cannot be made ({exc.strerror}); "
            "pass another --runtime-dir"
        ) from None
    pkg_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "mlkernel.sched.controller", "--runtime-dir", str(runtime_dir)]
    if config:
        cmd += ["--config", json.dumps(dict(config))]
    with open(runtime_dir / "controller.log", "ab") as logf:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    sock_path = runtime_dir / SOCKET_NAME
    while time.monotonic() < deadline:
        if ping(sock_path):
            return proc
        if proc.poll() is not None and not ping(sock_path):
            # It lost the race to another controller that is still starting, or failed.
            time.sleep(0.1)
            if ping(sock_path):
                return proc
            raise StorageError(
                f"the scheduler controller exited with {proc.returncode}; "
                f"see {runtime_dir / 'controller.log'}"
            )
        time.sleep(0.05)
    raise StorageError(f"the scheduler controller did not answer within {timeout:g} s")


def ping(sock_path: Path) -> bool:
    """Whether a controller answers at ``sock_path`` (never starts one)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock_path))
            s.sendall(b'{"op": "ping"}\n')
            return b'"ok": true' in s.recv(4096)
    except OSError:
        return False


class Client:
    """One connection to the controller; ``autostart`` starts one when none answers."""

    def __init__(
        self,
        runtime_dir: Path | None = None,
        *,
        autostart: bool = True,
        config: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.runtime_dir = runtime_dir if runtime_dir is not None else default_runtime_dir()
        self.socket_path = self.runtime_dir / SOCKET_NAME
        self.timeout = timeout
        self.started: subprocess.Popen[bytes] | None = None
        if not ping(self.socket_path):
            if not autostart:
                raise errors.NotFoundError(
                    f"no scheduler controller at {self.socket_path}; run `mlk mode status` to start one"
                )
            self.started = start_controller(self.runtime_dir, config)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(str(self.socket_path))
        self._file = self._sock.makefile("rwb")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        self._file.write((json.dumps({"op": op, **fields}) + "\n").encode())
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise StorageError("the scheduler controller closed the connection; see its log")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise _error(str(answer.get("kind")), str(answer.get("error")))
        return answer

    def enter(self, pid: int | None = None) -> dict[str, Any]:
        return self.call("enter", pid=pid)

    def leave(self, pid: int | None = None) -> bool:
        return bool(self.call("leave", pid=pid)["left"])

    def off(self) -> list[int]:
        return list(self.call("off")["left"])

    def place(self, pid: int | None, pool: str) -> dict[str, Any]:
        """Move ``pid`` (default: the caller) into ``pool`` (prod, dev, batch) until it exits.
        Answers ``{"placed": False, "reason": ...}`` where the machine has no cgroup backend."""
        return self.call("place", pid=pid, pool=pool)

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def policy_apply(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.call("policy-apply", config=None if config is None else dict(config))

    def shutdown(self) -> None:
        self.call("shutdown")


@contextlib.contextmanager
def ml_mode(
    pid: int | None = None,
    runtime_dir: Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Run the block in ML mode for ``pid`` (default: this process). The claim also ends by
    itself if the process dies, because the controller watches it through a pidfd."""
    target = os.getpid() if pid is None else pid
    with Client(runtime_dir, config=config) as c:
        claim = c.enter(target)
        try:
            yield claim
        finally:
            c.leave(target)
