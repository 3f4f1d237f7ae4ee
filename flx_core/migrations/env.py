"""Alembic environment: runs on the connection `flx_core.migrate` hands over, in the control schema."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from flx_core.models import Base

config = context.config
connection = config.attributes["connection"]
schema: str = config.attributes.get("schema", "flx")

connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table_schema=schema,
    include_schemas=False,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
