"""A stream's destination table: create and evolve it, its key range, ACTIVATE_VERSION, the overwrite swap.

Everything here runs from the main thread between batches (nothing of the stream in flight), through
`LoopThread.call`, so a lost connection is retried and any failure is one line naming the table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from target_flx import write
from target_flx.ddl import TableSpec, ensure_table
from target_flx.loop import LoopThread
from target_flx.naming import qualified, quote, shorten


class StreamTable:
    def __init__(self, loop: LoopThread, schema: str, table: str) -> None:
        self.loop = loop
        self.schema = schema
        self.table = table
        self.write_table = table  # `<table>__flx_new` while an overwrite is loading
        self.overwriting = False

    @property
    def name(self) -> str:
        return qualified(self.schema, self.table)

    def start_overwrite(self) -> None:
        """Load into a fresh `<table>__flx_new`; `swap` puts it in place at the end."""
        self.write_table = shorten(f"{self.table}__flx_new")
        staging = qualified(self.schema, self.write_table)

        async def drop(conn: asyncpg.Connection) -> None:
            await conn.execute(f"DROP TABLE IF EXISTS {staging}")

        self.loop.call(f"preparing table {staging}", drop)
        self.overwriting = True

    def ensure(
        self, columns: dict[str, str], keys: Sequence[str] = (), primary_key: bool = False
    ) -> dict[str, str]:
        """Create the table or add and widen its columns; the actual column types afterwards."""
        spec = TableSpec(self.schema, self.write_table, columns, keys, primary_key=primary_key)

        async def work(conn: asyncpg.Connection) -> dict[str, str]:
            return await ensure_table(conn, spec)

        return self.loop.call(f"creating or altering table {spec.name}", work)

    def key_range(self, column: str) -> tuple[Any, Any] | None:
        """The lowest and highest value of a key column: two reads of its unique index."""
        name, table = quote(column), qualified(self.schema, self.write_table)

        async def work(conn: asyncpg.Connection) -> tuple[Any, Any] | None:
            row = await conn.fetchrow(
                f"SELECT (SELECT {name} FROM {table} ORDER BY {name} LIMIT 1) AS lo,"
                f" (SELECT {name} FROM {table} ORDER BY {name} DESC LIMIT 1) AS hi"
            )
            return None if row is None or row["lo"] is None else (row["lo"], row["hi"])

        return self.loop.call(f"reading the key range of {table}", work)

    def retire(
        self,
        version: int,
        hard_delete: bool,
        ref: write.LoadRef | None,
        before: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> int:
        """ACTIVATE_VERSION: rows of older versions are deleted or soft-deleted, in one transaction
        (`before` runs first in it: the stream's history row)."""

        async def work(conn: asyncpg.Connection) -> int:
            if before is not None:
                await before(conn)
            deleted = await write.retire_versions(
                conn, self.schema, self.write_table, version, hard_delete=hard_delete
            )
            await write.account(conn, ref, write.BatchResult(deleted=deleted), 0)
            return deleted

        return self.loop.call(
            f"applying ACTIVATE_VERSION to {qualified(self.schema, self.write_table)}", work, transaction=True
        )

    def swap(self) -> None:
        """The overwrite's new table replaces the old one in one transaction: readers see old or new.
        Safe to repeat after a lost connection: once the new table is in place there is nothing to do."""
        if not self.overwriting:
            return
        target, staging = self.name, qualified(self.schema, self.write_table)

        async def work(conn: asyncpg.Connection) -> None:
            if await conn.fetchval("SELECT to_regclass($1)", staging) is None:
                return
            await conn.execute(f"DROP TABLE IF EXISTS {target}")
            await conn.execute(f"ALTER TABLE {staging} RENAME TO {quote(self.table)}")

        self.loop.call(f"replacing {target} with {staging}", work, transaction=True)
        self.write_table = self.table
        self.overwriting = False
