"""indexes for listing executions newest first, by pipeline and by status (flx ui, flx history)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from flx_core.migrations.schema import control_schema

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = control_schema()
    op.create_index("ix_executions_created_at_id", "executions", ["created_at", "id"], schema=schema)
    op.create_index(
        "ix_executions_pipeline_id_created_at_id",
        "executions",
        ["pipeline_id", "created_at", "id"],
        schema=schema,
    )
    op.create_index(
        "ix_executions_status_created_at",
        "executions",
        ["status", "created_at"],
        schema=schema,
        postgresql_include=["pipeline_id"],
    )


def downgrade() -> None:
    schema = control_schema()
    op.drop_index("ix_executions_status_created_at", "executions", schema=schema)
    op.drop_index("ix_executions_pipeline_id_created_at_id", "executions", schema=schema)
    op.drop_index("ix_executions_created_at_id", "executions", schema=schema)
