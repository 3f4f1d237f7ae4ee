"""Turning settings into a live database: the embedded fallback, engines, and a log-safe description."""

from __future__ import annotations

import logging

from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from flx_core.embedded import embedded_url
from flx_core.settings import DatabaseSettings, describe

log = logging.getLogger(__name__)


def resolve(settings: DatabaseSettings) -> DatabaseSettings:
    """Settings that point at a real server: the configured one, else the embedded one (started here)."""
    if settings.is_configured:
        log.info("Using PostgreSQL at %s", describe(settings.url()))
        return settings
    url = embedded_url(settings.database or "flx")
    return settings.model_copy(
        update={"sqlalchemy_url": SecretStr(url.render_as_string(hide_password=False))}
    )


def make_engine(settings: DatabaseSettings, *, pool_size: int = 5) -> Engine:
    """A SQLAlchemy engine whose connections map the `flx` schema name to `control_schema`."""
    if pool_size == 0:  # no pool: each connection closes when released (short-lived plugin processes)
        engine = create_engine(settings.url(), poolclass=NullPool, future=True)
    else:
        engine = create_engine(settings.url(), pool_size=pool_size, pool_pre_ping=True, future=True)
    if settings.control_schema != "flx":
        engine = engine.execution_options(schema_translate_map={"flx": settings.control_schema})
    event.listen(engine, "connect", _set_utc)
    return engine


def _set_utc(dbapi_connection: object, _record: object) -> None:
    """Every timestamp we read back is UTC, whatever the server's TimeZone setting."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()  # type: ignore[attr-defined]
