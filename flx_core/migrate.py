"""Creating and upgrading the control schema with Alembic, from code and from `flx db …`.

Every command calls `ensure_schema` at start-up: the schema is created when missing and upgraded when
behind. A transaction-scoped advisory lock makes concurrent start-ups (two plugins of one `meltano run`)
take turns instead of racing to create the same tables.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection, schema: str) -> Config:
    if schema != "flx":
        connection = connection.execution_options(schema_translate_map={"flx": schema})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def _lock(connection: Connection, schema: str) -> None:
    key = zlib.crc32(f"flx-migrate:{schema}".encode())
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine, schema: str) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
        return context.get_current_revision()


def upgrade(engine: Engine, schema: str, revision: str = "head") -> None:
    with engine.begin() as connection:
        _lock(connection, schema)
        command.upgrade(_config(connection, schema), revision)


def downgrade(engine: Engine, schema: str, revision: str = "base") -> None:
    with engine.begin() as connection:
        _lock(connection, schema)
        command.downgrade(_config(connection, schema), revision)


def ensure_schema(engine: Engine, schema: str) -> None:
    """Upgrade to head when the schema is missing or behind; a no-op (one query) when it is current."""
    if current_revision(engine, schema) == head_revision():
        return
    log.info("Upgrading control schema %r to %s", schema, head_revision())
    upgrade(engine, schema)
