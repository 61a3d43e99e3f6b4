"""The Alembic migrations build exactly the schema declared in meta/schema.py."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from mlkernel.meta.migrations import HEAD, alembic_config, upgrade
from mlkernel.meta.schema import metadata


def test_head_constant_matches_the_scripts() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())  # type: ignore[arg-type]
    assert script.get_current_head() == HEAD


def _diff(url: str) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            upgrade(conn)
            context = MigrationContext.configure(conn)
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_sqlite_schema_matches(tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.postgres
def test_postgres_schema_matches(pg_url: str) -> None:
    import psycopg2

    schema_db = pg_url + "_mig"
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    name = schema_db.rsplit("/", 1)[1]
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        assert _diff(schema_db.replace("postgresql://", "postgresql+psycopg2://")) == []
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
