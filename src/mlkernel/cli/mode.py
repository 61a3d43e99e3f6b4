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
from typing import Any


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


def _runtime(args: argparse.Namespace) -> Any:
    from pathlib import Path

    return Path(args.runtime_dir) if getattr(args, "runtime_dir", None) else None


def status_cmd(args: argparse.Namespace) -> int:
    import json

    from mlkernel.sched.service import machine_status

    status = machine_status(_runtime(args))
    data = status.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    b = status.backends
    t = Table(title="scheduler backends")
    for col in ("resource", "active", "why not better"):
        t.add_column(col)
    for res in ("cpu", "io", "memory", "pause"):
        t.add_row(res, b[res], "\n".join(status.why_not[res]) or "-")
    con = Console(highlight=False, soft_wrap=True)
    con.print(t)
    priv = "privileged" if b["privileged"] else "unprivileged: reversible knobs only"
    con.print(f"priority: {priv}; autogroup {'on' if b['autogroup'] else 'off'}")
    if not status.running:
        con.print("controller: not running (it starts with the first `mlk mode ml`)")
    else:
        for line in controller_lines(data):
            con.print(line, markup=False)  # commands may hold [brackets]
        con.print(
            f"ML mode {'ON' if status.ml_mode else 'off'}; "
            f"{len(status.claims)} claim(s); window {data.get('window')}"
        )
        pol = data.get("policy") or {}
        learned = pol.get("learned")
        con.print(
            f"policy: {pol.get('mode', 'static')}"
            + (f" ({learned['reason']})" if learned else "")
            + f"; {pol.get('rules', 0)} placement rule(s)"
        )
        for p in data.get("placements", []):
            con.print(f"  pid {p['pid']} in {p['pool']} (by {p['by']})")
        hist = data.get("history")
        if hist:
            con.print(f"load history: {hist['path']} ({hist['hourly']} hourly rows)")
    return 0


def controller_lines(data: dict[str, Any]) -> list[str]:
    """The controller in words: pid, since when, who started it, what uses it."""
    from mlkernel.cli.render import human_time
    from mlkernel.sched.client import describe_user

    head = f"controller: pid {data['pid']}"
    if data.get("uid") is not None:
        head += f" (uid {data['uid']})"
    if data.get("started_at"):
        head += f", running since {human_time(float(data['started_at']))}"
    lines = [head]
    by = data.get("started_by") or {}
    if by:
        who = f"  started by pid {by.get('pid')}"
        if by.get("user"):
            who += f" ({by['user']})"
        if by.get("command"):
            who += f": {by['command']}"
        if by.get("label"):
            who += f" [{by['label']}]"
        lines.append(who)
    users = data.get("users")
    if users is not None:
        if users:
            lines.append("  used by:")
            lines += [f"    {describe_user(u)}" for u in users]
        else:
            lines.append("  used by: nothing; `mlk mode stop` stops it (restoring everything)")
    return lines


def stop_cmd(args: argparse.Namespace) -> int:
    import json

    from mlkernel.errors import ConflictError
    from mlkernel.sched.client import describe_user, stop_if_unused

    result = stop_if_unused(_runtime(args), force=args.force)
    if args.json:
        print(json.dumps({"pid": result.pid, "stopped": result.stopped, "users": result.users}))
    if result.pid is None:
        if not args.json:
            print("no scheduler controller runs; nothing to stop")
        return 0
    if not result.stopped:
        users = "; ".join(describe_user(u) for u in result.users)
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

    from mlkernel.sched.client import Client

    with Client(_runtime(args)) as c:
        answer = c.enter(pid)
    if args.json:
        print(json.dumps(answer))
    else:
        pool = answer.get("pool") or "no pool (no cgroup backend)"
        applied = "; ".join(answer.get("applied") or []) or "nothing to change"
        print(
            f"ML mode on for process {pid} ({answer['claims']} claim(s) active): "
            f"pool {pool}; {applied}"
        )
    return 0


def _off(args: argparse.Namespace, pid: int | None) -> int:
    from mlkernel.sched.client import Client

    with Client(_runtime(args), autostart=False) as c:
        left = [pid] if pid is not None and c.leave(pid) else ([] if pid is not None else c.off())
    print(f"ML mode released for {', '.join(map(str, left)) or 'no process'}")
    return 0


def _run(args: argparse.Namespace, cmd: list[str]) -> int:
    """Claim this process, then start COMMAND: it is born in the ml pool, with every child.
    The claim ends when this process exits, however it exits (the controller's pidfd)."""
    import os
    import sys

    from mlkernel.sched.client import Client

    with Client(_runtime(args)) as c:
        entered = c.enter(os.getpid())
        code: int | None = None
        try:
            code = _spawn(cmd)
            return code
        finally:
            left = c.call("leave", pid=os.getpid())
            if code is not None:
                print(f"mlk: {ml_summary(cmd, code, entered, left)}", file=sys.stderr, flush=True)


def ml_summary(cmd: list[str], code: int, entered: dict[str, Any], left: dict[str, Any]) -> str:
    """What `mlk mode ml -- CMD` did, in one line: pool, mechanisms, whether all came back."""
    import shlex

    command = shlex.join(cmd)
    if len(command) > 60:
        command = command[:57] + "..."
    pool = entered.get("pool") or "no pool (no cgroup backend)"
    applied = "; ".join(entered.get("applied") or []) or "nothing to change"
    restored = int(left.get("restored", 0))
    if left.get("open"):
        back = f"{restored} change(s) undone, {left['open']} still open (see `mlk mode status`)"
    else:
        back = f"restored ({restored} change(s) undone)"
    if left.get("ml_mode"):
        back += f"; ML mode stays on for {left.get('claims')} other claim(s)"
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
    from mlkernel.sched.client import Client

    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise UsageError(f"nothing to run; use `mlk mode run --pool {args.pool} -- COMMAND`")
    with Client(_runtime(args)) as c:
        answer = c.place(os.getpid(), args.pool)
    if not answer["placed"]:
        print(f"mlk: warning: running outside the pools: {answer['reason']}", file=sys.stderr)
    return _spawn(words)
