"""Alembic migrations of the metadata schema, run programmatically on open.

``HEAD`` is checked with one cheap query on every open; Alembic itself is imported only
when the database is behind (a new project, or an upgrade of mlkernel).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

HEAD = "0002"
LOCATION = Path(__file__).parent


def alembic_config(conn: Connection | None = None) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(LOCATION))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Bring the database on ``conn`` (inside a transaction) up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(conn), revision)  # type: ignore[arg-type]
