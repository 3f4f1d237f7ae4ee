"""Creating and evolving destination tables: add columns, widen types in place, never drop or narrow."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from target_flx.naming import qualified, quote
from target_flx.types import normalize, widen

log = logging.getLogger(__name__)


@dataclass
class TableSpec:
    """What a stream wants: its columns (name → type) in order and its key columns."""

    schema: str
    table: str
    columns: dict[str, str]
    keys: Sequence[str] = ()
    primary_key: bool = False  # upsert and overwrite-with-keys need a unique index for ON CONFLICT
    not_null: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return qualified(self.schema, self.table)


async def existing_columns(conn: asyncpg.Connection, schema: str, table: str) -> dict[str, str] | None:
    """The table's columns and their canonical types, or None when the table does not exist."""
    rows = await conn.fetch(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        schema,
        table,
    )
    exists = rows or await conn.fetchval(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2",
        schema,
        table,
    )
    if not exists:
        return None
    return {r["attname"]: normalize(r["type"]) for r in rows}


async def ensure_table(conn: asyncpg.Connection, spec: TableSpec) -> dict[str, str]:
    """Create the table, or add and widen its columns; returns the actual column types afterwards.

    Runs in one transaction under an advisory lock on the table name, so two loaders of the same table
    (two streams mapped to it, or two runs) apply their changes one after the other.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", spec.name)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(spec.schema)}")
        current = await existing_columns(conn, spec.schema, spec.table)
        if current is None:
            await conn.execute(_create_sql(spec))
            log.info("Created table %s", spec.name)
            return {name: normalize(t) for name, t in spec.columns.items()}
        for name, wanted in spec.columns.items():
            if name not in current:
                await conn.execute(f"ALTER TABLE {spec.name} ADD COLUMN {quote(name)} {wanted}")
                log.info("Added column %s.%s %s", spec.name, quote(name), wanted)
                current[name] = normalize(wanted)
                continue
            target = widen(current[name], wanted)
            if target != current[name]:
                await conn.execute(
                    f"ALTER TABLE {spec.name} ALTER COLUMN {quote(name)} TYPE {target} "
                    f"USING {quote(name)}::{target}"
                )
                log.info("Widened column %s.%s from %s to %s", spec.name, quote(name), current[name], target)
                current[name] = target
        if spec.primary_key and spec.keys:
            await _ensure_unique_keys(conn, spec)
        return current


def _create_sql(spec: TableSpec) -> str:
    cols = [f"{quote(n)} {t}" + (" NOT NULL" if n in spec.not_null else "") for n, t in spec.columns.items()]
    if spec.primary_key and spec.keys:
        cols.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.keys)})")
    return f"CREATE TABLE {spec.name} ({', '.join(cols)})"


async def _ensure_unique_keys(conn: asyncpg.Connection, spec: TableSpec) -> None:
    """An existing table (say, made by another loader) gets the unique index ON CONFLICT needs."""
    has_index = await conn.fetchval(
        """
        SELECT 1 FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique
          AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY(i.indkey))
              = (SELECT array_agg(k ORDER BY k) FROM unnest($3::text[]) k)
        """,
        spec.schema,
        spec.table,
        list(spec.keys),
    )
    if not has_index:
        index = quote(f"{spec.table[:40]}_flx_key")
        keys = ", ".join(quote(k) for k in spec.keys)
        await conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {spec.name} ({keys})")
