"""Non-finite metrics, the liveness of runs, and the watcher's memory.

- ``metric.value`` may be NULL: SQLite binds NaN as NULL, so a NaN metric is stored as
  NULL and read back as NaN (on both backends, so the two read alike).
- ``execution.proc_start``: when the process that runs an execution started (seconds
  since the epoch). With host and pid it tells a dead run from a live one, even after
  the pid is reused.
- ``watched_file``: what the dataset watcher has ingested (path, size, mtime, digest),
  so a restart picks up where it stopped instead of ingesting every file again.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("metric") as batch:
        batch.alter_column("value", existing_type=sa.Float, nullable=True)
    with op.batch_alter_table("execution") as batch:
        batch.add_column(sa.Column("proc_start", sa.Float, nullable=True))
    op.create_table(
        "watched_file",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", Id, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime", sa.Float, nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column(
            "artifact_id", Id, sa.ForeignKey("artifact.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("state", sa.String(20), nullable=False),  # ingested | unchanged | failed
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.UniqueConstraint("project_id", "path", name="uq_watched_file"),
    )


def downgrade() -> None:
    op.drop_table("watched_file")
    with op.batch_alter_table("execution") as batch:
        batch.drop_column("proc_start")
    with op.batch_alter_table("metric") as batch:
        batch.alter_column("value", existing_type=sa.Float, nullable=False)
