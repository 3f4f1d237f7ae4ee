"""every execution's complete output in compressed chunks, and cancel requests from any machine

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from flx_core.migrations.schema import control_schema

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = control_schema()
    op.add_column(
        "executions",
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        schema=schema,
    )
    op.add_column("executions", sa.Column("cancel_requested_by", sa.Text(), nullable=True), schema=schema)
    op.create_table(
        "execution_logs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("execution_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("first_line", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            [f"{schema}.executions.id"],
            name=op.f("fk_execution_logs_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_logs")),
        sa.UniqueConstraint(
            "execution_id", "first_line", name=op.f("uq_execution_logs_execution_id_first_line")
        ),
        schema=schema,
    )
    op.create_index(
        op.f("ix_execution_logs_created_at"), "execution_logs", ["created_at"], unique=False, schema=schema
    )


def downgrade() -> None:
    schema = control_schema()
    op.drop_index(op.f("ix_execution_logs_created_at"), "execution_logs", schema=schema)
    op.drop_table("execution_logs", schema=schema)
    op.drop_column("executions", "cancel_requested_by", schema=schema)
    op.drop_column("executions", "cancel_requested_at", schema=schema)
