"""The initial metadata schema: projects, artifacts, aliases, executions, lineage, metrics.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("root", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
    )
    op.create_table(
        "context",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("project.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.UniqueConstraint("project_id", "type", "name", name="uq_context"),
    )
    op.create_table(
        "execution",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", Id, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "context_id", Id, sa.ForeignKey("context.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("cache_key", sa.String(128), nullable=True),
        sa.Column("code_digest", sa.String(128), nullable=True),
        sa.Column("env_artifact_id", Id, nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean, nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("resources", sa.JSON, nullable=True),
    )
    op.create_index("ix_execution_project_started", "execution", ["project_id", "started_at"])
    op.create_index("ix_execution_cache", "execution", ["project_id", "cache_key"])
    op.create_table(
        "artifact",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", Id, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column(
            "execution_id", Id, sa.ForeignKey("execution.id", ondelete="SET NULL"), nullable=True
        ),
        sa.UniqueConstraint("project_id", "kind", "name", "version", name="uq_artifact_version"),
    )
    op.create_index("ix_artifact_digest", "artifact", ["digest"])
    with op.batch_alter_table("execution") as batch:
        batch.create_foreign_key("fk_exec_env", "artifact", ["env_artifact_id"], ["id"])
    op.create_table(
        "alias",
        sa.Column(
            "project_id", Id, sa.ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", Id, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
    )
    op.create_table(
        "event",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id", Id, sa.ForeignKey("execution.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "artifact_id", Id, sa.ForeignKey("artifact.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.UniqueConstraint("execution_id", "artifact_id", "direction", name="uq_event"),
    )
    op.create_index("ix_event_artifact", "event", ["artifact_id", "direction"])
    op.create_table(
        "param",
        sa.Column(
            "execution_id", Id, sa.ForeignKey("execution.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "metric",
        sa.Column(
            "execution_id", Id, sa.ForeignKey("execution.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_index("ix_metric_exec_key_step", "metric", ["execution_id", "key", "step"])


def downgrade() -> None:
    for table in (
        "metric",
        "param",
        "event",
        "alias_history",
        "alias",
        "artifact",
        "execution",
        "context",
        "project",
    ):
        op.drop_table(table)
