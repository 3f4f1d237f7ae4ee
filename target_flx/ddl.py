"""Creating and evolving destination tables: add columns, adopt or widen types in place, never drop or narrow.

A table made by another loader (MeltanoLabs target-postgres, say) is used as it is: each existing column
keeps its type wherever the property's values fit it exactly (see `types.adopt`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from target_flx.naming import MAX_IDENTIFIER_BYTES, legacy_conform, qualified, quote
from target_flx.types import adopt, normalize

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


@dataclass(frozen=True)
class Found:
    """What the catalog says of one table."""

    columns: dict[str, str] | None  # name → canonical type, in order; None: no such table
    unique_indexes: tuple[tuple[str, ...], ...] = ()  # the columns of each unique index

    def ready_for(self, spec: TableSpec) -> bool:
        """Whether the table is already what `spec` wants: no DDL, no lock."""
        return self.columns is not None and not _changes(self.columns, spec) and self.has_keys(spec)

    def has_keys(self, spec: TableSpec) -> bool:
        """Whether ON CONFLICT on the keys can work: a unique index on exactly them (when keys are needed)."""
        if not (spec.primary_key and spec.keys):
            return True
        wanted = sorted(spec.keys)
        return any(sorted(index) == wanted for index in self.unique_indexes)


_CATALOG = """
    SELECT c.oid IS NOT NULL AS found,
        ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS names,
        ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS types,
        (SELECT jsonb_agg(ARRAY(SELECT a.attname::text FROM pg_attribute a
                                WHERE a.attrelid = c.oid AND a.attnum = ANY(i.indkey)))
         FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique) AS unique_indexes
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(schema_name, table_name, i)
    LEFT JOIN pg_namespace n ON n.nspname = r.schema_name
    LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.table_name
    ORDER BY r.i
"""


async def read_tables(conn: asyncpg.Connection, tables: Sequence[tuple[str, str]]) -> list[Found]:
    """Columns and unique indexes of many tables (schema, table) in one catalog query: a run over many
    streams reads them in a few round trips instead of two per table."""
    rows = await conn.fetch(_CATALOG, [s for s, _ in tables], [t for _, t in tables])
    found = []
    for row in rows:
        if not row["found"]:
            found.append(Found(None))
            continue
        columns = {name: normalize(t) for name, t in zip(row["names"], row["types"], strict=True)}
        indexes = json.loads(row["unique_indexes"]) if row["unique_indexes"] else []
        found.append(Found(columns, tuple(tuple(index) for index in indexes)))
    return found


async def ensure_table(conn: asyncpg.Connection, spec: TableSpec) -> dict[str, str]:
    """Create the table, or add and widen its columns; returns the actual column types afterwards."""
    (found,) = await read_tables(conn, [(spec.schema, spec.table)])
    if found.ready_for(spec):
        assert found.columns is not None
        return found.columns  # the usual case, a table as it was last run: one read, no lock
    columns, _ = await change_table(conn, spec)
    return columns


async def change_table(conn: asyncpg.Connection, spec: TableSpec) -> tuple[dict[str, str], bool]:
    """Create the table or add and widen its columns: the actual column types afterwards, and whether the
    table was created (and so is empty).

    Runs in one transaction under an advisory lock on the table name, so two loaders of the same table
    (two streams mapped to it, or two runs) apply their changes one after the other.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", spec.name)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(spec.schema)}")
        current = await existing_columns(conn, spec.schema, spec.table)
        if current is None:
            current = await _rename_legacy_table(conn, spec)
        if current is None:
            await conn.execute(_create_sql(spec))
            log.info("Created table %s", spec.name)
            return {name: normalize(t) for name, t in spec.columns.items()}, True
        for name, wanted in spec.columns.items():
            legacy = legacy_conform(name)
            if name not in current and legacy in current and legacy not in spec.columns:
                await conn.execute(f"ALTER TABLE {spec.name} RENAME COLUMN {quote(legacy)} TO {quote(name)}")
                log.info(
                    "Renamed column %s.%s to %s (the name as sent)", spec.name, quote(legacy), quote(name)
                )
                current[name] = current.pop(legacy)
            if name not in current:
                await conn.execute(f"ALTER TABLE {spec.name} ADD COLUMN {quote(name)} {wanted}")
                log.info("Added column %s.%s %s", spec.name, quote(name), wanted)
                current[name] = normalize(wanted)
                continue
            target = adopt(current[name], wanted)
            if target != current[name]:
                await conn.execute(
                    f"ALTER TABLE {spec.name} ALTER COLUMN {quote(name)} TYPE {target} "
                    f"USING {_cast(quote(name), current[name], target)}"
                )
                log.info("Widened column %s.%s from %s to %s", spec.name, quote(name), current[name], target)
                current[name] = target
        if not await _keys_ready(conn, spec):
            await _create_unique_keys(conn, spec)
        return current, False


def _changes(current: dict[str, str], spec: TableSpec) -> bool:
    """Whether the table lacks a wanted column or holds one whose type must change."""
    return any(
        name not in current or adopt(current[name], wanted) != current[name]
        for name, wanted in spec.columns.items()
    )


async def _rename_legacy_table(conn: asyncpg.Connection, spec: TableSpec) -> dict[str, str] | None:
    """A table an earlier target-flx made under the conformed (lower-cased) name becomes the table under
    the name as sent; its columns, or None when there is no such table."""
    legacy = legacy_conform(spec.table)
    if legacy == spec.table or len(legacy.encode()) > MAX_IDENTIFIER_BYTES:
        return None
    current = await existing_columns(conn, spec.schema, legacy)
    if current is not None:
        await conn.execute(f"ALTER TABLE {qualified(spec.schema, legacy)} RENAME TO {quote(spec.table)}")
        log.info("Renamed table %s to %s (the name as sent)", qualified(spec.schema, legacy), spec.name)
    return current


def _cast(column: str, current: str, target: str) -> str:
    """The value of `column` as `target`: instants stay instants (a timestamp without time zone and a
    date are UTC), arrays become JSON arrays."""
    if target == "timestamp with time zone" and current == "timestamp without time zone":
        return f"{column} AT TIME ZONE 'UTC'"
    if target == "timestamp with time zone" and current == "date":
        return f"{column}::timestamp AT TIME ZONE 'UTC'"
    if target == "jsonb" and current.endswith("[]"):
        return f"to_jsonb({column})"
    return f"{column}::{target}"


def _create_sql(spec: TableSpec) -> str:
    cols = [f"{quote(n)} {t}" + (" NOT NULL" if n in spec.not_null else "") for n, t in spec.columns.items()]
    if spec.primary_key and spec.keys:
        cols.append(f"PRIMARY KEY ({', '.join(quote(k) for k in spec.keys)})")
    return f"CREATE TABLE {spec.name} ({', '.join(cols)})"


async def _keys_ready(conn: asyncpg.Connection, spec: TableSpec) -> bool:
    """Whether ON CONFLICT on the keys can work: a unique index on exactly them (when keys are needed)."""
    if not (spec.primary_key and spec.keys):
        return True
    found = await conn.fetchval(
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
    return bool(found)


async def _create_unique_keys(conn: asyncpg.Connection, spec: TableSpec) -> None:
    """An existing table (say, made by another loader) gets the unique index ON CONFLICT needs."""
    index = quote(f"{spec.table[:40]}_flx_key")
    keys = ", ".join(quote(k) for k in spec.keys)
    await conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {spec.name} ({keys})")
