"""`meltano_runs`: the runs Meltano records in its system database (SQLite or PostgreSQL).

The table is reflected, and only the columns this stream emits are relied on; an older Meltano without
`last_heartbeat_at`, `trigger` or `run_id` yields nulls there. `STATE_EDIT` rows (`meltano state set`)
are not runs and are left out.

Incremental on `updated_at` = coalesce(ended_at, last_heartbeat_at, started_at): it moves forward every
time a run changes (heartbeat, then SUCCESS/FAIL, or a stale run failed later), so a run read while
RUNNING is read again once it ends; an id bookmark would never see that change. Meltano stamps these
times from each process's own clock before committing, so a run may commit slightly after a newer one:
every sync re-reads `meltano_runs_lookback_seconds` before the bookmark to catch it (this table is
small, the re-sent rows cost nothing and an upserting target absorbs them). Those rows sort before the
bookmark, so singer-sdk's sort check is off for this stream; the ORDER BY still makes it sorted, and
resumable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.helpers._typing import to_json_compatible
from singer_sdk.helpers.types import Context
from sqlalchemy import DateTime, Engine, MetaData, Table, create_engine, func, null, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement

REQUIRED = ("id", "job_name", "state", "started_at")
DEFAULT_LOOKBACK_SECONDS = 300

_DATE_TIME = {"type": ["string"], "format": "date-time"}
_NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer"]},
        "state_id": {"type": ["string"]},
        "run_id": {"type": ["string", "null"], "format": "uuid"},
        "state": {"type": ["string", "null"]},
        "started_at": _NULLABLE_DATE_TIME,
        "last_heartbeat_at": _NULLABLE_DATE_TIME,
        "ended_at": _NULLABLE_DATE_TIME,
        "error": {"type": ["string", "null"]},
        "trigger": {"type": ["string", "null"]},
        "updated_at": _DATE_TIME,
    },
    "required": ["id", "state_id", "updated_at"],
}


class MeltanoSchemaError(RuntimeError):
    """The configured database has no usable `runs` table."""


def meltano_engine(uri: str) -> Engine:
    """SQLite as is; a bare postgresql:// URI gets the psycopg 3 driver flx ships with."""
    url = make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=1) if url.get_backend_name() != "sqlite" else create_engine(url)


class MeltanoRunsStream(Stream):
    name = "meltano_runs"

    def __init__(self, tap: Tap, uri: str) -> None:
        super().__init__(tap, schema=SCHEMA, name=self.name)
        self.primary_keys = ["id"]
        self.replication_key = "updated_at"
        self._uri = uri

    @property
    def is_sorted(self) -> bool:
        return True

    @property
    def check_sorted(self) -> bool:
        return False  # the lookback re-reads rows older than the bookmark, on purpose

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        start = self._start_with_lookback(context)
        engine = meltano_engine(self._uri)
        try:
            with engine.connect() as connection:
                runs = _reflect_runs(connection)
                column = runs.columns

                def optional(name: str) -> ColumnElement[Any]:
                    return column[name] if name in column else null()

                times = [column[n] for n in ("ended_at", "last_heartbeat_at", "started_at") if n in column]
                updated_at = func.coalesce(*times, type_=DateTime)
                query = (
                    select(
                        column["id"],
                        column["job_name"],
                        optional("run_id").label("run_id"),
                        column["state"],
                        column["started_at"],
                        optional("last_heartbeat_at").label("last_heartbeat_at"),
                        optional("ended_at").label("ended_at"),
                        optional("payload").label("payload"),
                        optional("trigger").label("trigger"),
                        updated_at.label("updated_at"),
                    )
                    .where(or_(column["state"].is_(None), column["state"] != "STATE_EDIT"))
                    .where(updated_at.is_not(None))
                    .order_by(updated_at, column["id"])
                )
                if start is not None:  # Meltano stores naive UTC
                    query = query.where(updated_at >= start.astimezone(UTC).replace(tzinfo=None))
                if self.ABORT_AT_RECORD_COUNT is not None:
                    query = query.limit(self.ABORT_AT_RECORD_COUNT + 1)
                result = connection.execution_options(stream_results=True, yield_per=1_000).execute(query)
                for row in result:
                    yield _record(row._mapping)
        finally:
            engine.dispose()

    def _start_with_lookback(self, context: Context | None) -> datetime | None:
        """The bookmark minus the lookback; `start_date`, when it is later, as it is."""
        start = self.get_starting_timestamp(context)
        bookmark = self.get_context_state(context).get("replication_key_value")
        if start is None or not bookmark:
            return start
        if start > _parse_instant(str(bookmark)):
            return start  # start_date is later than the bookmark: it limits the sync exactly
        lookback = float(self.config.get("meltano_runs_lookback_seconds", DEFAULT_LOOKBACK_SECONDS))
        return start - timedelta(seconds=lookback)


def _parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _reflect_runs(connection: Any) -> Table:
    try:
        runs = Table("runs", MetaData(), autoload_with=connection)
    except Exception as exc:  # NoSuchTableError, or not a Meltano database at all
        raise MeltanoSchemaError(f"no Meltano `runs` table in meltano_database_uri: {exc}") from None
    missing = [name for name in REQUIRED if name not in runs.columns]
    if missing:
        raise MeltanoSchemaError(f"Meltano's `runs` table lacks column(s) {', '.join(missing)}")
    return runs


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return to_json_compatible(value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC))


def _record(row: Any) -> dict[str, Any]:
    run_id = row["run_id"]
    return {
        "id": row["id"],
        "state_id": row["job_name"],
        "run_id": str(uuid.UUID(str(run_id))) if run_id is not None else None,
        "state": row["state"],
        "started_at": _instant(row["started_at"]),
        "last_heartbeat_at": _instant(row["last_heartbeat_at"]),
        "ended_at": _instant(row["ended_at"]),
        "error": _error(row["payload"]),
        "trigger": row["trigger"],
        "updated_at": _instant(row["updated_at"]),
    }


def _error(payload: Any) -> str | None:
    """Meltano keeps the failure message in the run's JSON payload (text in SQLite, json in PostgreSQL)."""
    if payload is None:
        return None
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    error = payload.get("error") if isinstance(payload, dict) else None
    return None if error is None else str(error)
