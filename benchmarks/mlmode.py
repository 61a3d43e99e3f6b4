"""Benchmark: does ML mode give a training loop the machine, and does the policy protect prod?

Part 1, throughput: a 2-thread CPU-bound training loop (numpy matmul on small matrices,
BLAS single-threaded so each Python thread is one busy core, the GIL released inside BLAS)
against 2 CPU hogs, each started in its own session (the realistic "someone else's jobs"
case, where autogroup cancels plain nice). Conditions: solo, contended, contended in ML mode
(the trainer claimed through the real controller). Steps/s after a warm-up; median of N runs.

Part 2, latency: a prod-pool request loop (a fixed slice of CPU work, then a pause, like a
model server) while batch hogs saturate the CPUs, without and with the policy
(``daily 00-24: prod 90 / batch 10``, processes placed in their pool groups).

    python benchmarks/mlmode.py            # 5 runs x 20 s
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


def serve_once(dur: float, pool: str | None, groups: object | None) -> tuple[float, float]:
    p = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(dur), "2", "8"], stdout=subprocess.PIPE, text=True
    )
    if pool is not None and groups is not None:
        groups.move(p.pid, pool)  # type: ignore[attr-defined]
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
    client = Client(rd, config={"parent": parent})
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
                        groups.move(h.pid, "batch")
                    lat["batch load, policy"].append(serve_once(args.seconds, "prod", groups))
                    client.policy_apply({"parent": parent})
            finally:
                stop(hogs)
    finally:
        client.shutdown()
        client.close()
        time.sleep(0.5)
        if groups is not None:
            groups.remove()
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
    for name, vals in lat.items():
        if not vals:
            print(f"  {name:40s}  (no cgroup backend)")
            continue
        p50 = statistics.median(v[0] for v in vals)
        p95 = statistics.median(v[1] for v in vals)
        print(f"  {name:40s} {p50:10.2f} {p95:11.2f} {p95 / idle95:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
