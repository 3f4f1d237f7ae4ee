"""Turning settings into a live database: the embedded fallback, engines, and a log-safe description."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import SecretStr

from flx_core.settings import DatabaseSettings, SettingsError

if TYPE_CHECKING:  # imported where an engine is made: target-flx connects with asyncpg only
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

# Settings that only make sense with a server to connect to: given without `host` or `sqlalchemy_url`, they
# mean a mistake (a misspelt `host`), never "use the embedded server".
CONNECTION_SETTINGS = (
    "port",
    "user",
    "password",
    "ssl_enable",
    "ssl_mode",
    "ssl_certificate_authority",
    "ssl_client_certificate_enable",
    "ssl_client_certificate",
    "ssl_client_private_key",
)
_announced: set[str] = set()


def serverless_connection_settings(settings: DatabaseSettings) -> list[str]:
    """Connection settings given (other than their defaults) while no server is named."""
    if settings.is_configured:
        return []
    defaults = DatabaseSettings.model_fields
    return [name for name in CONNECTION_SETTINGS if getattr(settings, name) != defaults[name].default]


def resolve(settings: DatabaseSettings) -> DatabaseSettings:
    """Settings that point at a real server: the configured one, else the embedded one (started here).

    The embedded server is used only when no connection setting at all is given.
    """
    if settings.is_configured:
        where = settings.where()
        if where not in _announced:
            _announced.add(where)
            log.info("Using PostgreSQL at %s", where)
        return settings
    given = serverless_connection_settings(settings)
    if given:
        names = ", ".join(given)
        verb = "is" if len(given) == 1 else "are"
        raise SettingsError(
            f"{names} {verb} set but neither host nor sqlalchemy_url: set host (or sqlalchemy_url) to use "
            f"that server, or remove {names} to use the embedded PostgreSQL"
        )
    from flx_core.embedded import embedded_url

    url = embedded_url(settings.database or "flx")
    return settings.model_copy(
        update={"sqlalchemy_url": SecretStr(url.render_as_string(hide_password=False))}
    )


def make_engine(settings: DatabaseSettings, *, pool_size: int = 5) -> Engine:
    """A SQLAlchemy engine whose connections map the `flx` schema name to `control_schema`."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

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
