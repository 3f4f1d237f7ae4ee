"""An asyncio loop on a background thread, holding the asyncpg pool.

The main thread parses input; COPY runs here. PostgreSQL ingests batch N on the other core while the
main thread decodes batch N+1, which is where the pipelining pays: both our threads need the GIL, the
server does not.

`call` is the main thread's way to the database: one unit of work on a pooled connection, retried on a
new connection when the old one is lost, and any failure turned into one `LoadError` line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

from target_flx.connection import Reconnect, explain, first_line, is_connection_loss, pause
from target_flx.errors import LoadError

T = TypeVar("T")
log = logging.getLogger("target_flx")
# The pool logs a traceback each time it fails to reopen its idle connection while the server is away;
# target-flx says that once itself, in one line, for the work that waits on it.
logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)

LOCK_WATCH_SECONDS = 10
Work = Callable[[asyncpg.Connection], Awaitable[T]]


class LoopThread:
    def __init__(self, connect_kwargs: dict[str, Any], pool_size: int, reconnect: Reconnect) -> None:
        self.reconnect = reconnect
        self.server = server_address(connect_kwargs)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flx-copy", daemon=True)
        self._thread.start()
        try:
            # The main thread's work (a table's DDL, the catalog, the history) has a connection of its
            # own: it never queues behind the batches that hold the pool. Opened now, it tells at once
            # whether the server can be reached; the batches' first connection opens meanwhile.
            self.side: asyncpg.Pool = self.run(self._create_pool(connect_kwargs, 1))
            self.pool: asyncpg.Pool = self.run(self._create_pool(connect_kwargs, pool_size, min_size=0))
            self._warm_up = self.submit(self._open_one())
        except BaseException as exc:
            self._stop()
            if isinstance(exc, Exception) and not isinstance(exc, LoadError):
                raise LoadError(
                    f"cannot connect to PostgreSQL at {self.server}: {first_line(exc)}",
                    connection_lost=is_connection_loss(exc),
                ) from exc
            raise

    async def _create_pool(
        self, connect_kwargs: dict[str, Any], pool_size: int, min_size: int = 1
    ) -> asyncpg.Pool:
        # No statement cache: a cached statement's result types go stale when a column is widened
        # mid-run. One extra round trip per batch is nothing next to the COPY.
        delays = self.reconnect.delays()
        while True:
            try:
                return await asyncpg.create_pool(
                    min_size=min_size,
                    max_size=pool_size,
                    statement_cache_size=0,
                    reset=_keep_session,
                    **connect_kwargs,
                )
            except asyncpg.exceptions.CannotConnectNowError as exc:  # starting up: worth waiting for
                delay = next(delays, None)
                if delay is None:
                    raise
                log.warning("PostgreSQL at %s: %s; retrying in %.1f s", self.server, first_line(exc), delay)
                await pause(delay)

    async def _open_one(self) -> None:
        """The batches' first connection, opened while the main thread reads; a failure here is left for
        the first batch to meet (and retry)."""
        with contextlib.suppress(Exception):
            async with self.pool.acquire():
                pass

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def call(self, what: str, work: Work[T], *, transaction: bool = False) -> T:
        """Run `work(conn)` from the main thread, on the side connection; `what` names it in errors."""
        return self.run(self.retrying(what, work, transaction=transaction, side=True))

    async def retrying(self, what: str, work: Work[T], *, transaction: bool = False, side: bool = False) -> T:
        """`work(conn)`, again on a new connection while connections are being lost (bounded); `side`:
        on the side connection, for work the main thread waits for."""
        session: list[int] = []
        watch = asyncio.ensure_future(self.watch_locks(what, session))
        try:
            return await self._retrying(what, work, transaction, session, self.side if side else self.pool)
        finally:
            watch.cancel()

    async def _retrying(
        self, what: str, work: Work[T], transaction: bool, session: list[int], pool: asyncpg.Pool
    ) -> T:
        async def attempt(lost: bool) -> T:
            async with pool.acquire() as conn:
                session.append(conn.get_server_pid())
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)

        return await self.through_losses(what, attempt, lambda exc: LoadError(f"{what}: {explain(exc)}"))

    async def through_losses(
        self,
        what: str,
        attempt: Callable[[bool], Awaitable[T]],
        refused: Callable[[Exception], LoadError],
    ) -> T:
        """`attempt(lost)` until it succeeds, again after each lost connection (`lost` then True) for up to
        `reconnect.seconds`; a refused statement becomes `refused(exc)`, a loss past the bound one line."""
        delays = self.reconnect.delays()
        lost = False
        while True:
            try:
                result = await attempt(lost)
                if lost:
                    log.warning("%s: reconnected to PostgreSQL at %s", what, self.server)
                return result
            except LoadError:
                raise
            except Exception as exc:
                if not is_connection_loss(exc):
                    raise refused(exc) from exc
                delay = next(delays, None)
                if delay is None:
                    raise self.lost(what, exc) from exc
                lost = True
                log.warning(
                    "lost the connection to PostgreSQL at %s while %s (%s); retrying in %.1f s",
                    self.server,
                    what,
                    first_line(exc),
                    delay,
                )
                await pause(delay)

    async def watch_locks(self, what: str, session: list[int]) -> None:
        """Every 10 s that `what` takes, say so if its session is waiting for a lock, and on whom."""
        waited = 0
        while True:
            await asyncio.sleep(LOCK_WATCH_SECONDS)
            waited += LOCK_WATCH_SECONDS
            if not session:
                continue
            try:
                async with self.pool.acquire() as conn:
                    row = await conn.fetchrow(
                        "SELECT wait_event_type, pg_blocking_pids(pid) AS blockers,"
                        " (SELECT string_agg(DISTINCT l.relation::regclass::text, ', ') FROM pg_locks l"
                        "  WHERE l.pid = a.pid AND NOT l.granted AND l.relation IS NOT NULL) AS tables"
                        " FROM pg_stat_activity a WHERE pid = $1",
                        session[-1],
                    )
            except Exception:  # the watch only informs: a failure here must not touch the work
                continue
            if row is not None and row["wait_event_type"] == "Lock":
                log.warning(
                    "%s: waiting %d s for a lock on %s held by session %s"
                    " (lock_timeout_seconds bounds the wait)",
                    what,
                    waited,
                    row["tables"] or "a table",
                    ", ".join(map(str, row["blockers"])) or "?",
                )

    def lost(self, what: str, exc: BaseException) -> LoadError:
        return LoadError(
            f"lost the connection to PostgreSQL at {self.server} while {what}: {first_line(exc)}",
            connection_lost=True,
        )

    def close(self) -> None:
        with contextlib.suppress(BaseException):
            self._warm_up.result(timeout=10)
        pools = (self.pool, self.side)
        closing = [self.submit(asyncio.wait_for(pool.close(), timeout=10)) for pool in pools]
        for pool, closed in zip(pools, closing, strict=True):  # both at once: each waits for its server
            try:
                closed.result()
            except Exception:
                pool.terminate()
        self._stop()

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection going back to the pool keeps its session as it is: target-flx changes no session
    state (no SET, LISTEN, cursor or session-level advisory lock), and asyncpg itself still rolls back a
    transaction left open. The default reset was one more round trip for every batch and every call;
    the stage tables a connection holds are meant to stay."""


def server_address(connect_kwargs: dict[str, Any]) -> str:
    """host:port for messages (never the password)."""
    host = connect_kwargs.get("host") or "localhost"
    if isinstance(host, list | tuple):
        host = ",".join(map(str, host))
    port = connect_kwargs.get("port") or 5432
    if isinstance(port, list | tuple):
        port = ",".join(map(str, port))
    return f"{host}:{port}"
