"""Several real processes writing to one project at once: nothing lost, nothing locked."""

import subprocess
import sys
import textwrap

from mlkernel.kernel import Kernel

WORKER = textwrap.dedent(
    """
    import sys
    import mlkernel

    root, worker = sys.argv[1], int(sys.argv[2])
    runs, metrics, artifacts = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    k = mlkernel.open(root)
    for r in range(runs):
        with k.start_run(f"w{worker}", params={"worker": worker, "run": r}) as run:
            for i in range(metrics):
                run.log_metric("loss", i / metrics)
                if i % 50 == 0:
                    run.flush()  # many small transactions, to provoke lock contention
            for a in range(artifacts):
                run.log_artifact(f"{worker}-{r}-{a}".encode(), kind="model", name="shared")
    k.close()
    print("ok")
    """
)

PROCESSES, RUNS, METRICS, ARTIFACTS = 4, 5, 400, 5


def test_four_writers_lose_nothing(project: Kernel) -> None:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(project.root),
                str(w),
                str(RUNS),
                str(METRICS),
                str(ARTIFACTS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
        assert out.strip() == "ok"

    runs = project.runs(limit=1000)
    assert len(runs) == PROCESSES * RUNS
    assert all(r.state == "completed" for r in runs)
    total = sum(len(project.metrics(r.id)) for r in runs)
    assert total == PROCESSES * RUNS * METRICS
    versions = project.context.table.versions("model", "shared")
    assert [v.version for v in versions] == list(range(1, PROCESSES * RUNS * ARTIFACTS + 1))
    assert len({v.digest for v in versions}) == PROCESSES * RUNS * ARTIFACTS
    for run in runs:
        assert len(project.context.meta.params(run.id)) == 2
