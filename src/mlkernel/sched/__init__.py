"""Scheduler: ML mode, pools and time-window policies, load history.

Importing this package is cheap and changes nothing; the submodules are loaded on first
use of a name below. The layers, bottom up::

    _proc, knobs      read and write one knob (nice, policy, ioprio, cgroup, file)
    journal           record before change; restore only what is still ours
    backends          which mechanisms this machine offers (and why not the better ones)
    cgroups           the pool groups ml / prod / dev / batch
    policy            pools, windows, guarantees; plan and apply
    mlmode            the refcounted ML mode over the above
    controller        the machine's daemon on a Unix socket (SO_PEERCRED)
    client            talks to it; ``ml_mode()`` context manager
    history           load samples, hourly roll-up, off-peak suggestions
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkernel.sched.backends import BackendReport, detect
    from mlkernel.sched.client import Client, ml_mode, start_controller
    from mlkernel.sched.controller import Controller
    from mlkernel.sched.history import History, suggest_offpeak
    from mlkernel.sched.journal import Applier, Journal, default_runtime_dir
    from mlkernel.sched.mlmode import MLMode
    from mlkernel.sched.policy import PolicyConfig, apply_policy, plan

__all__ = [
    "Applier",
    "BackendReport",
    "Client",
    "Controller",
    "History",
    "Journal",
    "MLMode",
    "PolicyConfig",
    "apply_policy",
    "default_runtime_dir",
    "detect",
    "ml_mode",
    "plan",
    "start_controller",
    "suggest_offpeak",
]

_WHERE = {
    "BackendReport": "backends",
    "detect": "backends",
    "Client": "client",
    "ml_mode": "client",
    "start_controller": "client",
    "Controller": "controller",
    "History": "history",
    "suggest_offpeak": "history",
    "Applier": "journal",
    "Journal": "journal",
    "default_runtime_dir": "journal",
    "MLMode": "mlmode",
    "PolicyConfig": "policy",
    "apply_policy": "policy",
    "plan": "policy",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"mlkernel.sched.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'mlkernel.sched' has no attribute {name!r}")
