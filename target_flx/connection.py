"""A lost connection is an expected event: told apart from a refused statement, retried with backoff.

A server restart, a failover or `pg_terminate_backend` ends every connection of the pool at once. The
work that was in a transaction then was rolled back by the server (or, for a COMMIT already sent, may
have committed: callers that care check the database before retrying), so it is safe to run it again on
a new connection. A refused statement (a constraint, a full disk, a type error) is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

log = logging.getLogger("target_flx")

_LOST = (
    OSError,  # refused, reset, broken pipe: the server is down or restarting
    asyncio.TimeoutError,  # connecting timed out
    asyncpg.PostgresConnectionError,  # 08xxx, "connection was closed in the middle of operation"
    asyncpg.InterfaceError,  # "the underlying connection is closed"
    asyncpg.exceptions.AdminShutdownError,  # 57P01, terminated by an administrator or a fast shutdown
    asyncpg.exceptions.CrashShutdownError,  # 57P02, another backend crashed
    asyncpg.exceptions.CannotConnectNowError,  # 57P03, starting up or shutting down
)


def is_connection_loss(exc: BaseException) -> bool:
    """The connection (not the statement) failed; the cause chain counts, asyncpg wraps some."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, _LOST):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Reconnect:
    """How long to keep trying a new connection after losing one: `seconds` in all, backoff doubling."""

    seconds: float
    first_delay: float = 0.25
    max_delay: float = 5.0

    def delays(self) -> Iterator[float]:
        """The waits before each retry; stops once `seconds` would be exceeded."""
        deadline = time.monotonic() + self.seconds
        delay = self.first_delay
        while time.monotonic() + delay <= deadline:
            yield delay
            delay = min(delay * 2, self.max_delay)


async def pause(delay: float) -> None:
    await asyncio.sleep(delay)


def explain(exc: BaseException) -> str:
    """A refused statement's first line, with what to do when PostgreSQL's words do not say it."""
    text = first_line(exc)
    if getattr(exc, "sqlstate", None) == "55P03":  # lock_not_available: lock_timeout ran out
        return f"{text}: another session holds a lock on the table (see lock_timeout_seconds)"
    return text
