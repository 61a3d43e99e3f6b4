"""Ending a run from outside its process: ``mlk runs cancel ID`` and ``mlk runs fail ID``.

Any run that is ``running`` or ``lost`` (a tracked run, a pipeline run, a step) can be
ended so. A pipeline run that is ``running`` is cancelled as Ctrl-C would (its
process is signalled and ends its steps itself; from another host this is refused, as it
cannot be signalled from here: use ``mlk runs fail``). Every other run is marked
in the database, and with a pipeline run its steps that were still running: a tracked
run's process is not signalled, since mlkernel cannot know what else that process does
(a notebook, a daemon); if it is alive and ends the run later, the state given here
stands and the metrics it still writes are kept. Metrics that a run could not write
when it ended (``.mlkernel/logs/unsaved-run-ID.json``) are written in the same commit.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlkernel.errors import ConflictError, UsageError
from mlkernel.fsutil import pid_alive
from mlkernel.meta.liveness import LOST
from mlkernel.tracking.run import unsaved_path

if TYPE_CHECKING:
    from mlkernel.context import Context
    from mlkernel.meta.records import ExecutionRecord

__all__ = ["ENDINGS", "cancel_pipeline", "end_run"]

ENDINGS = ("cancelled", "failed")


def end_run(ctx: Context, run_id: int, state: str, reason: str | None = None) -> str:
    """End run ``run_id`` as ``state`` (cancelled or failed); the outcome in words:
    ``cancelled``, ``failed``, or ``signalled`` (a live pipeline run was asked to stop
    and has not finished yet)."""
    if state not in ENDINGS:
        raise UsageError(f"a run can be ended as {' or '.join(ENDINGS)}, not {state!r}")
    record = ctx.meta.get_execution(run_id)
    if record.state not in ("running", LOST):
        raise ConflictError(
            f"run {run_id} is not running (it {record.state}); only a running or lost run "
            "can be cancelled or marked failed"
        )
    if record.type == "pipeline" and state == "cancelled" and record.state == "running":
        if record.host != ctx.host:
            raise ConflictError(
                f"run {run_id} runs on host {record.host}; cancel it there with "
                f"`mlk runs cancel {run_id}`, or mark it failed from here with "
                f"`mlk runs fail {run_id}`"
            )
        return cancel_pipeline(ctx, record)  # signals its process
    who = f"by {ctx.actor.name} with `mlk runs {'cancel' if state == 'cancelled' else 'fail'}`"
    if record.state == LOST:
        who += f" (its process {record.pid} on {record.host} had ended)"
    error = f"{state} {who}" + (f": {reason}" if reason else "")
    ids = [run_id]
    if record.context_id is not None and record.type == "pipeline":
        ids += [
            e.id
            for e in ctx.meta.context_executions([record.context_id])
            if e.id != run_id and e.state in ("running", LOST)
        ]
    path = unsaved_path(ctx.config.state_dir, run_id)
    metrics = _unsaved_metrics(run_id, path)
    ended = ctx.meta.end_runs(ids, state, error, metrics)
    if run_id not in ended:
        now = ctx.meta.get_execution(run_id).state
        raise ConflictError(f"run {run_id} ended ({now}) while this command ran; nothing changed")
    if metrics:
        path.unlink(missing_ok=True)
    return state


def cancel_pipeline(ctx: Context, record: ExecutionRecord, wait: float = 15.0) -> str:
    """Stop the running pipeline run ``record``: signal its process (as Ctrl-C would) and
    wait up to ``wait`` seconds for it to end its steps (``cancelled``, or ``signalled``
    if it has not yet); when that process is gone, mark the run and its running steps
    cancelled."""
    if record.host != ctx.host:
        raise ConflictError(
            f"run {record.id} runs on host {record.host}; cancel it there with `mlk runs cancel`"
        )
    if pid_alive(record.pid):
        os.kill(record.pid, signal.SIGINT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if ctx.meta.get_execution(record.id).state != "running":
                return "cancelled"
            time.sleep(0.1)
        return "signalled"
    assert record.context_id is not None
    running = [
        e.id for e in ctx.meta.context_executions([record.context_id]) if e.state == "running"
    ]
    ctx.meta.end_executions(running, "cancelled", "cancelled: its process had ended")
    return "cancelled"


def _unsaved_metrics(run_id: int, path: Path) -> list[tuple[int, str, int, float, float]]:
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
        return [(run_id, str(k), int(s), float(v), float(t)) for k, s, v, t in doc["metrics"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConflictError(
            f"run {run_id}'s unsaved metrics in {path} cannot be read ({exc}); "
            "move the file away to end the run without them"
        ) from None
