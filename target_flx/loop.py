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
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

from target_flx.connection import Reconnect, first_line, is_connection_loss, pause
from target_flx.errors import LoadError

T = TypeVar("T")
log = logging.getLogger("target_flx")

Work = Callable[[asyncpg.Connection], Awaitable[T]]


class LoopThread:
    def __init__(self, connect_kwargs: dict[str, Any], pool_size: int, reconnect: Reconnect) -> None:
        self.reconnect = reconnect
        self.server = server_address(connect_kwargs)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flx-copy", daemon=True)
        self._thread.start()
        try:
            self.pool: asyncpg.Pool = self.run(self._create_pool(connect_kwargs, pool_size))
        except BaseException as exc:
            self._stop()
            if isinstance(exc, Exception) and not isinstance(exc, LoadError):
                raise LoadError(
                    f"cannot connect to PostgreSQL at {self.server}: {first_line(exc)}",
                    connection_lost=is_connection_loss(exc),
                ) from exc
            raise

    async def _create_pool(self, connect_kwargs: dict[str, Any], pool_size: int) -> asyncpg.Pool:
        # No statement cache: a cached statement's result types go stale when a column is widened
        # mid-run. One extra round trip per batch is nothing next to the COPY.
        delays = self.reconnect.delays()
        while True:
            try:
                return await asyncpg.create_pool(
                    min_size=1, max_size=pool_size, statement_cache_size=0, **connect_kwargs
                )
            except asyncpg.exceptions.CannotConnectNowError as exc:  # starting up: worth waiting for
                delay = next(delays, None)
                if delay is None:
                    raise
                log.warning("PostgreSQL at %s: %s; retrying in %.1f s", self.server, first_line(exc), delay)
                await pause(delay)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def call(self, what: str, work: Work[T], *, transaction: bool = False) -> T:
        """Run `work(conn)` on a pooled connection from the main thread; `what` names it in errors."""
        return self.run(self.retrying(what, work, transaction=transaction))

    async def retrying(self, what: str, work: Work[T], *, transaction: bool = False) -> T:
        """`work(conn)`, again on a new connection while connections are being lost (bounded)."""
        delays = self.reconnect.delays()
        while True:
            try:
                async with self.pool.acquire() as conn:
                    if not transaction:
                        return await work(conn)
                    async with conn.transaction():
                        return await work(conn)
            except LoadError:
                raise
            except Exception as exc:
                if not is_connection_loss(exc):
                    raise LoadError(f"{what}: {first_line(exc)}") from exc
                delay = next(delays, None)
                if delay is None:
                    raise self.lost(what, exc) from exc
                log.warning(
                    "lost the connection to PostgreSQL at %s while %s (%s); retrying in %.1f s",
                    self.server,
                    what,
                    first_line(exc),
                    delay,
                )
                await pause(delay)

    def lost(self, what: str, exc: BaseException) -> LoadError:
        return LoadError(
            f"lost the connection to PostgreSQL at {self.server} while {what}: {first_line(exc)}",
            connection_lost=True,
        )

    def close(self) -> None:
        try:
            self.run(asyncio.wait_for(self.pool.close(), timeout=10))
        except Exception:
            self.pool.terminate()
        self._stop()

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def server_address(connect_kwargs: dict[str, Any]) -> str:
    """host:port for messages (never the password)."""
    host = connect_kwargs.get("host") or "localhost"
    if isinstance(host, list | tuple):
        host = ",".join(map(str, host))
    port = connect_kwargs.get("port") or 5432
    if isinstance(port, list | tuple):
        port = ",".join(map(str, port))
    return f"{host}:{port}"
