"""executions record the job's process group and host, so a dead runner's job can be found and ended

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    config = op.get_context().config
    return str(config.attributes.get("schema", "flx")) if config is not None else "flx"


def upgrade() -> None:
    op.add_column("executions", sa.Column("process_group", sa.Integer(), nullable=True), schema=_schema())
    op.add_column("executions", sa.Column("process_host", sa.Text(), nullable=True), schema=_schema())


def downgrade() -> None:
    op.drop_column("executions", "process_host", schema=_schema())
    op.drop_column("executions", "process_group", schema=_schema())
