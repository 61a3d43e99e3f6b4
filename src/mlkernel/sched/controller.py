"""The machine's scheduler controller: one process, a Unix socket, a JSON line protocol.

Start: take ``controller.lock`` (one controller per runtime directory), replay the journal
(restoring whatever a crashed predecessor left changed), detect the backends, create the
pool groups, then serve. Each connection sends one JSON object per line and gets one back:

=========================================  ==============================================
request                                    answer
=========================================  ==============================================
``{"op": "ping"}``                         ``{"ok": true, "pid": N}``
``{"op": "enter", "pid": N}``              the claim; ``pid`` defaults to the caller's
``{"op": "leave", "pid": N}``              ``{"ok": true, "left": bool}``
``{"op": "off"}``                          ends the caller's claims (root: all claims)
``{"op": "place", "pid": N, "pool": P}``   moves N into pool P (prod, dev, batch) until N
                                           exits; ``{"placed": false, "reason"}`` without
                                           a cgroup backend
``{"op": "status"}``                       backends, claims, open journal entries, policy
``{"op": "policy-apply", "config": {}}``   (re)loads ``[sched]``, writes the policy for now
``{"op": "shutdown"}``                     restores everything and exits
``{"op": "shutdown", "if_unused": true}``  the same, unless something still uses it:
                                           ``{"stopping": false, "users": [...]}``
=========================================  ==============================================

``enter`` and ``place`` may carry a ``label`` (the project, say): ``status`` lists who uses
the controller (``users``: claims, ``mlk mode run`` placements, other connected clients, a
policy applied with ``mlk policy apply``) and who started it, when (``started_by``,
``started_at``; the client passes ``--started-by``).

On every tick (``tick_seconds``, default 60 s) the controller re-applies the policy (unless
ML mode is on), applies the placement rules, samples the pools' CPU, memory and PSI into
the load history (``<state dir>/history.db``) and rolls complete hours up. With
``policy = "auto"`` the off-peak windows suggested from >= 14 days of that history are put
ahead of the static windows, recomputed every hour.

Errors answer ``{"ok": false, "kind": "<MLKernelError subclass>", "error": "..."}``.
The caller is identified by ``SO_PEERCRED``, never by what it claims: a user may claim only
their own processes; root may claim any. ``policy-apply`` and ``shutdown`` need root or the
controller's own uid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mlkernel.errors import (
    ConflictError,
    MLKernelError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
)
from mlkernel.fsutil import try_flock
from mlkernel.sched import _proc
from mlkernel.sched.backends import CGROUP_ROOT, BackendReport, detect
from mlkernel.sched.cgroups import PoolGroups
from mlkernel.sched.history import HISTORY_NAME, History, Sampler, Suggestion, suggest_offpeak
from mlkernel.sched.journal import (
    Applier,
    Journal,
    RestoreResult,
    default_runtime_dir,
    state_dir_for,
)
from mlkernel.sched.mlmode import MLMode
from mlkernel.sched.placement import Placer
from mlkernel.sched.policy import PolicyConfig, apply_policy

__all__ = ["SOCKET_NAME", "Controller", "main"]

SOCKET_NAME = "sched.sock"
LOCK_NAME = "controller.lock"
REFRESH_SECONDS = 5.0
log = logging.getLogger(__name__)


class Controller:
    def __init__(
        self,
        runtime_dir: Path | None = None,
        config: PolicyConfig | None = None,
        cgroup_root: Path = CGROUP_ROOT,
        state_dir: Path | None = None,
        started_by: Mapping[str, Any] | None = None,
    ) -> None:
        self.started_by: dict[str, Any] = dict(started_by or {"pid": os.getpid()})
        self.started_at = time.time()
        # connection id -> (its socket, peer pid, peer uid)
        self._conns: dict[int, tuple[socket.socket, int, int]] = {}
        self._working: set[int] = set()  # connections that claimed or placed something
        self._labels: dict[int, str] = {}  # claimed or placed pid -> its client's label
        self._policy_by: dict[str, Any] | None = None  # who applied a policy, when
        self._users_lock = threading.Lock()
        self.runtime_dir = runtime_dir if runtime_dir is not None else default_runtime_dir()
        self.state_dir = state_dir if state_dir is not None else state_dir_for(runtime_dir)
        self.config = config or PolicyConfig()
        self.effective = self.config  # with learned windows when policy = "auto"
        self.learned: Suggestion | None = None
        self._learned_hour: str | None = None
        self.history: History | None = None
        self.sampler: Sampler | None = None
        self.placer: Placer | None = None
        self.cgroup_root = cgroup_root
        self.socket_path = self.runtime_dir / SOCKET_NAME
        self._lock_fd: int | None = None
        self._groups_fd: int | None = None  # the flock on the pool groups' parent
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self.recovered = RestoreResult()
        self.report: BackendReport | None = None
        self.mode: MLMode | None = None
        self.groups: PoolGroups | None = None

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.time()
        self.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = try_flock(self.runtime_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT)
        if fd is None:
            raise ConflictError(
                f"a scheduler controller already runs for {self.runtime_dir}; "
                "use `mlk mode status` to reach it"
            ) from None
        self._lock_fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())

        # The pool groups' lock comes before anything is written: a controller refused
        # here (another one manages the same parent) must not replay its journal onto them.
        self.report = detect(self.cgroup_root)
        if self.report.cgroup_version is not None and self.report.cgroup_mount is not None:
            self.groups = PoolGroups(
                Path(self.report.cgroup_mount),
                self.report.cgroup_version,
                self.report.cgroup_controller or "cpu",
                self.config.parent,
            )
            try:
                self._groups_fd = self.groups.claim()
            except BaseException:
                os.close(fd)  # the runtime dir's lock: this controller does not start
                self._lock_fd = None
                raise

        journal = Journal(self.runtime_dir)
        self.applier = Applier(journal)
        # Crash recovery: whatever is still open was left by a predecessor that died.
        self.recovered = self.applier.restore()
        journal.compact()
        if self.recovered.restored or self.recovered.gone:
            log.info(
                "recovered from journal: %d restored, %d gone, %d changed since",
                len(self.recovered.restored),
                len(self.recovered.gone),
                len(self.recovered.changed_since),
            )
        if self.groups is not None:
            self.groups.ensure()
        try:
            self.history = History(self.state_dir / HISTORY_NAME)
        except MLKernelError as exc:
            log.warning("no load history: %s", exc)
        self.sampler = Sampler(self.groups)
        self._learn(datetime.now())
        if self.groups is not None:
            apply_policy(self.effective, self.groups, self.applier, datetime.now())
            self.placer = Placer(self.applier, self.groups, self.effective)
            self.placer.apply_rules()
        self.mode = MLMode(self.applier, self.report, self.groups, self.effective)
        from mlkernel.sched._watch import ExitWatcher

        self.watcher = ExitWatcher(self._job_exited)

        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # stale: we hold the lock, so nobody serves it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o666)  # any user may connect; SO_PEERCRED decides
        sock.listen(64)
        sock.settimeout(0.5)
        self._sock = sock
        self._spawn(self._accept_loop, "mlk-accept")
        self._spawn(self._tick_loop, "mlk-tick")

    def _spawn(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        """Restore everything mlkernel changed, remove the socket, release the lock."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)
        if self.mode is not None:
            self.mode.leave_all()
        if hasattr(self, "applier"):
            self.applier.restore()
            self.applier.journal.compact()
        if hasattr(self, "watcher"):
            self.watcher.close()
        if self.history is not None:
            self.history.close()
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        if self._groups_fd is not None:
            os.close(self._groups_fd)
            self._groups_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- loops -------------------------------------------------------------------------
    def _job_exited(self, pid: int) -> None:
        self._labels.pop(pid, None)
        if self.mode is not None:
            self.mode.leave(pid)
        if self.placer is not None:
            self.placer.release(pid)

    def _tick_loop(self) -> None:
        last_tick = time.monotonic()
        while not self._stop.wait(min(REFRESH_SECONDS, self.config.tick_seconds)):
            assert self.mode is not None
            try:
                for claim in self.mode.claims():  # backup reaper (pid reuse, missed event)
                    if _proc.start_time(claim.pid) != claim.start:
                        self.mode.leave(claim.pid)
                self.mode.refresh()
            except Exception:
                log.exception("scheduler refresh failed")
            if time.monotonic() - last_tick >= self.config.tick_seconds:
                last_tick = time.monotonic()
                self.tick(datetime.now())

    def tick(self, now: datetime) -> None:
        """The once-a-minute work; each part runs even when another fails."""
        assert self.mode is not None
        parts: list[tuple[str, Callable[[], object]]] = [
            ("learned windows", lambda: self._learn(now))
        ]
        if self.groups is not None:
            groups = self.groups
            if not self.mode.active:
                parts.append(
                    ("policy", lambda: apply_policy(self.effective, groups, self.applier, now))
                )
        if self.placer is not None:
            parts.append(("placement rules", self.placer.apply_rules))
        if self.history is not None and self.sampler is not None:
            history, sampler = self.history, self.sampler
            parts.append(("load sample", lambda: sampler.sample(history, now)))
            parts.append(("hourly roll-up", lambda: history.rollup(now)))
        for what, part in parts:
            try:
                part()
            except Exception:
                log.exception("scheduler tick: %s failed", what)

    def _learn(self, now: datetime, force: bool = False) -> None:
        """``policy = "auto"``: put the off-peak windows learned from the history ahead of
        the static ones, once an hour. Until there are 14 days, the static policy rules."""
        hour = now.strftime("%Y-%m-%dT%H")
        if self.config.policy != "auto" or self.history is None:
            self.learned, self.effective = None, self.config
        elif force or hour != self._learned_hour:
            self._learned_hour = hour
            self.learned = suggest_offpeak(self.history, capacity=float(os.cpu_count() or 1))
            ok = self.learned.ok
            self.effective = self.config.with_windows(self.learned.windows if ok else [])
            log.info("policy auto: %s", self.learned.reason)
        if self.mode is not None:
            self.mode.config = self.effective

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            peer_pid, peer_uid, _gid = struct.unpack("3i", raw)
            with self._users_lock:
                self._conns[id(conn)] = (conn, peer_pid, peer_uid)
            try:
                self._serve_lines(conn, peer_pid, peer_uid)
            finally:
                with self._users_lock:
                    self._conns.pop(id(conn), None)
                    self._working.discard(id(conn))

    def _serve_lines(self, conn: socket.socket, peer_pid: int, peer_uid: int) -> None:
        f = conn.makefile("rwb")
        for line in f:
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise UsageError("a request is a JSON object with an 'op'")
                answer = {"ok": True, **self.handle(req, peer_pid, peer_uid, id(conn))}
            except MLKernelError as exc:
                answer = {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
            except json.JSONDecodeError as exc:
                answer = {"ok": False, "kind": "UsageError", "error": f"bad JSON: {exc}"}
            except Exception as exc:
                log.exception("request failed")
                answer = {"ok": False, "kind": "MLKernelError", "error": str(exc)}
            f.write((json.dumps(answer) + "\n").encode())
            f.flush()
            if answer.get("stopping"):
                self._stop.set()  # the serving thread (main) restores and exits
                return

    # -- requests ----------------------------------------------------------------------
    def handle(
        self, req: Mapping[str, Any], peer_pid: int, peer_uid: int, conn: int | None = None
    ) -> dict[str, Any]:
        """Answer one request; ``conn`` names the asker's connection (``users`` leaves it out)."""
        assert self.mode is not None and self.report is not None
        op = req.get("op")
        if conn is not None and op in ("enter", "place"):
            with self._users_lock:  # from now on this client counts as a user
                self._working.add(conn)
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "enter":
            pid = int(req.get("pid") or peer_pid)
            self._check_owner(pid, peer_uid)
            claim = self.mode.enter(pid, uid=peer_uid)
            self._remember_label(pid, req)
            try:
                self.watcher.watch(pid)
            except ProcessLookupError:
                self.mode.leave(pid)
                raise NotFoundError(f"process {pid} exited while entering ML mode") from None
            return {
                "claim": _claim_dict(claim),
                "claims": len(self.mode.claims()),
                "pool": self.groups.relpath("ml") if self.groups is not None else None,
                "applied": self._applied(claim.key),
            }
        if op == "leave":
            pid = int(req.get("pid") or peer_pid)
            mine = [c for c in self.mode.claims() if c.pid == pid]
            if mine and peer_uid != 0 and mine[0].uid != peer_uid:
                raise PermissionDeniedError(f"the claim on process {pid} belongs to another user")
            self._unwatch(pid)
            if self.placer is None or not self.placer.placed(pid):
                self._labels.pop(pid, None)
            before = len(self.applier.journal.pending())
            ended = self.mode.leave(pid)
            return {
                "left": ended,
                "claims": len(self.mode.claims()),
                "ml_mode": self.mode.active,
                "restored": before - len(self.applier.journal.pending()),
                "open": len(self.applier.journal.pending(mine[0].key)) if mine else 0,
            }
        if op == "off":
            left = []
            for c in self.mode.claims():
                if peer_uid in (0, c.uid):
                    self.mode.leave(c.pid)
                    self._unwatch(c.pid)
                    left.append(c.pid)
            return {"left": left, "claims": len(self.mode.claims())}
        if op == "place":
            pid = int(req.get("pid") or peer_pid)
            pool = str(req.get("pool"))
            self._check_owner(pid, peer_uid)
            if self.placer is None:
                why = "; ".join(self.report.why_not("cpu")) or self.report.cpu
                return {"placed": False, "reason": f"no cgroup backend for pools ({why})"}
            placed = self.placer.place(pid, pool)
            self._remember_label(pid, req)
            try:
                self.watcher.watch(pid)
            except ProcessLookupError:
                self.placer.release(pid)
                raise NotFoundError(f"process {pid} exited while being placed") from None
            return {"placed": True, "pool": pool, "claim": placed}
        if op == "status":
            return self.status(exclude_conn=conn)
        if op == "policy-apply":
            self._check_admin(peer_uid)
            if self.groups is None:
                raise ConflictError(
                    "no cgroup backend: pools cannot be weighted here; see `mlk mode status`"
                )
            if req.get("config") is not None:
                self.config = PolicyConfig.from_dict(req["config"])
                self._policy_by = (
                    {"pid": peer_pid, "uid": peer_uid, "since": time.time()}
                    if self.config.windows or self.config.rules or self.config.hold
                    else None
                )
                self._learn(datetime.now(), force=True)
                if self.placer is not None:
                    self.placer.reload(self.effective)
                    self.placer.apply_rules()
            if self.mode.active:
                return {"changes": [], "note": "ML mode is on; the policy resumes when it ends"}
            changes = apply_policy(self.effective, self.groups, self.applier, datetime.now())
            return {"changes": [f"{c.target} {c.knob}: {c.old} -> {c.new}" for c in changes]}
        if op == "shutdown":
            self._check_admin(peer_uid)
            if req.get("if_unused"):
                users = self.users(exclude_conn=conn, exclude_pid=peer_pid)
                if users:
                    return {"stopping": False, "pid": os.getpid(), "users": users}
            return {"stopping": True, "pid": os.getpid()}
        raise UsageError(
            f"unknown op {op!r}; use ping, enter, leave, off, status, policy-apply or shutdown"
        )

    def _applied(self, key: str) -> list[str]:
        """What ML mode changed for claim ``key`` (and for the mode), in a few words each."""
        journal = self.applier.journal
        out: list[str] = []
        job = journal.pending(key)
        moved = [c for c in job if c.knob.startswith("cgroup")]
        if moved:
            out.append(f"{len(moved)} process(es) moved into {moved[0].new}")
        for knob, what in (("ioprio", "I/O priority best-effort 0"), ("nice", "nice -5")):
            threads = [c for c in job if c.knob == knob]
            if threads:
                out.append(f"{what} on {len(threads)} thread(s)")
        weights = [c for c in journal.pending("mode") if c.target.startswith("path:")]
        if weights:
            out.append(f"{len(weights)} pool weight(s) set")
        held = {c.target for c in journal.pending("hold") if c.target.startswith("pid:")}
        held |= {c.target for c in journal.pending("hold") if c.target.startswith("tid:")}
        if held:
            out.append(f"{len(held)} other process(es)/thread(s) held back")
        return out

    def _remember_label(self, pid: int, req: Mapping[str, Any]) -> None:
        label = req.get("label")
        if isinstance(label, str) and label:
            self._labels[pid] = label[:200]

    def users(
        self, exclude_conn: int | None = None, exclude_pid: int | None = None
    ) -> list[dict[str, Any]]:
        """What still needs this controller: live claims, ``mlk mode run`` placements, other
        connected clients that claimed or placed something (a pipeline run holds one between
        its steps), and a policy someone applied with windows or rules. Rule placements are
        the policy's own work, not users."""
        assert self.mode is not None
        out: list[dict[str, Any]] = []
        listed: set[int] = set()
        for c in self.mode.claims():
            out.append(
                {
                    "kind": "claim",
                    "pid": c.pid,
                    "uid": c.uid,
                    "since": c.since,
                    "what": self._what(c.pid),
                }
            )
            listed.add(c.pid)
        for p in self._placements():
            if p["by"] == "run" and p["pid"] not in listed:
                out.append(
                    {
                        "kind": "placement",
                        "pid": p["pid"],
                        "pool": p["pool"],
                        "what": self._what(p["pid"]),
                    }
                )
                listed.add(p["pid"])
        with self._users_lock:  # pings and status calls come and go: not users
            conns = [v for k, v in self._conns.items() if k in self._working and k != exclude_conn]
        for sock, pid, uid in conns:
            if pid in listed or pid == exclude_pid or pid == os.getpid() or _hung_up(sock):
                continue
            out.append({"kind": "client", "pid": pid, "uid": uid, "what": self._what(pid)})
            listed.add(pid)
        if self._policy_by is not None:
            out.append(
                {
                    "kind": "policy",
                    **self._policy_by,
                    "what": f"a policy applied by uid {self._policy_by['uid']} "
                    "(`mlk policy apply`)",
                }
            )
        return out

    def _what(self, pid: int) -> str:
        """A claimed or connected process in words: its client's label, else its command."""
        label = self._labels.get(pid)
        if label:
            return label
        return _proc.command_line(pid) or f"process {pid}"

    def _unwatch(self, pid: int) -> None:
        """Stop watching ``pid`` unless an explicit placement still needs its exit."""
        if self.placer is None or not self.placer.placed(pid):
            self.watcher.unwatch(pid)

    def status(self, exclude_conn: int | None = None) -> dict[str, Any]:
        """Everything ``mlk mode status`` shows; ``users`` leaves out the asker's connection."""
        assert self.mode is not None and self.report is not None
        now = datetime.now()
        label, weights = self.effective.weights_at(now, ml_mode=self.mode.active)
        learned = self.learned
        history: dict[str, Any] | None = None
        if self.history is not None:
            history = {"path": str(self.history.path), **self.history.counts()}
        return {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "started_at": self.started_at,
            "started_by": self.started_by,
            "users": self.users(exclude_conn=exclude_conn),
            "runtime_dir": str(self.runtime_dir),
            "ml_mode": self.mode.active,
            "claims": [_claim_dict(c) for c in self.mode.claims()],
            "backends": self.report.to_dict(),
            "why_not": {r: self.report.why_not(r) for r in ("cpu", "io", "memory", "pause")},
            "pools": str(self.groups.base) if self.groups else None,
            "window": label,
            "weights": weights,
            "journal_open": len(self.applier.journal.pending()),
            "recovered_at_start": len(self.recovered.restored),
            "state_dir": str(self.state_dir),
            "policy": {
                "mode": self.config.policy,
                "learned": None
                if learned is None
                else {"ok": learned.ok, "reason": learned.reason, "windows": learned.windows},
                "rules": len(self.config.rules),
            },
            "placements": self._placements(),
            "history": history,
        }

    def _placements(self) -> list[dict[str, Any]]:
        out = []
        for c in self.applier.journal.pending():
            if c.claim == "place" or c.claim.startswith("run:"):
                kind = "rule" if c.claim == "place" else "run"
                out.append({"pid": int(c.target[4:]), "pool": c.new.rsplit("/", 1)[-1], "by": kind})
        return out

    @staticmethod
    def _check_owner(pid: int, peer_uid: int) -> None:
        try:
            owner = _proc.uid_of(pid)
        except ProcessLookupError:
            raise NotFoundError(f"process {pid} does not exist") from None
        if peer_uid not in (0, owner):
            raise PermissionDeniedError(
                f"process {pid} belongs to uid {owner}; you (uid {peer_uid}) may claim only your own"
            )

    @staticmethod
    def _check_admin(peer_uid: int) -> None:
        if peer_uid not in (0, os.getuid()):
            raise PermissionDeniedError("only root or the controller's user may do this")


def _hung_up(sock: socket.socket) -> bool:
    """Whether the client closed ``sock`` though its serving thread has not seen it yet."""
    import select

    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (OSError, ValueError):
        return True


def _claim_dict(c: Any) -> dict[str, Any]:
    return {"pid": c.pid, "uid": c.uid, "start": c.start, "since": c.since}


def main(argv: list[str] | None = None) -> int:
    """Run a controller in the foreground (the client starts it as a daemon)."""
    ap = argparse.ArgumentParser(prog="python -m mlkernel.sched.controller")
    ap.add_argument("--runtime-dir", type=Path, default=None)
    ap.add_argument("--config", default=None, help="the [sched] table as JSON")
    ap.add_argument("--cgroup-root", type=Path, default=CGROUP_ROOT)
    ap.add_argument("--state-dir", type=Path, default=None, help="where the load history lives")
    ap.add_argument(
        "--started-by", default=None, help="the process that started it, as JSON (the client)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = PolicyConfig.from_dict(json.loads(args.config) if args.config else None)
    started_by = json.loads(args.started_by) if args.started_by else {"pid": os.getppid()}
    ctl = Controller(args.runtime_dir, config, args.cgroup_root, args.state_dir, started_by)
    try:
        ctl.start()
    except MLKernelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    signal.signal(signal.SIGTERM, lambda *_: ctl._stop.set())
    signal.signal(signal.SIGINT, lambda *_: ctl._stop.set())
    log.info("scheduler controller %d serving %s", os.getpid(), ctl.socket_path)
    ctl.wait()
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
