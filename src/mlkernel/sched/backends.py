"""Which scheduling mechanisms this machine offers, best first, and why the better ones are not.

Order per resource (reference/os.md, section 4):

- CPU: cgroup v2 ``cpu.weight`` > cgroup v1 ``cpu.shares`` > scheduling priority (nice on
  every thread, autogroup nice, SCHED_BATCH / SCHED_IDLE) > nothing.
- I/O: cgroup v2 ``io.weight`` > v1 ``blkio`` weights (only under the bfq disk scheduler)
  > ioprio > nothing.
- Memory: v2 ``memory.high`` > v1 soft limits > raising ``oom_score_adj`` of held-back work.
- Pause: v2 ``cgroup.freeze`` > v1 freezer > SIGSTOP/SIGCONT.

Without privileges only knobs that can be undone are used (``reversible_only``): raising
nice is one-way when RLIMIT_NICE is 0, and leaving SCHED_IDLE needs CAP_SYS_NICE.
"""

from __future__ import annotations

import os
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["BackendReport", "Mechanism", "detect"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CAP_SYS_NICE = 23


@dataclass(frozen=True)
class Mechanism:
    """One mechanism for one resource: whether it can be used here, and the evidence."""

    resource: str
    name: str
    available: bool
    detail: str


@dataclass(frozen=True)
class BackendReport:
    """The active backend per resource, with every mechanism considered."""

    cpu: str
    io: str
    memory: str
    pause: str
    privileged: bool
    rlimit_nice: int
    autogroup: bool
    cgroup_version: int | None
    cgroup_mount: str | None
    cgroup_controller: str
    mechanisms: tuple[Mechanism, ...] = field(default_factory=tuple)

    @property
    def reversible_only(self) -> bool:
        return not self.privileged

    def why_not(self, resource_name: str) -> list[str]:
        """The reasons the mechanisms better than the active one are not used."""
        active = getattr(self, resource_name)
        out = []
        for m in self.mechanisms:
            if m.resource != resource_name:
                continue
            if m.name == active:
                break
            out.append(f"{m.name}: {m.detail}")
        return out

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["reversible_only"] = self.reversible_only
        d["mechanisms"] = [asdict(m) for m in self.mechanisms]
        return d


def _has_cap(bit: int) -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:  # pragma: no cover - /proc is always there on Linux
        pass
    return os.geteuid() == 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def _unified(root: Path) -> Path | None:
    """The cgroup v2 mount: the root itself (pure v2) or ``<root>/unified`` (hybrid)."""
    for cand in (root, root / "unified"):
        if (cand / "cgroup.controllers").exists():
            return cand
    return None


def _disk_schedulers() -> dict[str, str]:
    out: dict[str, str] = {}
    base = Path("/sys/block")
    if not base.is_dir():
        return out
    for dev in sorted(base.iterdir()):
        if dev.name.startswith(("loop", "ram", "zram")):
            continue
        text = _read(dev / "queue" / "scheduler") or ""
        active = next((w[1:-1] for w in text.split() if w.startswith("[")), "none")
        out[dev.name] = active
    return out


def _v1(root: Path, controller: str) -> Path | None:
    for cand in sorted(root.glob(f"*{controller}*")) if root.is_dir() else []:
        if controller in cand.name.split(",") and cand.is_dir():
            return cand
    return None


def detect(root: Path = CGROUP_ROOT) -> BackendReport:
    """Probe this machine (cheap: a few stat and read calls) and choose a backend per resource."""
    mechs: list[Mechanism] = []
    privileged = os.geteuid() == 0 or _has_cap(_CAP_SYS_NICE)
    rlimit_nice = resource.getrlimit(resource.RLIMIT_NICE)[0]
    autogroup = _read(Path("/proc/sys/kernel/sched_autogroup_enabled")) == "1"

    uni = _unified(root)
    ctrls = (_read(uni / "cgroup.controllers") or "").split() if uni else []
    uni_w = uni is not None and os.access(uni, os.W_OK)

    def v2(res: str, ctrl: str, knob: str) -> Mechanism:
        if uni is None:
            return Mechanism(res, "cgroup-v2", False, f"no cgroup2 hierarchy under {root}")
        if ctrl not in ctrls:
            only = ", ".join(ctrls) if ctrls else "none"
            return Mechanism(
                res,
                "cgroup-v2",
                False,
                f"{ctrl} controller not enabled in {uni} (only {only}); it is bound to cgroup v1",
            )
        if not uni_w:
            return Mechanism(
                res, "cgroup-v2", False, f"{uni} is not writable (not root, not delegated)"
            )
        return Mechanism(res, "cgroup-v2", True, f"{knob} in {uni}")

    def v1(res: str, ctrl: str, knob: str) -> tuple[Mechanism, Path | None]:
        mount = _v1(root, ctrl)
        if mount is None:
            return Mechanism(res, "cgroup-v1", False, f"no v1 {ctrl} hierarchy under {root}"), None
        if not os.access(mount, os.W_OK):
            return (
                Mechanism(
                    res, "cgroup-v1", False, f"{mount} is not writable (not root, not delegated)"
                ),
                None,
            )
        return Mechanism(res, "cgroup-v1", True, f"{knob} in {mount}"), mount

    # CPU
    cpu_v2 = v2("cpu", "cpu", "cpu.weight")
    cpu_v1, cpu_mount = v1("cpu", "cpu", "cpu.shares / cpu.idle")
    if privileged:
        prio_detail = "nice on every thread, autogroup nice, SCHED_BATCH/SCHED_IDLE"
        if autogroup:
            prio_detail += (
                " (autogroup on: nice acts only inside a session unless autogroup nice is set too)"
            )
    else:
        prio_detail = f"unprivileged: SCHED_BATCH and nice only up to RLIMIT_NICE={rlimit_nice} (reversible knobs)"
    cpu_prio = Mechanism("cpu", "priority", True, prio_detail)
    mechs += [cpu_v2, cpu_v1, cpu_prio]
    if cpu_v2.available:
        cpu, cg_version, cg_mount, cg_ctrl = "cgroup-v2", 2, str(uni), ""
    elif cpu_v1.available:
        cpu, cg_version, cg_mount, cg_ctrl = "cgroup-v1", 1, str(cpu_mount), "cpu"
    else:
        cpu, cg_version, cg_mount, cg_ctrl = "priority", None, None, "cpu"

    # I/O
    scheds = _disk_schedulers()
    io_v2 = v2("io", "io", "io.weight")
    io_v1, _ = v1("io", "blkio", "blkio.bfq.weight")
    bfq = [d for d, s in scheds.items() if s == "bfq"]
    if io_v1.available and not bfq:
        shown = ", ".join(f"{d} uses {s}" for d, s in scheds.items()) or "no disks found"
        io_v1 = Mechanism(
            "io", "cgroup-v1", False, f"blkio weights need the bfq disk scheduler ({shown})"
        )
    io_prio = Mechanism(
        "io",
        "ioprio",
        True,
        "per-thread I/O class and level" + ("" if bfq else "; mq-deadline honours the class only"),
    )
    mechs += [io_v2, io_v1, io_prio]
    io = next(m.name for m in (io_v2, io_v1, io_prio) if m.available)

    # Memory
    mem_v2 = v2("memory", "memory", "memory.high / memory.low")
    mem_v1, _ = v1("memory", "memory", "memory.soft_limit_in_bytes")
    mem_oom = Mechanism("memory", "oom_score_adj", True, "raise oom_score_adj of held-back work")
    mechs += [mem_v2, mem_v1, mem_oom]
    memory = next(m.name for m in (mem_v2, mem_v1, mem_oom) if m.available)

    # Pause
    frz_v2 = v2("pause", "freezer", "cgroup.freeze")
    if uni is not None and uni_w and "cpu" in ctrls:
        frz_v2 = Mechanism("pause", "cgroup-v2", True, f"cgroup.freeze in {uni}")
    frz_v1, _ = v1("pause", "freezer", "freezer.state")
    frz_sig = Mechanism("pause", "sigstop", True, "SIGSTOP/SIGCONT on the process group")
    mechs += [frz_v2, frz_v1, frz_sig]
    pause = next(m.name for m in (frz_v2, frz_v1, frz_sig) if m.available)

    # Affinity (reported; used only on request)
    cpuset, _ = v1("affinity", "cpuset", "cpuset.cpus")
    mechs += [cpuset, Mechanism("affinity", "sched_setaffinity", True, f"{os.cpu_count()} CPUs")]

    return BackendReport(
        cpu=cpu,
        io=io,
        memory=memory,
        pause=pause,
        privileged=privileged,
        rlimit_nice=rlimit_nice,
        autogroup=autogroup,
        cgroup_version=cg_version,
        cgroup_mount=cg_mount,
        cgroup_controller=cg_ctrl,
        mechanisms=tuple(mechs),
    )
