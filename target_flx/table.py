"""A stream's destination table: create and evolve it, its key range, ACTIVATE_VERSION, the overwrite swap.

Everything here runs between the stream's batches (nothing of the stream in flight), on the loop thread
through `LoopThread.retrying`, so a lost connection is retried and any failure is one line naming the
table. A SCHEMA's table is prepared without the main thread waiting (`StreamTable.prepare`): the main
thread reads on, and waits only when the stream's first batch needs the table's columns. The `Catalog`
answers the preparations that are waiting together, in one catalog query and one key-range query.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from target_flx import write
from target_flx.ddl import Found, TableSpec, change_table, ensure_table, read_tables
from target_flx.errors import LoadError
from target_flx.loop import LoopThread
from target_flx.naming import qualified, quote, shorten
from target_flx.types import normalize

# A key compared alike by Python and PostgreSQL: (its property's JSON kind, its column's type).
_BOUNDED_KEYS = {("integer", "smallint"), ("integer", "integer"), ("integer", "bigint"), ("date", "date")}
# Tables per key-range query: two result columns each, well below PostgreSQL's 1,664.
_RANGES_PER_QUERY = 200
KeyRange = tuple[Any, Any] | None
T = TypeVar("T")


def bounded_key(json_kind: str, pg_type: str) -> bool:
    """Whether a single key column's lowest and highest values bound the keys a batch may conflict on."""
    return (json_kind, normalize(pg_type)) in _BOUNDED_KEYS


@dataclass(frozen=True)
class Prepared:
    """A table ready for a stream: its actual columns and, for a bounded key, its key range."""

    columns: dict[str, str]
    key_range: KeyRange = None
    range_known: bool = False  # False: `key_range` was not read (no bounded key)


@dataclass
class _Request:
    spec: TableSpec
    key: tuple[str, str] | None  # (column, JSON kind) of a single key whose range may be worth reading
    answer: concurrent.futures.Future[Prepared] = field(default_factory=concurrent.futures.Future)
    columns: dict[str, str] | None = None
    created: bool = False


class Catalog:
    """Prepares tables for the run's streams on the loop thread. The requests that arrive while a round
    is being answered wait for the next round and are answered together: a run over 200 streams reads
    the catalog a few times, not 400 times."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self._waiting: list[_Request] = []  # loop thread only, like `_task`
        self._task: asyncio.Task[None] | None = None

    def prepare(self, spec: TableSpec, key: tuple[str, str] | None) -> concurrent.futures.Future[Prepared]:
        """Queue the table's preparation (from the main thread); the future holds its answer."""
        request = _Request(spec, key)
        self.loop.loop.call_soon_threadsafe(self._enqueue, request)
        return request.answer

    def _enqueue(self, request: _Request) -> None:
        self._waiting.append(request)
        if self._task is None:
            self._task = asyncio.ensure_future(self._answer_all())

    async def _answer_all(self) -> None:
        requests: list[_Request] = []
        try:
            while self._waiting:
                requests, self._waiting = self._waiting, []
                try:
                    await self._answer(requests)
                except Exception as exc:
                    for request in requests:
                        if not request.answer.done():
                            request.answer.set_exception(exc)
        finally:
            self._task = None
            for request in requests + self._waiting:  # cancelled (see `close`): nobody waits any more
                request.answer.cancel()

    def close(self, *, cancel: bool, wait_seconds: float = 10.0) -> None:
        """Before the pool closes: let the preparations under way finish (a SCHEMA's table is made as it
        would have been) for up to `wait_seconds` (a DDL may wait for a lock), then stop them; with
        `cancel` (a lost connection, a cancelled run) stop them at once."""

        async def settle() -> None:
            task = self._task
            if task is None:
                return
            if not cancel and (await asyncio.wait({task}, timeout=wait_seconds))[0]:
                return
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

        self.loop.run(settle())

    async def _answer(self, requests: list[_Request]) -> None:
        tables = [(r.spec.schema, r.spec.table) for r in requests]
        what = f"reading the columns of {len(tables)} tables"
        if len(tables) == 1:
            what = f"reading the columns of {qualified(*tables[0])}"

        async def read(conn: asyncpg.Connection) -> list[Found]:
            return await read_tables(conn, tables)

        found = await self._side(what, read)
        for request, table in zip(requests, found, strict=True):
            if table.ready_for(request.spec):
                request.columns = table.columns
                continue
            try:
                request.columns, request.created = await self._change(request.spec)
            except LoadError as exc:
                request.answer.set_exception(exc)
        ready = [r for r in requests if not r.answer.done()]
        ranges = await self._key_ranges([r for r in ready if self._range_wanted(r)])
        for request in ready:
            assert request.columns is not None
            key_range = ranges.get(id(request))
            if isinstance(key_range, LoadError):
                request.answer.set_exception(key_range)
            elif request.key is None or not bounded_key(request.key[1], request.columns[request.key[0]]):
                request.answer.set_result(Prepared(request.columns))
            else:  # read, or None: the table was created just now
                request.answer.set_result(Prepared(request.columns, key_range, True))

    async def _side(self, what: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """On the side connection: the main thread is, or soon will be, waiting for the answer."""
        return await self.loop.retrying(what, work, side=True)

    async def _change(self, spec: TableSpec) -> tuple[dict[str, str], bool]:
        async def work(conn: asyncpg.Connection) -> tuple[dict[str, str], bool]:
            return await change_table(conn, spec)

        return await self._side(f"creating or altering table {spec.name}", work)

    @staticmethod
    def _range_wanted(request: _Request) -> bool:
        """A bounded key of a table that was there before: a table created just now is empty."""
        assert request.columns is not None
        key = request.key
        return key is not None and not request.created and bounded_key(key[1], request.columns[key[0]])

    async def _key_ranges(self, requests: list[_Request]) -> dict[int, KeyRange | LoadError]:
        """Each table's key range, many tables a query. A refused query is tried again table by table,
        so the error goes to the table's stream alone and names the table."""
        ranges: dict[int, KeyRange | LoadError] = {}
        for start in range(0, len(requests), _RANGES_PER_QUERY):
            part = requests[start : start + _RANGES_PER_QUERY]
            reads = [(r.spec.schema, r.spec.table, r.key[0]) for r in part if r.key is not None]
            try:
                what = f"reading the key ranges of {len(reads)} tables"
                found: list[KeyRange | LoadError] = [*await self._side(what, _key_range_query(reads))]
            except LoadError:
                if len(reads) == 1:
                    raise
                found = [await self._key_range(read) for read in reads]
            ranges.update((id(r), value) for r, value in zip(part, found, strict=True))
        return ranges

    async def _key_range(self, read: tuple[str, str, str]) -> KeyRange | LoadError:
        what = f"reading the key range of {qualified(read[0], read[1])}"
        try:
            (found,) = await self._side(what, _key_range_query([read]))
        except LoadError as exc:
            return exc
        return found


def _key_range_query(
    reads: list[tuple[str, str, str]],
) -> Callable[[asyncpg.Connection], Awaitable[list[KeyRange]]]:
    """The lowest and highest value of each (schema, table, key column): two reads of its unique index
    per table, all in one statement (one result column each, so every key keeps its own type)."""
    parts = []
    for schema, table, column in reads:
        name, source = quote(column), qualified(schema, table)
        parts.append(f"(SELECT {name} FROM {source} ORDER BY {name} LIMIT 1)")
        parts.append(f"(SELECT {name} FROM {source} ORDER BY {name} DESC LIMIT 1)")
    sql = "SELECT " + ", ".join(parts)

    async def work(conn: asyncpg.Connection) -> list[KeyRange]:
        row = await conn.fetchrow(sql)
        assert row is not None
        return [None if row[2 * i] is None else (row[2 * i], row[2 * i + 1]) for i in range(len(reads))]

    return work


class StreamTable:
    def __init__(self, loop: LoopThread, catalog: Catalog, schema: str, table: str) -> None:
        self.loop = loop
        self.catalog = catalog
        self.schema = schema
        self.table = table
        self.write_table = table  # `<table>__flx_new` while an overwrite is loading
        self.overwriting = False
        self._preparing: concurrent.futures.Future[Prepared] | None = None

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

    def prepare(
        self,
        columns: dict[str, str],
        keys: Sequence[str],
        primary_key: bool,
        bounded: tuple[str, str] | None,
    ) -> None:
        """Create the table or add and widen its columns, without waiting (`settle` waits): the answer
        is the actual column types afterwards and, for a `bounded` key (column, JSON kind), its range."""
        spec = TableSpec(self.schema, self.write_table, columns, keys, primary_key=primary_key)
        self._preparing = self.catalog.prepare(spec, bounded)

    def settle(self, use: Callable[[Prepared], None]) -> None:
        """Wait for the table the last `prepare` asked for and hand it to `use`. Until `use` returns the
        preparation stays pending: a failure (the table's, or what `use` refuses) is raised again by
        every later call, so nothing of the stream is ever sent past it."""
        if self._preparing is None:
            return
        use(self._preparing.result())
        self._preparing = None

    def ensure(
        self, columns: dict[str, str], keys: Sequence[str] = (), primary_key: bool = False
    ) -> dict[str, str]:
        """Create the table or add and widen its columns; the actual column types afterwards."""
        spec = TableSpec(self.schema, self.write_table, columns, keys, primary_key=primary_key)

        async def work(conn: asyncpg.Connection) -> dict[str, str]:
            return await ensure_table(conn, spec)

        return self.loop.call(f"creating or altering table {spec.name}", work)

    def key_range(self, column: str) -> KeyRange:
        """The lowest and highest value of a key column: two reads of its unique index."""
        work = _key_range_query([(self.schema, self.write_table, column)])
        (found,) = self.loop.call(
            f"reading the key range of {qualified(self.schema, self.write_table)}", work
        )
        return found

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
