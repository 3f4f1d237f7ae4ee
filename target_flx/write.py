"""Writing one batch: binary COPY, then for upserts one `INSERT … ON CONFLICT` from a temp table.

Each batch commits in its own transaction together with its line in `flx.stream_loads`, so the load
history never claims rows that were not committed, and a failure never leaves a half-written batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from target_flx.naming import qualified, quote

# Metadata that changes on every run; an upsert of otherwise identical data does not rewrite the row.
VOLATILE = frozenset(
    {"_sdc_extracted_at", "_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at"}
)


@dataclass(frozen=True)
class BatchResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class Booking:
    """A statement that books a batch's counts to its `stream_loads` row, written against a relation
    `counts(inserted, updated, deleted)`, with its own arguments ($1 …). A merge runs it as a CTE over the
    rows it wrote (no statement of its own); `book` runs it alone with counts already known."""

    sql: str
    args: tuple[Any, ...]


async def book(conn: asyncpg.Connection, booking: Booking, result: BatchResult) -> None:
    n = len(booking.args)
    counts = f"SELECT ${n + 1}::bigint AS inserted, ${n + 2}::bigint AS updated, ${n + 3}::bigint AS deleted"
    await conn.execute(
        f"WITH counts AS ({counts}) {booking.sql}",
        *booking.args,
        result.inserted,
        result.updated,
        result.deleted,
    )


@dataclass(frozen=True)
class LoadRef:
    """The `stream_loads` row a batch is accounted to (None when history is off)."""

    control_schema: str
    load_id: Any


async def append(
    conn: asyncpg.Connection, schema: str, table: str, columns: Sequence[str], payload: bytes
) -> BatchResult:
    """Binary COPY straight into the table."""
    status = await _copy(conn, schema, table, columns, payload)
    return BatchResult(inserted=int(status.split()[-1]))


async def _copy(
    conn: asyncpg.Connection, schema: str | None, table: str, columns: Sequence[str], payload: bytes
) -> str:
    # A memoryview: asyncpg would take bytes for a file path.
    status: str = await conn.copy_to_table(
        table, schema_name=schema, columns=list(columns), source=memoryview(payload), format="binary"
    )
    return status


# The first layouts of a run are staged in `ON COMMIT DELETE ROWS` tables: PostgreSQL empties those at
# the end of every transaction that touched a temp table, *all* of them on the connection, so with one
# per table a run over many tables paid for every stage at every commit. Later layouts (a run over many
# differently shaped tables) empty their stage themselves, once per batch.
EMPTIED_AT_COMMIT = 2


@dataclass(frozen=True)
class Stage:
    """A batch's staging table: one per column layout (names and types), shared by every table of that
    layout on a connection, so a run over many alike tables creates one per connection, not one per table."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (column, type as the encoder writes it)
    emptied_at_commit: bool

    def statements(self) -> str:
        """Create the stage if this connection has none yet, and make sure it is empty: one round trip."""
        name, definition = quote(self.name), ", ".join(f"{quote(c)} {t}" for c, t in self.columns)
        if self.emptied_at_commit:
            return f"CREATE TEMP TABLE IF NOT EXISTS {name} ({definition}) ON COMMIT DELETE ROWS"
        return f"CREATE TEMP TABLE IF NOT EXISTS {name} ({definition}); TRUNCATE {name}"


class Stages:
    """The run's stage per layout; its name is derived from the layout, so it is the same on every
    connection and after a reconnect."""

    def __init__(self) -> None:
        self._known: dict[tuple[tuple[str, str], ...], Stage] = {}

    def for_layout(self, columns: Sequence[tuple[str, str]]) -> Stage:
        layout = tuple(columns)
        stage = self._known.get(layout)
        if stage is None:
            digest = hashlib.blake2b(repr(layout).encode(), digest_size=8).hexdigest()
            emptied = len(self._known) < EMPTIED_AT_COMMIT
            stage = Stage(f"flx_stage_{digest}_{'d' if emptied else 't'}", layout, emptied)
            self._known[layout] = stage
        return stage


async def stage(conn: asyncpg.Connection, into: Stage, payload: bytes) -> None:
    """COPY into the layout's temp table, empty before the COPY.

    Created once per connection and layout, not per batch: creating and dropping a 20-column table is
    catalog work that cost as much as COPYing 2,000 rows. Its columns carry no constraint or default of
    the target's: those apply when the merge inserts. For upserts, rows must be unique on the keys (the
    caller keeps the last record of each key)."""
    await conn.execute(into.statements())
    await _copy(conn, None, into.name, [c for c, _ in into.columns], payload)


async def merge(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    staged: int,
    source: Stage,
    booking: Booking | None = None,
) -> BatchResult:
    """`INSERT … ON CONFLICT DO UPDATE` from the stage; rows whose data did not change are not rewritten.
    `booking` books the counts in the same statement."""
    col_list = ", ".join(quote(c) for c in columns)
    key_list = ", ".join(quote(k) for k in keys)
    others = [c for c in columns if c not in keys]
    if others:
        assignments = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in others)
        compared = [c for c in others if c not in VOLATILE] or others
        old = ", ".join(f"t.{quote(c)}" for c in compared)
        new = ", ".join(f"EXCLUDED.{quote(c)}" for c in compared)
        action = f"DO UPDATE SET {assignments} WHERE ({old}, NULL) IS DISTINCT FROM ({new}, NULL)"
    else:
        action = "DO NOTHING"
    booked = f", booked AS ({booking.sql})" if booking is not None else ""
    record = await conn.fetchrow(
        f"""
        WITH written AS (
            INSERT INTO {qualified(schema, table)} AS t ({col_list})
            SELECT {col_list} FROM {quote(source.name)}
            ON CONFLICT ({key_list}) {action}
            RETURNING (xmax = 0) AS inserted
        ), counts AS (
            SELECT count(*) FILTER (WHERE inserted) AS inserted,
                count(*) FILTER (WHERE NOT inserted) AS updated, 0::bigint AS deleted
            FROM written
        ){booked}
        SELECT inserted, updated FROM counts
        """,
        *(booking.args if booking is not None else ()),
    )
    inserted, updated = int(record["inserted"]), int(record["updated"])
    return BatchResult(inserted=inserted, updated=updated, unchanged=staged - inserted - updated)


async def retire_versions(
    conn: asyncpg.Connection, schema: str, table: str, version: int, *, hard_delete: bool
) -> int:
    """ACTIVATE_VERSION: rows of older versions are deleted, or stamped `_sdc_deleted_at` (soft delete)."""
    name = qualified(schema, table)
    stale = '("_sdc_table_version" < $1 OR "_sdc_table_version" IS NULL)'
    if hard_delete:
        status = await conn.execute(f"DELETE FROM {name} WHERE {stale}", version)
    else:
        status = await conn.execute(
            f'UPDATE {name} SET "_sdc_deleted_at" = now() WHERE {stale} AND "_sdc_deleted_at" IS NULL',
            version,
        )
    return int(status.split()[-1])


def account_booking(ref: LoadRef, nbytes: int, batch: int = 0) -> Booking:
    """Add a batch to its `stream_loads` row, in the batch's transaction. `batch` is the batch's number
    in its stream (1, 2, …; 0 for work that is not a batch): `batches` then says how many committed,
    which is how a batch whose COMMIT lost its connection is found committed or not."""
    return Booking(
        f"""UPDATE {quote(ref.control_schema)}.stream_loads
            SET rows_inserted = rows_inserted + counts.inserted,
                rows_updated = rows_updated + counts.updated, rows_deleted = rows_deleted + counts.deleted,
                batches = GREATEST(batches, $2), bytes = bytes + $3
            FROM counts WHERE id = $1""",
        (ref.load_id, batch, nbytes),
    )


async def account(
    conn: asyncpg.Connection, ref: LoadRef | None, result: BatchResult, nbytes: int, batch: int = 0
) -> None:
    """`account_booking`, as a statement of its own."""
    if ref is not None:
        await book(conn, account_booking(ref, nbytes, batch), result)


async def committed_batches(conn: asyncpg.Connection, ref: LoadRef) -> int:
    """How many of the stream's batches are committed (see `account`)."""
    count = await conn.fetchval(
        f"SELECT batches FROM {quote(ref.control_schema)}.stream_loads WHERE id = $1", ref.load_id
    )
    return int(count or 0)
