"""Load history in the control schema: one `stream_loads` row per stream per run, plus quarantine.

Runs are linked to the orchestrator's execution (`FLX_EXECUTION_ID`) and to Meltano's run
(`MELTANO_RUN_ID`) when they are in the environment, so `flx show` can list what a run loaded.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from target_flx.batch import Reject
from target_flx.naming import quote


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

    async def start(
        self, conn: asyncpg.Connection, stream: str, schema: str, table: str, method: str
    ) -> uuid.UUID:
        execution_id = await self._execution(conn)
        load_id: uuid.UUID = await conn.fetchval(
            f"""INSERT INTO {self.schema}.stream_loads
                (execution_id, run_id, stream, schema_name, table_name, load_method, status)
                VALUES ($1, $2, $3, $4, $5, $6, 'running') RETURNING id""",
            execution_id,
            self.identity.run_id,
            stream,
            schema,
            table,
            method,
        )
        return load_id

    async def finish(
        self, conn: asyncpg.Connection, load_id: uuid.UUID, status: str, error: str | None, quarantined: int
    ) -> None:
        await conn.execute(
            f"""UPDATE {self.schema}.stream_loads
                SET status = $2, error = $3, rows_quarantined = $4, ended_at = now() WHERE id = $1""",
            load_id,
            status,
            error,
            quarantined,
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
