"""The control schema a migration runs in: `flx_core.migrate` passes the configured name to Alembic."""

from __future__ import annotations

from alembic import op


def control_schema() -> str:
    """The configured control schema (tables are declared in "flx"; raw SQL needs the actual name)."""
    config = op.get_context().config
    return str(config.attributes.get("schema", "flx")) if config is not None else "flx"
