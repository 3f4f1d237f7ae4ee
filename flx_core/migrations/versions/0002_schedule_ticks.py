"""schedule ticks: each scheduled run claimed exactly once, across every `flx serve` process; the
database session holding an execution's pipeline lock, so a dead runner is recognised in seconds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flx_core.migrations.schema import control_schema

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_ticks",
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("tick_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["flx.pipelines.id"],
            name=op.f("fk_schedule_ticks_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flx.executions.id"],
            name=op.f("fk_schedule_ticks_execution_id_executions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_ticks")),
        sa.UniqueConstraint("key", name=op.f("uq_schedule_ticks_key")),
        schema="flx",
    )
    op.create_index(
        op.f("ix_schedule_ticks_pipeline_id_tick_at"),
        "schedule_ticks",
        ["pipeline_id", "tick_at"],
        unique=False,
        schema="flx",
    )
    op.create_index(
        op.f("ix_schedule_ticks_updated_at"), "schedule_ticks", ["updated_at"], unique=False, schema="flx"
    )
    schema = control_schema()
    op.add_column("executions", sa.Column("lock_session", sa.Integer(), nullable=True), schema=schema)
    op.execute(
        f'CREATE TRIGGER touch_updated_at BEFORE UPDATE ON "{schema}"."schedule_ticks" '
        f'FOR EACH ROW EXECUTE FUNCTION "{schema}".touch_updated_at()'
    )


def downgrade() -> None:
    op.drop_column("executions", "lock_session", schema=control_schema())
    op.drop_index(op.f("ix_schedule_ticks_updated_at"), table_name="schedule_ticks", schema="flx")
    op.drop_index(op.f("ix_schedule_ticks_pipeline_id_tick_at"), table_name="schedule_ticks", schema="flx")
    op.drop_table("schedule_ticks", schema="flx")
