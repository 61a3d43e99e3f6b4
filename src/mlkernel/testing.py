"""Pytest plugin with mlkernel's fixtures (registered through the ``pytest11`` entry point).

Fixtures: ``project`` (a fresh project in a temp dir), ``pg_url`` (a fresh PostgreSQL
database for this test session), ``backend_url`` (parametrised: SQLite, then PostgreSQL).

A test that needs a service this machine lacks calls :func:`need`, which skips with the
printed reason, or fails when ``MLK_REQUIRE_SERVICES=1`` (as CI sets it).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlkernel.kernel import Kernel

PG_ADMIN_URL_ENV = "MLK_TEST_PG"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def services_required() -> bool:
    return os.environ.get("MLK_REQUIRE_SERVICES", "") not in ("", "0")


def need(condition: bool, reason: str) -> None:
    """Skip the calling test with ``reason`` unless ``condition``; fail instead in CI."""
    if condition:
        return
    if services_required():
        pytest.fail(f"required service missing (MLK_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def _pg_admin_url() -> str:
    return os.environ.get(PG_ADMIN_URL_ENV, DEFAULT_PG_ADMIN)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped at the end of the test session."""
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - depends on the install
        need(False, "psycopg2 is not installed; install the 'postgres' extra")
        raise
    admin = _pg_admin_url()
    name = f"mlk_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg2.connect(admin, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        need(False, f"PostgreSQL is not reachable at {admin}: {str(exc).strip()}")
        raise
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the default SQLite file, else a PostgreSQL URL (fresh schema per test)."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def project(tmp_path: Path, backend_url: str | None) -> Iterator[Kernel]:
    """An initialised, open project in a temporary folder, on each metadata backend."""
    import mlkernel

    root = tmp_path / "proj"
    options: dict[str, Any] = {}
    if backend_url is not None:
        options["metadata_url"] = backend_url
    k = mlkernel.init(root, name=f"p{uuid.uuid4().hex[:8]}", **options)
    try:
        yield k
    finally:
        k.close()


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Iterator[Kernel]:
    """An initialised project on the default SQLite backend only."""
    import mlkernel

    k = mlkernel.init(tmp_path / "proj", name="proj")
    try:
        yield k
    finally:
        k.close()


@pytest.fixture(scope="session", autouse=True)
def _stop_the_machines_controller_tests_started(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """At the end of a test session, stop the machine's scheduler controller if a test of
    this run started it (its ``started_by`` folder lies under this run's temp folders)
    and nothing uses it any more: tests that run pipelines in ML mode start it, and it
    would outlive the run (and, in CI, the clone whose Python it runs)."""
    yield
    from mlkernel.authz import Actor
    from mlkernel.errors import MLKernelError
    from mlkernel.sched.service import SchedService

    base = tmp_path_factory.getbasetemp()
    runs_root = str(base.parent if base.name.startswith("popen-gw") else base)
    sched = SchedService(Actor.current())
    try:
        controller = sched.status().controller
        started_in = (controller.started_by.cwd if controller is not None else None) or ""
        if started_in.startswith(runs_root):
            sched.stop()
    except (MLKernelError, OSError, AttributeError, KeyError, TypeError, ValueError):
        pass  # no controller, or one that cannot be asked: nothing of ours to stop


def run_mlk(
    *args: str, cwd: Path | None = None, columns: int | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``mlk ARGS`` as a real subprocess of this Python, as a user runs it: no
    ``MLK_DEBUG`` (errors are the one-line kind), ``COLUMNS`` set when given (tables at a
    known width); output captured as text."""
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLK_DEBUG"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "mlkernel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def start_mlk(root: Path, *args: str) -> subprocess.Popen[str]:
    """``mlk -C ROOT ARGS`` started in the background, stdout and stderr together (for
    tests that interrupt it while a step runs)."""
    import sys

    mlk = Path(sys.executable).with_name("mlk")
    return subprocess.Popen(
        [str(mlk), "-C", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], *marks: Path, what: str, timeout: float = 60) -> None:
    """Wait until every file of ``marks`` exists (a step writes one when it has started);
    fail with ``what`` after ``timeout`` seconds, or with ``proc``'s output if it ended."""
    import time

    deadline = time.monotonic() + timeout
    while not all(mark.exists() for mark in marks):
        assert time.monotonic() < deadline, what
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
