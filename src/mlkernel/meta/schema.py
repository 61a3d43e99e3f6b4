"""The relational metadata model (declared once, here; migrations must agree with it).

Timestamps are seconds since the epoch as floats: cheap to write, the same on SQLite
and PostgreSQL, and exact enough for ordering runs and metrics.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# BigInteger ids become INTEGER PRIMARY KEY (rowid) on SQLite and BIGSERIAL on PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")

project = Table(
    "project",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("root", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("settings", JSON, nullable=False),
)

context = Table(
    "context",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(50), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("properties", JSON, nullable=False),
    UniqueConstraint("project_id", "type", "name", name="uq_context"),
)

execution = Table(
    "execution",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    Column("context_id", ForeignKey("context.id", ondelete="SET NULL"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("type", String(20), nullable=False),  # run | step | pipeline | register
    Column(
        "state", String(20), nullable=False
    ),  # running | completed | failed | cancelled | cached
    Column("cache_key", String(128), nullable=True),
    Column("code_digest", String(128), nullable=True),
    Column(
        "env_artifact_id",
        ForeignKey("artifact.id", use_alter=True, name="fk_exec_env"),
        nullable=True,
    ),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("user", String(100), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("resources", JSON, nullable=True),
    Column("proc_start", Float, nullable=True),  # the process's start time: tells a lost run
    Index("ix_execution_project_started", "project_id", "started_at"),
    Index("ix_execution_cache", "project_id", "cache_key"),
)

artifact = Table(
    "artifact",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(128), nullable=False),
    Column("uri", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("execution_id", ForeignKey("execution.id", ondelete="SET NULL"), nullable=True),
    UniqueConstraint("project_id", "kind", "name", "version", name="uq_artifact_version"),
    Index("ix_artifact_digest", "digest"),
)

alias = Table(
    "alias",
    metadata,
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("alias", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(100), nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("alias", String(200), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),  # NULL: the alias was removed
    Column("at", Float, nullable=False),
    Column("by", String(100), nullable=False),
)

event = Table(
    "event",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("execution_id", ForeignKey("execution.id", ondelete="CASCADE"), nullable=False),
    Column("artifact_id", ForeignKey("artifact.id", ondelete="CASCADE"), nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("at", Float, nullable=False),
    UniqueConstraint("execution_id", "artifact_id", "direction", name="uq_event"),
    Index("ix_event_artifact", "artifact_id", "direction"),
)

param = Table(
    "param",
    metadata,
    Column("execution_id", ForeignKey("execution.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),  # JSON-encoded
)

metric = Table(
    "metric",
    metadata,
    Column("execution_id", ForeignKey("execution.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float, nullable=True),  # NULL is NaN (SQLite binds NaN as NULL)
    Column("ts", Float, nullable=False),
    Index("ix_metric_exec_key_step", "execution_id", "key", "step"),
)

watched_file = Table(
    "watched_file",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", Float, nullable=False),
    Column("digest", String(128), nullable=False),
    Column("dataset", String(200), nullable=False),
    Column("artifact_id", ForeignKey("artifact.id", ondelete="SET NULL"), nullable=True),
    Column("state", String(20), nullable=False),  # ingested | unchanged | failed
    Column("error", Text, nullable=True),
    Column("at", Float, nullable=False),
    UniqueConstraint("project_id", "path", name="uq_watched_file"),
)
