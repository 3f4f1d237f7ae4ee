"""Writing one batch: binary COPY, then for upserts one `INSERT … ON CONFLICT` from a temp table.

Each batch commits in its own transaction together with its line in `flx.stream_loads`, so the load
history never claims rows that were not committed, and a failure never leaves a half-written batch.
"""

from __future__ import annotations

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


def _stage_name(schema: str, table: str, generation: int) -> str:
    """One per table layout: `generation` changes whenever the table's columns do."""
    return f"flx_stage_{abs(hash((schema, table))) % 10**8}_{generation}"


async def stage(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: Sequence[str],
    payload: bytes,
    generation: int,
) -> None:
    """COPY into a temp table shaped like the target, emptied at commit.

    Created once per connection and layout, not per batch: creating and dropping a 20-column table is
    catalog work that cost as much as COPYing 2,000 rows. For upserts, rows must be unique on the keys
    (the caller keeps the last record of each key)."""
    stage_table = _stage_name(schema, table, generation)
    like = qualified(schema, table)
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {quote(stage_table)} (LIKE {like} INCLUDING DEFAULTS)"
        " ON COMMIT DELETE ROWS"
    )
    await _copy(conn, None, stage_table, columns, payload)


async def merge(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    staged: int,
    generation: int,
) -> BatchResult:
    """`INSERT … ON CONFLICT DO UPDATE` from the stage; rows whose data did not change are not rewritten."""
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
    record = await conn.fetchrow(
        f"""
        WITH written AS (
            INSERT INTO {qualified(schema, table)} AS t ({col_list})
            SELECT {col_list} FROM {quote(_stage_name(schema, table, generation))}
            ON CONFLICT ({key_list}) {action}
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated
        FROM written
        """
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


async def account(
    conn: asyncpg.Connection, ref: LoadRef | None, result: BatchResult, nbytes: int, batch: int = 0
) -> None:
    """Add a batch to its `stream_loads` row, in the batch's transaction. `batch` is the batch's number
    in its stream (1, 2, …; 0 for work that is not a batch): `batches` then says how many committed,
    which is how a batch whose COMMIT lost its connection is found committed or not."""
    if ref is None:
        return
    await conn.execute(
        f"""UPDATE {quote(ref.control_schema)}.stream_loads
            SET rows_inserted = rows_inserted + $2, rows_updated = rows_updated + $3,
                rows_deleted = rows_deleted + $4, batches = GREATEST(batches, $5), bytes = bytes + $6
            WHERE id = $1""",
        ref.load_id,
        result.inserted,
        result.updated,
        result.deleted,
        batch,
        nbytes,
    )


async def committed_batches(conn: asyncpg.Connection, ref: LoadRef) -> int:
    """How many of the stream's batches are committed (see `account`)."""
    count = await conn.fetchval(
        f"SELECT batches FROM {quote(ref.control_schema)}.stream_loads WHERE id = $1", ref.load_id
    )
    return int(count or 0)
