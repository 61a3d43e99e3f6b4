"""Benchmark: does ML mode give a training loop the machine, and does the policy protect prod?

Part 1, throughput: a 2-thread CPU-bound training loop (numpy matmul on small matrices,
BLAS single-threaded so each Python thread is one busy core, the GIL released inside BLAS)
against 2 CPU hogs, each started in its own session (the realistic "someone else's jobs"
case, where autogroup cancels plain nice). Conditions: solo, contended, contended in ML mode
(the trainer claimed through the real controller). Steps/s after a warm-up; median of N runs.

Part 2, latency: a prod-pool request loop (a fixed slice of CPU work, then a pause, like a
model server) while batch hogs saturate the CPUs, without and with the policy
(``daily 00-24: prod 90 / batch 10``, processes placed in their pools by the controller,
as ``mlk mode run --pool`` does).

Part 3, restore: a hog held back by a ``hold`` rule while a job is in ML mode; ``kill -9``
of the job, ML mode again, ``kill -9`` of the controller, a new controller: every nice
value, scheduling policy and ioprio of every thread, the autogroup nice and the cgroup of
the hog and the job must be back to their exact earlier values.

Goals (issue 6), printed as PASS or MISS: contended in ML mode >= 90% of solo throughput;
prod p95 latency under batch load with the policy <= 1.5x idle; restore exact.

    python benchmarks/mlmode.py            # 5 runs x 20 s (about 15 minutes)
    python benchmarks/mlmode.py --quick    # 3 runs x 3 s

Needs root (or a delegated cgroup) for the cgroup backend. Every cgroup it creates is
removed at the end; everything it changes is restored by the controller.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

TRAINER = r"""
import os, sys, threading, time
import numpy as np
warm, dur = float(sys.argv[1]), float(sys.argv[2])
rng = np.random.default_rng(0)
counts = [0, 0]
stop = threading.Event()
def loop(i):
    a = rng.standard_normal((96, 96)); w = rng.standard_normal((96, 96)) * 0.01
    while not stop.is_set():
        for _ in range(20):
            h = np.tanh(a @ w)           # forward
            w -= 1e-4 * (a.T @ h)        # "backward" + update
        counts[i] += 1
ts = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
for t in ts: t.start()
sys.stdout.write("ready\n"); sys.stdout.flush()
time.sleep(warm)
c0 = sum(counts); t0 = time.monotonic()
time.sleep(dur)
c1 = sum(counts); t1 = time.monotonic()
stop.set()
for t in ts: t.join()
print((c1 - c0) / (t1 - t0))
"""

HOG = "while True: pass"

SERVER = r"""
import sys, time
dur, work_ms, pause_ms = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
def work():
    end = time.thread_time() + work_ms / 1000
    x = 0
    while time.thread_time() < end:
        x += 1
lat = []
start = time.monotonic()
while time.monotonic() - start < dur:
    t = time.perf_counter(); work(); lat.append(time.perf_counter() - t)
    time.sleep(pause_ms / 1000)
lat.sort()
print(lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000)
"""

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True) for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def train_once(warm: float, dur: float, client: object | None = None) -> float:
    p = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(warm), str(dur)],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert p.stdout is not None
    p.stdout.readline()  # "ready": threads started
    if client is not None:
        client.enter(p.pid)  # type: ignore[attr-defined]
    out = p.stdout.read()
    p.wait()
    return float(out.strip())


def serve_once(dur: float, pool: str | None, client: object | None) -> tuple[float, float]:
    p = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(dur), "2", "8"], stdout=subprocess.PIPE, text=True
    )
    if pool is not None and client is not None:
        client.place(p.pid, pool)  # type: ignore[attr-defined]
    out, _ = p.communicate()
    p50, p95 = (float(x) for x in out.split())
    return p50, p95


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true", help="3 runs x 3 s, 1 s warm-up")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.seconds, args.warmup = 3, 3.0, 1.0

    from mlkernel.sched.backends import detect
    from mlkernel.sched.cgroups import PoolGroups
    from mlkernel.sched.client import Client

    report = detect()
    print(
        f"backends: cpu={report.cpu} io={report.io}; {os.cpu_count()} CPUs; "
        f"{args.runs} runs x {args.seconds:g} s (warm-up {args.warmup:g} s)"
    )
    parent = f"mlkernel-bench-{uuid.uuid4().hex[:8]}"
    restore_parent = f"{parent}-restore"
    rd = Path(tempfile.mkdtemp(prefix="mlk-bench-"))
    # "solo, ML mode" is the reference that also shuts out background load on a shared VM.
    results: dict[str, list[float]] = {
        "solo": [],
        "solo, ML mode": [],
        "contended": [],
        "contended, ML mode": [],
    }
    lat: dict[str, list[tuple[float, float]]] = {
        "idle": [],
        "batch load, no policy": [],
        "batch load, policy": [],
    }
    client = Client(rd, config={"parent": parent}, announce=None)
    groups = (
        PoolGroups(Path(report.cgroup_mount), report.cgroup_version or 1, "cpu", parent)
        if report.cgroup_mount
        else None
    )
    try:
        for _ in range(args.runs):
            results["solo"].append(train_once(args.warmup, args.seconds))
            results["solo, ML mode"].append(train_once(args.warmup, args.seconds, client))
            hogs = start_hogs(2)
            try:
                results["contended"].append(train_once(args.warmup, args.seconds))
                results["contended, ML mode"].append(train_once(args.warmup, args.seconds, client))
            finally:
                stop(hogs)
        policy = {"parent": parent, "windows": ["daily 00-24: prod 90 / batch 10"]}
        for _ in range(args.runs):
            lat["idle"].append(serve_once(args.seconds, None, None))
            hogs = start_hogs(4)
            try:
                lat["batch load, no policy"].append(serve_once(args.seconds, None, None))
                if groups is not None:
                    client.policy_apply(policy)
                    for h in hogs:
                        client.place(h.pid, "batch")
                    lat["batch load, policy"].append(serve_once(args.seconds, "prod", client))
                    client.policy_apply({"parent": parent})
            finally:
                stop(hogs)
        # The restore check starts and kills controllers of its own; the one above still
        # holds `parent` (one controller per pool parent), so they manage a parent of their own.
        restore = restore_check(restore_parent) if groups is not None else None
    finally:
        controller = int(client.status()["pid"])
        client.shutdown()
        client.close()
        wait_gone(controller)  # it compacts its journal on the way out
        if groups is not None:
            groups.remove()
            PoolGroups(groups.mount, groups.version, "cpu", restore_parent).remove()
        for f in rd.iterdir():
            f.unlink()
        rd.rmdir()

    solo = statistics.median(results["solo"])
    solo_ml = statistics.median(results["solo, ML mode"])
    print("\nthroughput (steps/s)            median     min     max   vs solo  vs solo ML")
    for name, vals in results.items():
        m = statistics.median(vals)
        print(
            f"  {name:28s} {m:8.1f} {min(vals):7.1f} {max(vals):7.1f}   {m / solo:6.2f}  {m / solo_ml:9.2f}"
        )
    idle95 = statistics.median(x[1] for x in lat["idle"])
    print("\nprod request latency (ms, 2 ms of CPU work)   p50 median  p95 median  p95 vs idle")
    for name, pairs in lat.items():
        if not pairs:
            print(f"  {name:40s}  (no cgroup backend)")
            continue
        p50 = statistics.median(v[0] for v in pairs)
        p95 = statistics.median(v[1] for v in pairs)
        print(f"  {name:40s} {p50:10.2f} {p95:11.2f} {p95 / idle95:12.2f}")

    # On a shared machine "solo" is itself slowed by others' load, which ML mode holds back
    # too; judging against the better of the two solo runs keeps the goal honest.
    best_solo = max(solo, solo_ml)
    ml_ratio = statistics.median(results["contended, ML mode"]) / best_solo
    print("\ngoals (issue 6)")
    print(
        f"  {verdict(ml_ratio >= 0.90)}  contended in ML mode >= 0.90 x solo "
        f"(the better of solo and solo in ML mode): {ml_ratio:.2f}"
    )
    if lat["batch load, policy"]:
        lat_ratio = statistics.median(v[1] for v in lat["batch load, policy"]) / idle95
        print(
            f"  {verdict(lat_ratio <= 1.5)}  prod p95 under batch load, policy <= 1.5 x idle: "
            f"{lat_ratio:.2f}"
        )
    else:
        print("  MISS  prod latency with the policy: no cgroup backend on this machine")
    if restore is None:
        print("  MISS  restore after kill -9: no cgroup backend on this machine")
    else:
        print(
            f"  {verdict(not restore)}  restore after kill -9 of the job and the controller: "
            + ("every value back" if not restore else "; ".join(restore))
        )
    return 0


def wait_gone(pid: int, timeout: float = 15.0) -> None:
    """Wait until ``pid`` has exited (or is a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} did not exit within {timeout:g} s")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def snapshot(pid: int, cpu_knob: str) -> dict[str, str]:
    """Every knob mlkernel may turn on ``pid``, per thread where the kernel keeps it so."""
    from mlkernel.sched import _proc, knobs

    snap = {
        "autogroup": knobs.read(f"pid:{pid}", "autogroup"),
        "cgroup": knobs.read(f"pid:{pid}", cpu_knob),
    }
    for i, tid in enumerate(_proc.threads(pid)):
        for knob in ("nice", "policy", "ioprio"):
            snap[f"thread{i}.{knob}"] = knobs.read(f"tid:{tid}", knob)
    return snap


def restore_check(parent: str) -> list[str]:
    """Part 3: the differences left after kill -9 of a job and of the controller (none = PASS)."""
    import signal

    from mlkernel.sched.client import Client

    name = f"mlkhog{uuid.uuid4().hex[:6]}"
    rd = Path(tempfile.mkdtemp(prefix="mlk-bench-restore-"))
    hog = subprocess.Popen(
        [sys.executable, "-c", f"open('/proc/self/comm','w').write('{name}')\n{HOG}"],
        start_new_session=True,
    )
    jobs = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)
    ]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{hog.pid}/comm").read_text().strip() != name:  # it renames itself
        if time.monotonic() > deadline:
            raise RuntimeError("the hog did not start")
        time.sleep(0.02)
    from mlkernel.sched.backends import detect

    report = detect()
    knob = f"cgroup:{report.cgroup_controller}:{report.cgroup_mount}"
    before = {p.pid: snapshot(p.pid, knob) for p in (hog, *jobs)}
    cfg = {"parent": parent, "hold": [{"name": name}]}
    try:
        with Client(rd, config=cfg, announce=None) as c:
            c.enter(jobs[0].pid)
            jobs[0].kill()
            jobs[0].wait()
            deadline = time.monotonic() + 10
            while c.status()["ml_mode"] and time.monotonic() < deadline:
                time.sleep(0.05)
            c.enter(jobs[1].pid)
            first = c.status()["pid"]
        os.kill(first, signal.SIGKILL)
        wait_gone(first)
        with Client(rd, config={"parent": parent}, announce=None) as c:
            second = c.status()["pid"]
            c.shutdown()
        wait_gone(second)
        diffs = []
        for p in (hog, jobs[1]):
            after = snapshot(p.pid, knob)
            diffs += [
                f"pid {p.pid} {k}: {before[p.pid][k]} -> {v}"
                for k, v in after.items()
                if before[p.pid].get(k) != v
            ]
        return diffs
    finally:
        for p in (hog, *jobs):
            p.kill()
            p.wait()
        for f in rd.iterdir():
            f.unlink()
        rd.rmdir()


if __name__ == "__main__":
    sys.exit(main())
