"""Load history in the control schema: one `stream_loads` row per stream per run, plus quarantine.

Runs are linked to the orchestrator's execution (`FLX_EXECUTION_ID`) and to Meltano's run
(`MELTANO_RUN_ID`) when they are in the environment, so `flx show` can list what a run loaded.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from target_flx.batch import Reject
from target_flx.naming import quote
from target_flx.write import Booking


def _uuid_env(name: str) -> uuid.UUID | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class RunIdentity:
    execution_id: uuid.UUID | None
    run_id: uuid.UUID | None

    @classmethod
    def from_environment(cls) -> RunIdentity:
        return cls(_uuid_env("FLX_EXECUTION_ID"), _uuid_env("MELTANO_RUN_ID"))


@dataclass(frozen=True)
class LoadRow:
    """A stream's `stream_loads` row as it starts."""

    id: uuid.UUID
    stream: str
    schema: str
    table: str
    method: str
    started_at: datetime.datetime


@dataclass(frozen=True)
class LoadEnd:
    load: LoadRow
    status: str
    error: str | None
    quarantined: int


class History:
    def __init__(self, control_schema: str, identity: RunIdentity) -> None:
        self.schema = quote(control_schema)
        self.identity = identity
        self._execution_id: uuid.UUID | None = None
        self._checked = False

    async def _execution(self, conn: asyncpg.Connection) -> uuid.UUID | None:
        """The orchestrator's execution, if it exists in this database (a foreign key points at it)."""
        if not self._checked and self.identity.execution_id is not None:
            found = await conn.fetchval(
                f"SELECT 1 FROM {self.schema}.executions WHERE id = $1", self.identity.execution_id
            )
            self._execution_id = self.identity.execution_id if found else None
        self._checked = True
        return self._execution_id

    async def start(self, conn: asyncpg.Connection, load: LoadRow) -> None:
        """The stream's row before its first batch (its first ACTIVATE_VERSION); repeating it changes
        nothing."""
        execution_id = await self._execution(conn)
        await conn.execute(
            f"""INSERT INTO {self.schema}.stream_loads
                (id, execution_id, run_id, stream, schema_name, table_name, load_method, status, started_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8) ON CONFLICT (id) DO NOTHING""",
            *self._row(load, execution_id),
        )

    async def start_booking(
        self, conn: asyncpg.Connection, load: LoadRow, nbytes: int, batch: int
    ) -> Booking:
        """The stream's row written with its first batch, already counting it (see `write.Booking`): a
        run of many small streams costs no statement per stream for it. A row that is already there (an
        ACTIVATE_VERSION came first) gets the counts added."""
        execution_id = await self._execution(conn)
        return Booking(
            f"""INSERT INTO {self.schema}.stream_loads AS stream_loads
                (id, execution_id, run_id, stream, schema_name, table_name, load_method, status, started_at,
                 rows_inserted, rows_updated, rows_deleted, batches, bytes)
                SELECT $1, $2, $3, $4, $5, $6, $7, 'running', $8,
                    counts.inserted, counts.updated, counts.deleted, $9, $10
                FROM counts
                ON CONFLICT (id) DO UPDATE SET
                    rows_inserted = stream_loads.rows_inserted + EXCLUDED.rows_inserted,
                    rows_updated = stream_loads.rows_updated + EXCLUDED.rows_updated,
                    rows_deleted = stream_loads.rows_deleted + EXCLUDED.rows_deleted,
                    batches = GREATEST(stream_loads.batches, EXCLUDED.batches),
                    bytes = stream_loads.bytes + EXCLUDED.bytes""",
            (*self._row(load, execution_id), batch, nbytes),
        )

    def _row(self, load: LoadRow, execution_id: uuid.UUID | None) -> tuple[Any, ...]:
        return (
            load.id,
            execution_id,
            self.identity.run_id,
            load.stream,
            load.schema,
            load.table,
            load.method,
            load.started_at,
        )

    async def finish(self, conn: asyncpg.Connection, ends: Sequence[LoadEnd]) -> None:
        """Every stream's outcome in one statement; a stream that sent no batch gets its row now."""
        execution_id = await self._execution(conn)
        await conn.executemany(
            f"""INSERT INTO {self.schema}.stream_loads
                (id, execution_id, run_id, stream, schema_name, table_name, load_method, status, started_at,
                 error, rows_quarantined, ended_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
                ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error,
                    rows_quarantined = EXCLUDED.rows_quarantined, ended_at = EXCLUDED.ended_at""",
            [
                (
                    e.load.id,
                    execution_id,
                    self.identity.run_id,
                    e.load.stream,
                    e.load.schema,
                    e.load.table,
                    e.load.method,
                    e.status,
                    e.load.started_at,
                    e.error,
                    e.quarantined,
                )
                for e in ends
            ],
        )

    async def quarantine(self, conn: asyncpg.Connection, rows: Sequence[Reject]) -> None:
        """Invalid records, in the transaction of the batch they came with."""
        execution_id = await self._execution(conn)
        await conn.executemany(
            f"""INSERT INTO {self.schema}.quarantine
                (execution_id, run_id, stream, line_number, field, error, raw_line)
                VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            [
                (execution_id, self.identity.run_id, r.stream, r.line, r.field, r.error, _escape_nul(r.raw))
                for r in rows
            ],
        )


def _escape_nul(raw: str) -> str:
    return raw.replace("\x00", "\\u0000")
