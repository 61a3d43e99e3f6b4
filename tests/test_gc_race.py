"""gc beside writers: it never deletes an object that a registration in flight will reference.

The writers hold the object store's shared lock from putting (or finding) an object until
the artifact referencing it is committed; gc re-reads the referenced digests under the
exclusive lock before it deletes, and leaves young objects alone (mlkernel.gclock).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mlkernel.kernel import Kernel

LONG_AGO = time.time() - 7200  # older than the grace period and the hour for temporary files


def _age(path: Path) -> None:
    os.utime(path, (LONG_AGO, LONG_AGO))


def _mlk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlkernel", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_young_unreferenced_objects_are_left_and_reported(project: Kernel) -> None:
    young, _ = project.context.objects.put_bytes(f"just written {project.name}".encode())
    old, _ = project.context.objects.put_bytes(f"left behind {project.name}".encode())
    _age(project.context.objects.path(old))

    report = project.gc(dry_run=False)
    assert report.removed == [old] and report.young == [young]
    assert project.context.objects.exists(young) and not project.context.objects.exists(old)

    shown = _mlk(project.root, "gc", "--apply")
    assert shown.returncode == 0, shown.stderr
    assert "skipped 1 unreferenced objects younger than 600 s" in shown.stdout
    listed = json.loads(_mlk(project.root, "gc", "--apply", "--grace", "0", "--json").stdout)
    assert listed["removed"] == [young] and listed["young"] == [] and listed["grace"] == 0
    assert not project.context.objects.exists(young)

    refused = _mlk(project.root, "gc", "--grace", "-1")
    assert refused.returncode not in {0, 70}
    assert "grace is -1.0 seconds; use 0 or more" in refused.stderr


def test_finding_an_object_already_stored_makes_it_young_again(project: Kernel) -> None:
    digest, _ = project.context.objects.put_bytes(f"reusable {project.name}".encode())
    _age(project.context.objects.path(digest))
    assert project.gc().removed == [digest]  # a candidate
    assert project.context.objects.put_bytes(f"reusable {project.name}".encode())[0] == digest
    assert project.gc(dry_run=False).young == [digest]
    assert project.context.objects.exists(digest)


def test_an_artifact_registered_while_gc_runs_keeps_its_object(project: Kernel) -> None:
    """The dedupe race, made to happen: between gc's first read of the referenced digests
    and its delete phase, a writer finds the (old, unreferenced) object and registers it."""
    content = f"reused {project.name}".encode()  # unique: digests other projects reference are kept
    digest, _ = project.context.objects.put_bytes(content)
    _age(project.context.objects.path(digest))
    reads = 0
    real = project.context.meta.referenced_digests

    def referenced() -> set[str]:
        nonlocal reads
        reads += 1
        found = real()
        if reads == 1:  # gc has chosen its candidates; now a writer reuses one
            project.log_artifact(content, kind="file", name="reuse")
        return found

    project.context.meta.referenced_digests = referenced  # type: ignore[method-assign]
    report = project.gc(dry_run=False, grace=0)
    assert digest not in report.removed
    project.verify()
    assert project.load("file:reuse") == content


REGISTER_LATER = textwrap.dedent(
    """
    import sys
    import mlkernel

    k = mlkernel.open(sys.argv[1])
    with k.context.objects.writing():  # as an ingest does, from the move into the store to the commit
        digest, size = k.context.objects.put_bytes(f"in flight {k.name}".encode())
        print(digest, flush=True)
        sys.stdin.readline()
        k.context.meta.register_artifact(
            "file", "flight", digest=digest, uri=k.context.objects.uri(digest), size=size,
            properties={"format": "bytes"}, created_by="test", execution_id=None,
        )
    k.close()
    """
)


def test_gc_waits_for_a_registration_in_flight_in_another_process(project: Kernel) -> None:
    """With no grace period the lock alone protects: gc's delete phase waits until the
    other process has committed the artifact that references its new object."""
    child = subprocess.Popen(
        [sys.executable, "-c", REGISTER_LATER, str(project.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    digest = child.stdout.readline().strip()
    real = project.context.meta.referenced_digests
    reads = 0

    def referenced() -> set[str]:
        nonlocal reads
        reads += 1
        found = real()
        if reads == 1:  # objects listed, the new one unreferenced: let it register now
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        return found

    project.context.meta.referenced_digests = referenced  # type: ignore[method-assign]
    try:
        report = project.gc(dry_run=False, grace=0)
    finally:
        child.communicate(timeout=120)
    assert child.returncode == 0
    assert digest not in report.removed and reads == 2
    assert project.load("file:flight") == f"in flight {project.name}".encode()


def test_gc_waits_for_another_threads_registration(project: Kernel) -> None:
    digest, size = project.context.objects.put_bytes(f"thread {project.name}".encode())
    _age(project.context.objects.path(digest))
    holding, go = threading.Event(), threading.Event()

    def register() -> None:
        with project.context.objects.writing():
            holding.set()
            go.wait(60)
            project.context.meta.register_artifact(
                "file", "threaded", digest=digest, uri=project.context.objects.uri(digest), size=size,
                properties={}, created_by="test", execution_id=None,
            )  # fmt: skip

    writer = threading.Thread(target=register)
    writer.start()
    holding.wait(60)
    real = project.context.meta.referenced_digests

    def referenced() -> set[str]:
        found = real()
        go.set()  # candidates listed: the other thread may commit now
        return found

    project.context.meta.referenced_digests = referenced  # type: ignore[method-assign]
    try:
        report = project.gc(dry_run=False, grace=0)
    finally:
        go.set()
        writer.join(60)
    assert digest not in report.removed and project.context.objects.exists(digest)


def test_gc_from_inside_a_registration_is_refused(project: Kernel) -> None:
    from mlkernel.errors import UsageError

    # Content of its own: digests referenced by other projects in the database are kept.
    digest, _ = project.context.objects.put_bytes(f"gc from inside {project.name}".encode())
    _age(project.context.objects.path(digest))
    with project.context.objects.writing(), pytest.raises(UsageError, match="while this thread"):
        project.gc(dry_run=False)


def test_cached_copies_of_collected_versions_go_with_them(project: Kernel, tmp_path: Path) -> None:
    """The rows-layout matrix and the Parquet copy live in cache/data, named after the
    version's digest: gc removes those of digests no artifact references any more."""
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    kept = project.data.add(csv, name="t", progress=False).record
    project.data.open("dataset:t", layout="rows")
    project.data.parquet_path("dataset:t")
    cache = project.config.state_dir / "cache" / "data"
    orphan = "f" * 64
    for name in (f"{orphan}.parquet", f"{orphan}-float64-all.npy", f"{orphan}-float64-all.json"):
        (cache / name).write_bytes(b"left by a version gc collected")
        _age(cache / name)
    for entry in cache.iterdir():
        if entry.name.startswith(kept.digest):
            _age(entry)

    report = project.gc(dry_run=False)
    assert sorted(report.removed) == sorted(
        f"data/{orphan}{s}" for s in (".parquet", "-float64-all.npy", "-float64-all.json")
    )
    assert sorted(p.name[:64] for p in cache.iterdir()) == [kept.digest] * 3
    assert project.data.open("dataset:t", layout="rows").matrix.shape == (2, 2)


def test_verify_checks_companion_objects(project: Kernel, tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("a\n1\n2\n")
    record = project.data.add(csv, name="p", parquet=True, progress=False).record
    companion = record.properties["objects"]["parquet"]
    assert project.verify() == []
    path = project.context.objects.path(companion)
    os.chmod(path, 0o644)
    path.unlink()
    problems = project.verify()
    assert [(r.ref, "missing" in p) for r, p in problems] == [(record.ref, True)]


# -- several processes at once ---------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import os, sys, time
    import mlkernel

    root, role, me, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    stop = os.path.join(root, "stop")
    k = mlkernel.open(root)
    done = 0
    if role == "gc":
        while not os.path.exists(stop):
            k.gc(dry_run=False, grace=0)  # the lock alone protects the writers
            done += 1
    elif role == "ingest":
        for i in range(count):
            path = os.path.join(root, f"in-{me}-{i}.csv")
            with open(path, "w") as f:
                f.write("x,y\\n" + "".join(f"{me},{i * 100 + j}\\n" for j in range(20)))
            k.data.add(path, name=f"d{me}-{i % 3}", progress=False)
            done += 1
    elif role == "register":
        for i in range(count):
            # An unreferenced object, then (often) an artifact with that same content:
            # the dedupe path, where the writer finds the object gc is about to delete.
            k.context.objects.put_bytes(f"junk {me} {i}".encode())
            if i % 2:
                k.log_artifact(f"junk {me} {i - 1}".encode(), kind="model", name=f"m{me}")
            else:
                k.log_artifact(f"fresh {me} {i}".encode(), kind="model", name=f"m{me}")
            done += 1
    elif role == "aliases":
        mapped = []  # Arrow files kept memory-mapped while gc runs
        while not os.path.exists(stop):
            for record in k.ls("model"):
                k.alias_set(record.ref, "prod")
                k.load(f"model:{record.name}@prod")
            for record in k.ls("dataset"):
                mapped.append(k.data.open(record.ref))
            done += 1
            time.sleep(0.05)
        assert all(t.column("x").to_pylist() == [t.column("x")[0].as_py()] * 20 for t in mapped)
    elif role == "verify":
        while not os.path.exists(stop):
            problems = k.verify()
            assert not problems, problems[0][1]
            done += 1
            time.sleep(0.05)
    k.close()
    print(role, done)
    """
)

INGESTERS, FILES, REGISTRARS, ARTIFACTS, ORPHANS = 2, 8, 2, 40, 600


@pytest.mark.slow
def test_gc_ingest_registration_aliases_and_reads_together(project: Kernel) -> None:
    root = project.root
    for i in range(ORPHANS):  # old garbage, so that gc has something to do
        digest, _ = project.context.objects.put_bytes(f"orphan {i}".encode())
        _age(project.context.objects.path(digest))

    def start(role: str, me: int, count: int = 0) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), role, str(me), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    loops = [start("gc", 0), start("aliases", 0), start("verify", 0)]
    writers = [start("ingest", i, FILES) for i in range(INGESTERS)]
    writers += [start("register", i, ARTIFACTS) for i in range(REGISTRARS)]
    results = [w.communicate(timeout=300) for w in writers]
    (root / "stop").touch()
    results += [p.communicate(timeout=300) for p in loops]
    for proc, (out, err) in zip(writers + loops, results, strict=True):
        assert proc.returncode == 0, err[-2000:]
        role, _, done = out.strip().partition(" ")
        assert int(done) > 0 or role == "aliases", out  # each loop ran at least once

    problems = project.verify()
    assert problems == [], [f"{r.ref}: {p}" for r, p in problems[:5]]
    versions = [
        v for last in project.ls() for v in project.context.table.versions(last.kind, last.name)
    ]
    datasets = [v for v in versions if v.kind == "dataset"]
    models = [v for v in versions if v.kind == "model"]
    assert len(datasets) == INGESTERS * FILES and len(models) == REGISTRARS * ARTIFACTS
    for record in datasets:
        assert project.data.open(record.ref).num_rows == 20
    for record in models:
        assert project.load(record.ref, verify=True).startswith((b"junk", b"fresh"))


def test_temporary_files_of_live_writers_stay_however_old(project: Kernel) -> None:
    """A slow writer's temporary file is not a crash's leftover while its process lives."""
    tmp = project.context.objects.staging
    tmp.mkdir(parents=True, exist_ok=True)
    live = tmp / f"data-{os.getpid()}-slowingest.arrow"
    dead = tmp / "obj-999999999-crashed"
    for path in (live, dead):
        path.write_bytes(b"partial")
        _age(path)
    report = project.gc(dry_run=False)
    assert report.removed == ["tmp/obj-999999999-crashed"]
    assert live.exists() and not dead.exists()
