"""executions record the job's process group and host, so a dead runner's job can be found and ended

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flx_core.migrations.schema import control_schema

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = control_schema()
    op.add_column("executions", sa.Column("process_group", sa.Integer(), nullable=True), schema=schema)
    op.add_column("executions", sa.Column("process_host", sa.Text(), nullable=True), schema=schema)


def downgrade() -> None:
    op.drop_column("executions", "process_host", schema=control_schema())
    op.drop_column("executions", "process_group", schema=control_schema())
