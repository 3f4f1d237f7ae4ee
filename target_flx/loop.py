"""An asyncio loop on a background thread, holding the asyncpg pool.

The main thread parses input; COPY runs here. PostgreSQL ingests batch N on the other core while the
main thread decodes batch N+1, which is where the pipelining pays: both our threads need the GIL, the
server does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


class LoopThread:
    def __init__(self, connect_kwargs: dict[str, Any], pool_size: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flx-copy", daemon=True)
        self._thread.start()
        self.pool: asyncpg.Pool = self.run(self._create_pool(connect_kwargs, pool_size))

    @staticmethod
    async def _create_pool(connect_kwargs: dict[str, Any], pool_size: int) -> asyncpg.Pool:
        # No statement cache: a cached statement's result types go stale when a column is widened
        # mid-run. One extra round trip per batch is nothing next to the COPY.
        return await asyncpg.create_pool(
            min_size=1, max_size=pool_size, statement_cache_size=0, **connect_kwargs
        )

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def close(self) -> None:
        try:
            self.run(asyncio.wait_for(self.pool.close(), timeout=10))
        except Exception:
            self.pool.terminate()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()
