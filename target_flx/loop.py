"""An asyncio loop on a background thread, holding the asyncpg pool.

The main thread parses input; COPY runs here. PostgreSQL ingests batch N on the other core while the
main thread decodes batch N+1, which is where the pipelining pays: both our threads need the GIL, the
server does not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


_PG_EPOCH_ORDINAL = datetime.date(2000, 1, 1).toordinal()
_PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_PG_EPOCH_NAIVE = datetime.datetime(2000, 1, 1)
_INT32 = struct.Struct("!i")
_INT64 = struct.Struct("!q")
_DAY_US = 86_400_000_000


def _encode_date(value: datetime.date) -> bytes:
    """asyncpg sends date.min/date.max as -infinity/infinity; 0001-01-01 and 9999-12-31 are real dates."""
    return _INT32.pack(value.toordinal() - _PG_EPOCH_ORDINAL)


def _encode_timestamptz(value: datetime.datetime) -> bytes:
    """Likewise for datetime.min/max; a naive value is UTC."""
    delta = value - (_PG_EPOCH if value.tzinfo is not None else _PG_EPOCH_NAIVE)
    return _INT64.pack(delta.days * _DAY_US + delta.seconds * 1_000_000 + delta.microseconds)


def _encode_timestamp(value: datetime.datetime) -> bytes:
    delta = value.replace(tzinfo=None) - _PG_EPOCH_NAIVE
    return _INT64.pack(delta.days * _DAY_US + delta.seconds * 1_000_000 + delta.microseconds)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb travels as binary: version byte 1 + the JSON text exactly as the tap wrote it (msgspec.Raw).
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: (
            b"\x01" + bytes(value) if not isinstance(value, str) else b"\x01" + value.encode()
        ),
        decoder=lambda data: data[1:].decode(),
        format="binary",
    )
    for type_name, encoder in (
        ("date", _encode_date),
        ("timestamptz", _encode_timestamptz),
        ("timestamp", _encode_timestamp),
    ):
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=encoder, decoder=bytes, format="binary"
        )


class LoopThread:
    def __init__(self, connect_kwargs: dict[str, Any], pool_size: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flx-copy", daemon=True)
        self._thread.start()
        self.pool: asyncpg.Pool = self.run(self._create_pool(connect_kwargs, pool_size))

    @staticmethod
    async def _create_pool(connect_kwargs: dict[str, Any], pool_size: int) -> asyncpg.Pool:
        # No statement cache: COPY introspects its table with a cached SELECT, which would go stale when
        # a column is widened mid-run. One extra round trip per batch is nothing next to the COPY.
        return await asyncpg.create_pool(
            min_size=1, max_size=pool_size, init=_init_connection, statement_cache_size=0, **connect_kwargs
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
