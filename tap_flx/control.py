"""One stream per control-schema table, all driven by the SQLAlchemy model's table.

Incremental on `updated_at` (maintained by the ORM and by a trigger for raw SQL writers), read in
(updated_at, id) order, so the stream is sorted and an interrupted sync resumes from its last STATE. The
bookmark is inclusive (>=): rows sharing the bookmark's instant are sent again rather than lost, which an
upserting target absorbs. Rows are read through a server-side cursor, so memory stays flat whatever the
table size, and only up to `visible_cutoff` (see source.py), so a late-committing writer is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.helpers._typing import to_json_compatible
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from sqlalchemy import Column, Table, select

from tap_flx.columns import json_schema, read_expression
from tap_flx.source import ControlDatabase, visible_cutoff

REPLICATION_KEY = "updated_at"


class ControlTableStream(Stream):
    """A control-schema table as an incremental, sorted, resumable stream."""

    # values leave PostgreSQL already in their JSON form (columns.py): nothing to conform per record
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, table: Table, database: ControlDatabase) -> None:
        self.table = table
        self.database = database
        schema = {
            "type": "object",
            "properties": {column.name: json_schema(column) for column in table.columns},
            "required": [column.name for column in table.columns if not column.nullable],
        }
        super().__init__(tap, schema=schema, name=table.name)
        self.primary_keys = [column.name for column in table.primary_key.columns]
        self.replication_key = REPLICATION_KEY

    @property
    def is_sorted(self) -> bool:
        return True

    def selected_columns(self) -> list[Column[Any]]:
        """Deselected properties are not even read; the key and the bookmark always are."""
        return [
            column
            for column in self.table.columns
            if self.mask.get(("properties", column.name), True)
            or column.name in (REPLICATION_KEY, *self.primary_keys)
        ]

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        _normalise_bookmark(self.get_context_state(context))
        batch = int(self.config.get("cursor_batch_rows") or 5_000)
        with self.database.engine.connect() as connection:
            cutoff = visible_cutoff(connection)
            table = self.table
            key = table.c[REPLICATION_KEY]
            query = (
                select(*(read_expression(column) for column in self.selected_columns()))
                .where(key < cutoff)
                .order_by(key, *(table.c[name] for name in self.primary_keys))
            )
            if (start := self.get_starting_timestamp(context)) is not None:
                query = query.where(key >= start)
            if self.ABORT_AT_RECORD_COUNT is not None:
                query = query.limit(self.ABORT_AT_RECORD_COUNT + 1)
            result = connection.execution_options(stream_results=True, yield_per=batch).execute(query)
            try:
                names = tuple(result.keys())
                for row in result:
                    yield dict(zip(names, row, strict=True))
            finally:  # the SDK may stop reading early (a record limit): the server-side cursor closes now
                result.close()


def _normalise_bookmark(state: dict[str, Any]) -> None:
    """Rewrite a bookmark from elsewhere (e.g. "…T00:00:00Z") in the form our records carry.

    singer-sdk compares bookmark and record values as strings to check the sort order; in another spelling
    of the same instant a correct record could compare lower and abort the sync.
    """
    value = state.get("replication_key_value")
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value)
        state["replication_key_value"] = to_json_compatible(
            parsed.astimezone(UTC) if parsed.tzinfo else parsed
        )
