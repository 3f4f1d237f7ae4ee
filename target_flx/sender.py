"""Sending a stream's batches: one transaction each, in input order, through lost connections.

Batches start in submission order (the loop runs them FIFO) and each waits for the one before it just
before its merge or commit, so a batch's COPY overlaps the previous batch's merge, and a batch commits
only if the one before it committed. A lost connection is retried on a new one; a COMMIT whose answer
was lost is looked up first (`stream_loads.batches` counts the stream's committed batches), so a batch
is never written twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from target_flx import write
from target_flx.batch import Batch
from target_flx.connection import explain
from target_flx.errors import LoadError
from target_flx.history import History, LoadRow
from target_flx.loop import LoopThread

log = logging.getLogger("target_flx.stream")


@dataclass(frozen=True)
class Layout:
    """Where and how a batch is written, fixed when it is sent (the stream's table may change later)."""

    schema: str
    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    append: bool  # append-only, or a stream without keys
    stage: write.Stage  # the temp table an upsert's batch is COPYed into before its merge
    ref: write.LoadRef | None
    start: LoadRow | None = None  # the stream's history row, written with its first batch


@dataclass(frozen=True)
class Sending:
    """One batch on its way: its lines (for messages), its number in the stream, the direct-COPY hint."""

    batch: Batch
    first: int
    last: int
    nbytes: int
    number: int
    direct: bool

    @property
    def lines(self) -> str:
        return f"lines {self.first}-{self.last}"


class BatchSender:
    def __init__(self, stream: str, loop: LoopThread, history: History) -> None:
        self.stream = stream
        self.loop = loop
        self.history = history
        self._tail: asyncio.Future[bool] | None = None  # the last batch sent (loop thread only)

    async def send(self, sending: Sending, layout: Layout) -> write.BatchResult:
        previous, mine = self._tail, asyncio.get_running_loop().create_future()
        self._tail = mine
        committed = False
        session: list[int] = []  # the backend pid of the batch's connection, for the lock watch
        watch = asyncio.ensure_future(
            self.loop.watch_locks(f"stream {self.stream!r}, {sending.lines}", session)
        )
        try:
            result = await self._retrying(sending, layout, previous, session)
            committed = True
            return result
        finally:
            watch.cancel()
            mine.set_result(committed)

    async def _retrying(
        self,
        sending: Sending,
        layout: Layout,
        previous: asyncio.Future[bool] | None,
        session: list[int],
    ) -> write.BatchResult:
        async def attempt(lost: bool) -> write.BatchResult:
            if lost and await self._committed(sending.number, layout.ref):
                return write.BatchResult(inserted=sending.batch.count)
            return await self._transaction(sending, layout, previous, session)

        return await self.loop.through_losses(
            f"committing stream {self.stream!r} ({sending.lines})",
            attempt,
            lambda exc: LoadError(f"stream {self.stream!r}, {sending.lines}: {explain(exc)}"),
        )

    async def _committed(self, number: int, ref: write.LoadRef | None) -> bool:
        """Whether batch `number` committed although its COMMIT's answer was lost."""
        if ref is None:
            return False
        async with self.loop.pool.acquire() as conn:
            return await write.committed_batches(conn, ref) >= number

    async def _transaction(
        self,
        sending: Sending,
        layout: Layout,
        previous: asyncio.Future[bool] | None,
        session: list[int],
    ) -> write.BatchResult:
        batch, first, direct = sending.batch, sending.first, sending.direct
        schema, table, columns = layout.schema, layout.table, layout.columns
        result = write.BatchResult()
        async with self.loop.pool.acquire() as conn, conn.transaction():
            session.append(conn.get_server_pid())
            booking = await self._booking(conn, sending, layout)
            if batch.rejects:
                await self.history.quarantine(conn, batch.rejects)
            if batch.count and direct:
                try:
                    async with conn.transaction():  # a savepoint: a conflict falls back to the merge
                        result = await write.append(conn, schema, table, columns, batch.payload)
                except asyncpg.UniqueViolationError:  # another writer got there first
                    log.info("stream %r, from line %d: keys already there, merging", self.stream, first)
                    direct = False
            if not batch.count or direct:
                await _after(previous, first)
            elif layout.append:
                result = await write.append(conn, schema, table, columns, batch.payload)
                await _after(previous, first)
            else:
                await write.stage(conn, layout.stage, batch.payload)
                await _after(previous, first)
                result = await write.merge(
                    conn, schema, table, columns, layout.key_columns, batch.count, layout.stage, booking
                )
                booking = None  # booked by the merge
            if booking is not None:
                await write.book(conn, booking, result)
        return result

    async def _booking(
        self, conn: asyncpg.Connection, sending: Sending, layout: Layout
    ) -> write.Booking | None:
        """How the batch is booked to its stream's history row: the row itself with the first batch."""
        if layout.start is not None:
            return await self.history.start_booking(conn, layout.start, sending.nbytes, sending.number)
        if layout.ref is None:
            return None
        return write.account_booking(layout.ref, sending.nbytes, sending.number)


async def _after(previous: asyncio.Future[bool] | None, first: int) -> None:
    if previous is not None and not await previous:
        raise LoadError(f"batch from line {first} not committed: an earlier batch of its stream failed")
