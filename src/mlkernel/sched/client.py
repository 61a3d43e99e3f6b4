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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkernel import errors
from mlkernel.errors import MLKernelError, StorageError
from mlkernel.sched.journal import default_runtime_dir

__all__ = [
    "Client",
    "StopResult",
    "describe_user",
    "log_tail",
    "ml_mode",
    "ping",
    "start_controller",
    "stop_if_unused",
]

SOCKET_NAME = "sched.sock"
LOG_NAME = "controller.log"
LOCK_NAME = "controller.lock"  # the controller holds a flock on it while it runs


def _error(kind: str, message: str) -> MLKernelError:
    cls = getattr(errors, kind, MLKernelError)
    if not (isinstance(cls, type) and issubclass(cls, MLKernelError)):
        cls = MLKernelError
    return cls(message)


def start_controller(
    runtime_dir: Path,
    config: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
    label: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``python -m mlkernel.sched.controller`` as a daemon (own session) and wait for
    its socket. Its log goes to ``<runtime_dir>/controller.log``; ``label`` (e.g. the
    project) is recorded with this process as the one that started it.

    When it does not come up, the error carries the last lines it wrote, so the message
    still says why after the log (a temporary runtime directory, say) is gone."""
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
    cmd += ["--started-by", json.dumps(starter(label))]
    log_path = runtime_dir / LOG_NAME
    with open(log_path, "ab") as logf:
        offset = logf.tell()  # what this start writes comes after it
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
                f"the scheduler controller exited with {proc.returncode}: "
                f"{log_tail(log_path, offset)} (log: {log_path})"
            )
        time.sleep(0.05)
    raise StorageError(
        f"the scheduler controller did not answer within {timeout:g} s; it last wrote: "
        f"{log_tail(log_path, offset)} (log: {log_path})"
    )


def log_tail(path: Path, offset: int = 0, lines: int = 3, limit: int = 400) -> str:
    """The last ``lines`` non-empty lines written to ``path`` after ``offset``, on one line."""
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, f.seek(0, os.SEEK_END) - 8192))  # the end is enough
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(its log {path} cannot be read: {exc.strerror})"
    tail = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    if not tail:
        return "(it wrote nothing)"
    tail = " | ".join(tail.split(" | ")[-lines:])
    return tail if len(tail) <= limit else "..." + tail[-limit:]


def starter(label: str | None = None) -> dict[str, Any]:
    """Who this process is, as the controller records the process that started it."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "user": user,
        "command": command[:200],
        "cwd": os.getcwd() if os.path.isdir(".") else "",
        "label": label,
    }


def _announce_on_stderr(line: str) -> None:
    print(f"mlk: {line}", file=sys.stderr, flush=True)


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
    """One connection to the controller; ``autostart`` starts one when none answers.

    A controller outlives the process that started it (it is the machine's), so starting
    one is said out loud: ``announce`` gets one line (default: standard error). ``label``
    (e.g. ``project churn``) tells ``mlk mode status`` who the claims and placements of
    this client are for."""

    def __init__(
        self,
        runtime_dir: Path | None = None,
        *,
        autostart: bool = True,
        config: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
        label: str | None = None,
        announce: Callable[[str], None] | None = _announce_on_stderr,
    ) -> None:
        self.runtime_dir = runtime_dir if runtime_dir is not None else default_runtime_dir()
        self.socket_path = self.runtime_dir / SOCKET_NAME
        self.timeout = timeout
        self.label = label
        self.started: subprocess.Popen[bytes] | None = None
        if not ping(self.socket_path):
            if not autostart:
                raise errors.NotFoundError(
                    f"no scheduler controller at {self.socket_path}; "
                    "it starts with the first `mlk mode ml` (or a pipeline run in ML mode)"
                )
            self.started = start_controller(self.runtime_dir, config, label=label)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(str(self.socket_path))
        self._file = self._sock.makefile("rwb")
        if self.started is not None and announce is not None:
            pid = self.call("ping")["pid"]
            if pid == self.started.pid:  # not a controller that won a start race
                announce(
                    f"started the machine's scheduler controller (pid {pid}, uid {os.getuid()}, "
                    f"{self.runtime_dir}); it keeps running after this command: "
                    "`mlk mode status` shows it, `mlk mode stop` stops it"
                )

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
            log_path = self.runtime_dir / LOG_NAME
            raise StorageError(
                f"the scheduler controller closed the connection; it last wrote: "
                f"{log_tail(log_path)} (log: {log_path})"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise _error(str(answer.get("kind")), str(answer.get("error")))
        return answer

    def enter(self, pid: int | None = None) -> dict[str, Any]:
        return self.call("enter", pid=pid, label=self.label)

    def leave(self, pid: int | None = None) -> bool:
        return bool(self.call("leave", pid=pid)["left"])

    def off(self) -> list[int]:
        return list(self.call("off")["left"])

    def place(self, pid: int | None, pool: str) -> dict[str, Any]:
        """Move ``pid`` (default: the caller) into ``pool`` (prod, dev, batch) until it exits.
        Answers ``{"placed": False, "reason": ...}`` where the machine has no cgroup backend."""
        return self.call("place", pid=pid, pool=pool, label=self.label)

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def policy_apply(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.call("policy-apply", config=None if config is None else dict(config))

    def shutdown(self, *, if_unused: bool = False) -> dict[str, Any]:
        """Ask the controller to restore everything and exit. With ``if_unused`` it stays
        when something still uses it, and answers ``{"stopping": False, "users": [...]}``."""
        return self.call("shutdown", if_unused=if_unused)


@dataclass(frozen=True)
class StopResult:
    """What :func:`stop_if_unused` did: ``pid`` None when no controller ran."""

    pid: int | None
    stopped: bool
    users: list[dict[str, Any]] = field(default_factory=list)


def stop_if_unused(
    runtime_dir: Path | None = None, *, force: bool = False, timeout: float = 15.0
) -> StopResult:
    """Stop the machine's controller unless something still uses it (claims, ``mlk mode
    run`` placements, other connected clients, an applied policy); ``force`` stops it
    anyway. It restores everything it changed before it exits; this waits for that."""
    try:
        client = Client(runtime_dir, autostart=False, announce=None)
    except errors.NotFoundError:
        return StopResult(None, False)
    with client:
        answer = client.shutdown(if_unused=not force)
    pid = int(answer["pid"]) if answer.get("pid") is not None else None
    if not answer.get("stopping"):
        return StopResult(pid, False, list(answer.get("users", [])))
    from mlkernel.sched import _proc

    deadline = time.monotonic() + timeout
    # Releasing the lock is its last act, after the restore; then the process exits, and
    # "stopped" means gone, so that a caller may start a new one or check what it left.
    while not _released(client.runtime_dir / LOCK_NAME) or (
        pid is not None and not _proc.exited(pid)
    ):
        if time.monotonic() > deadline:
            raise StorageError(
                f"the scheduler controller (pid {pid}) did not stop within {timeout:g} s; "
                f"see {client.runtime_dir / LOG_NAME}"
            )
        time.sleep(0.05)
    return StopResult(pid, True)


def _released(lock: Path) -> bool:
    """Whether no controller holds ``lock`` (taken and let go at once to find out)."""
    from mlkernel.fsutil import try_flock

    try:
        fd = try_flock(lock)
    except FileNotFoundError:
        return True
    if fd is None:
        return False
    os.close(fd)
    return True


def describe_user(user: Mapping[str, Any]) -> str:
    """One entry of the controller's ``users`` in words, e.g. ``claim: pid 12 (project x)``."""
    kind = str(user.get("kind"))
    what = str(user.get("what") or "")
    if kind == "policy":
        return what
    where = f" in {user['pool']}" if user.get("pool") else ""
    noun = {"claim": "ML-mode job", "placement": "`mlk mode run` job", "client": "client"}
    return f"{noun.get(kind, kind)} pid {user.get('pid')}{where}: {what}"


@contextlib.contextmanager
def ml_mode(
    pid: int | None = None,
    runtime_dir: Path | None = None,
    config: Mapping[str, Any] | None = None,
    label: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Run the block in ML mode for ``pid`` (default: this process). The claim also ends by
    itself if the process dies, because the controller watches it through a pidfd."""
    target = os.getpid() if pid is None else pid
    with Client(runtime_dir, config=config, label=label) as c:
        claim = c.enter(target)
        try:
            yield claim
        finally:
            c.leave(target)
