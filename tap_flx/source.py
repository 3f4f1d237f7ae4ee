"""The control database as the tap sees it: one engine per run, opened on first read, schema upgraded.

Discovery never opens it (the streams come from the models), so `--discover` and `--about` work with no
server at all; the first sync resolves the settings (embedded server when nothing is configured) and runs
the migrations, so a fresh database syncs empty streams instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, Engine, event, text

from flx_core.database import make_engine, resolve
from flx_core.migrate import ensure_schema
from flx_core.settings import DatabaseSettings

log = logging.getLogger("tap_flx")

# jsonb numbers with a fraction or exponent become Decimal, so 0.1 or 1e400 reach the target unchanged
_exact_json = msgspec.json.Decoder(float_hook=Decimal)

# The instant before which every row version is committed and visible: the start of the oldest other open
# transaction (its rows carry now() = its start, and may commit after we read), else our own start.
# Sessions of other roles show a NULL xact_start without pg_read_all_stats: they cannot hold the cutoff.
_CUTOFF = text(
    """
    SELECT least(statement_timestamp(), (
        SELECT min(xact_start) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
    )), statement_timestamp()
    """
)
_LAG_WARNING = timedelta(minutes=5)


class ControlDatabase:
    """Lazily connected, so that building the tap (discovery, `--about`) needs no database."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            settings = resolve(DatabaseSettings.from_config(self._config))
            engine = make_engine(settings, pool_size=0)  # nothing left open when the tap exits
            event.listen(engine, "connect", _exact_jsonb)
            ensure_schema(engine, settings.control_schema)
            self._engine = engine
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def visible_cutoff(connection: Connection) -> datetime:
    """Rows with `updated_at` before this are all visible now; later ones wait for the next sync.

    Reading past it could let a bookmark overtake a row written by a transaction that started earlier
    but commits later, and that row would then be skipped forever.
    """
    cutoff, now = connection.execute(_CUTOFF).one()
    if now - cutoff > _LAG_WARNING:
        log.warning(
            "An open transaction started at %s: rows updated since then are left for the next sync", cutoff
        )
    return cutoff


def _exact_jsonb(dbapi_connection: Any, _record: object) -> None:
    set_json_loads(_exact_json.decode, context=dbapi_connection)
