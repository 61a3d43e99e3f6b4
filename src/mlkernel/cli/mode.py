"""``mlk mode``: ML mode and the scheduler's backends.

mlk mode status [--json]          which backend is active for CPU, I/O, memory, and why
mlk mode ml -- COMMAND ...        run COMMAND in ML mode (like gamemoderun)
mlk mode ml on --pid PID          claim ML mode for a running process
mlk mode ml off [--pid PID]       end your claims (or one)
mlk mode run --pool POOL -- CMD   run COMMAND in the prod, dev or batch pool
mlk mode stop [--force]           stop the machine's controller when nothing uses it
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlkernel.sched.results import Claimed, ControllerState, Released
    from mlkernel.sched.service import SchedService


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mode = sub.add_parser(
        "mode",
        help="ML mode: give ML jobs the machine; show scheduler backends",
        epilog="example: mlk mode ml -- python train.py",
    )
    msub = mode.add_subparsers(dest="mode_command", metavar="SUBCOMMAND", required=True)

    status = msub.add_parser(
        "status",
        help="backends per resource, active claims",
        epilog="example: mlk mode status --json",
    )
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    status.set_defaults(func=status_cmd)

    ml = msub.add_parser(
        "ml",
        help="run a command in ML mode, or turn it on/off for a process",
        usage="mlk mode ml -- COMMAND ... | mlk mode ml on --pid PID | mlk mode ml off [--pid PID]",
        epilog="example: mlk mode ml -- python train.py    # or: mlk mode ml on --pid 4242",
    )
    ml.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    ml.add_argument("--json", action="store_true", help="print JSON for scripts")
    ml.add_argument(
        "words",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="-- then the command to run in ML mode; or `on --pid PID`, `off [--pid PID]`",
    )
    ml.set_defaults(func=ml_cmd)

    run = msub.add_parser(
        "run",
        help="run a command in a pool (prod, dev, batch)",
        usage="mlk mode run --pool {prod,dev,batch} -- COMMAND ...",
        epilog="example: mlk mode run --pool batch -- make report",
    )
    run.add_argument(
        "--pool",
        required=True,
        choices=("prod", "dev", "batch"),
        help="the pool the command is born in",
    )
    run.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    run.add_argument(
        "words", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- then the command to run"
    )
    run.set_defaults(func=run_cmd)

    stop = msub.add_parser(
        "stop",
        help="stop the machine's scheduler controller (restoring everything) if nothing uses it",
        description="Stop the machine's scheduler controller, which restores every value it "
        "changed. It stays when ML-mode jobs, `mlk mode run` jobs, connected clients or an "
        "applied policy still use it, and the command says which (exit 5).",
        epilog="example: mlk mode stop --force",
    )
    stop.add_argument(
        "--force", action="store_true", help="stop it even while something still uses it"
    )
    stop.add_argument(
        "--runtime-dir", default=None, metavar="DIR", help="the controller's runtime directory"
    )
    stop.add_argument("--json", action="store_true", help="print JSON for scripts")
    stop.set_defaults(func=stop_cmd)


def _service(args: argparse.Namespace) -> SchedService:
    """The scheduler for the OS user, at ``--runtime-dir`` (default: the machine's)."""
    from pathlib import Path

    from mlkernel.authz import Actor
    from mlkernel.sched.service import SchedService

    rd = Path(args.runtime_dir) if getattr(args, "runtime_dir", None) else None
    return SchedService(Actor.current(), runtime_dir=rd)


def status_cmd(args: argparse.Namespace) -> int:
    import json

    status = _service(args).status()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    from rich.table import Table

    from mlkernel.cli.render import rich_console

    b = status.backends
    t = Table(title="scheduler backends")
    for col in ("resource", "active", "why not better"):
        t.add_column(col)
    for res in ("cpu", "io", "memory", "pause"):
        t.add_row(res, getattr(b, res), "\n".join(status.why_not[res]) or "-")
    con = rich_console(soft_wrap=True)
    con.print(t)
    priv = "privileged" if b.privileged else "unprivileged: reversible knobs only"
    con.print(f"priority: {priv}; autogroup {'on' if b.autogroup else 'off'}")
    ctl = status.controller
    if ctl is None or status.pid is None:
        con.print("controller: not running (it starts with the first `mlk mode ml`)")
    else:
        for line in controller_lines(status.pid, ctl):
            con.print(line, markup=False)  # commands may hold [brackets]
        con.print(
            f"ML mode {'ON' if status.ml_mode else 'off'}; "
            f"{len(status.claims)} claim(s); window {ctl.window}"
        )
        learned = ctl.policy.learned
        con.print(
            f"policy: {ctl.policy.mode}"
            + (f" ({learned.reason})" if learned else "")
            + f"; {ctl.policy.rules} placement rule(s)"
        )
        for p in ctl.placements:
            con.print(f"  pid {p.pid} in {p.pool} (by {p.by})")
        if ctl.history is not None:
            con.print(f"load history: {ctl.history.path} ({ctl.history.hourly} hourly rows)")
    return 0


def controller_lines(pid: int, ctl: ControllerState) -> list[str]:
    """The controller in words: pid, since when, who started it, what uses it."""
    from mlkernel.cli.render import human_time

    head = f"controller: pid {pid} (uid {ctl.uid})"
    if ctl.started_at:
        head += f", running since {human_time(float(ctl.started_at))}"
    lines = [head]
    by = ctl.started_by
    if by.pid is not None:
        who = f"  started by pid {by.pid}"
        if by.user:
            who += f" ({by.user})"
        if by.command:
            who += f": {by.command}"
        if by.label:
            who += f" [{by.label}]"
        lines.append(who)
    if ctl.users:
        lines.append("  used by:")
        lines += [f"    {u.describe()}" for u in ctl.users]
    else:
        lines.append("  used by: nothing; `mlk mode stop` stops it (restoring everything)")
    return lines


def stop_cmd(args: argparse.Namespace) -> int:
    import json

    from mlkernel.errors import ConflictError

    result = _service(args).stop(force=args.force)
    if args.json:
        print(json.dumps(result.to_dict()))
    if result.pid is None:
        if not args.json:
            print("no scheduler controller runs; nothing to stop")
        return 0
    if not result.stopped:
        users = "; ".join(u.describe() for u in result.users)
        raise ConflictError(
            f"the scheduler controller (pid {result.pid}) is still used by {users}; "
            "left running (end those first, or `mlk mode stop --force`)"
        )
    if not args.json:
        print(
            f"stopped the scheduler controller (pid {result.pid}); every value it changed is restored"
        )
    return 0


def ml_cmd(args: argparse.Namespace) -> int:
    from mlkernel.errors import UsageError

    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    if words and words[0] in ("on", "off"):
        p = argparse.ArgumentParser(prog=f"mlk mode ml {words[0]}")
        p.add_argument(
            "--pid",
            type=int,
            required=words[0] == "on",
            help="the process (default: every claim of yours)",
        )
        opts = p.parse_args(words[1:])
        return _on(args, opts.pid) if words[0] == "on" else _off(args, opts.pid)
    if not words:
        raise UsageError("nothing to run; use `mlk mode ml -- COMMAND`, `on --pid PID` or `off`")
    return _run(args, words)


def _on(args: argparse.Namespace, pid: int) -> int:
    import json

    claimed = _service(args).claim(pid)
    if args.json:
        print(json.dumps(claimed.to_dict()))
    else:
        pool = claimed.pool or "no pool (no cgroup backend)"
        applied = "; ".join(claimed.applied) or "nothing to change"
        print(
            f"ML mode on for process {pid} ({claimed.claims} claim(s) active): "
            f"pool {pool}; {applied}"
        )
    return 0


def _off(args: argparse.Namespace, pid: int | None) -> int:
    sched = _service(args)
    if pid is not None:
        left = [pid] if sched.release(pid).left else []
    else:
        left = list(sched.release_all().left)
    print(f"ML mode released for {', '.join(map(str, left)) or 'no process'}")
    return 0


def _run(args: argparse.Namespace, cmd: list[str]) -> int:
    """Claim this process, then start COMMAND: it is born in the ml pool, with every child.
    The claim ends when this process exits, however it exits (the controller's pidfd)."""
    import os
    import sys

    sched = _service(args)
    claimed = sched.claim(os.getpid())
    code: int | None = None
    try:
        code = _spawn(cmd)
        return code
    finally:
        released = sched.release(os.getpid())
        if code is not None:
            print(f"mlk: {ml_summary(cmd, code, claimed, released)}", file=sys.stderr, flush=True)


def ml_summary(cmd: list[str], code: int, claimed: Claimed, released: Released) -> str:
    """What `mlk mode ml -- CMD` did, in one line: pool, mechanisms, whether all came back."""
    import shlex

    command = shlex.join(cmd)
    if len(command) > 60:
        command = command[:57] + "..."
    pool = claimed.pool or "no pool (no cgroup backend)"
    applied = "; ".join(claimed.applied) or "nothing to change"
    if released.open:
        back = (
            f"{released.restored} change(s) undone, {released.open} still open "
            "(see `mlk mode status`)"
        )
    else:
        back = f"restored ({released.restored} change(s) undone)"
    if released.ml_mode:
        back += f"; ML mode stays on for {released.claims} other claim(s)"
    return f"ML mode for `{command}` (exit {code}): pool {pool}; {applied}; {back}"


def _spawn(cmd: list[str]) -> int:
    """Run ``cmd`` to its end and return its exit code; Ctrl-C stops it too."""
    import subprocess

    from mlkernel.errors import NotFoundError

    try:
        proc = subprocess.Popen(cmd)
    except FileNotFoundError:
        raise NotFoundError(f"command not found: {cmd[0]}") from None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


def run_cmd(args: argparse.Namespace) -> int:
    """Place this process in the pool, then start COMMAND, which is born there with every
    child; the placement ends when this process exits."""
    import os
    import sys

    from mlkernel.errors import UsageError

    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise UsageError(f"nothing to run; use `mlk mode run --pool {args.pool} -- COMMAND`")
    placed = _service(args).place(os.getpid(), args.pool)
    if not placed.placed:
        print(f"mlk: warning: running outside the pools: {placed.reason}", file=sys.stderr)
    return _spawn(words)
