"""Riding out a database restart or failover: a write that fails for want of a connection is tried again.

A restart takes seconds and a failover a minute at most; the run they interrupt may have taken hours. So
recording what happened (status changes, events) waits for the database, with backoff, for a bounded time,
and says so in one log line, instead of throwing away a finished job's outcome with a traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """The database stayed unreachable for the whole retry period."""


def is_transient(exc: BaseException) -> bool:
    """A lost or refused connection (restart, failover, network): worth trying again on a new one."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True)
class DatabaseRetry:
    """How long, and how often, a write waits for the database to come back."""

    deadline_seconds: float = 60.0
    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 5.0

    def call(self, write: Callable[[bool], T], what: str) -> T:
        """`write(retrying)` until it succeeds, fails for another reason, or the deadline passes.

        `retrying` is True after a failed attempt, whose commit may have reached the server anyway:
        the write can then check whether its work is already done.
        """
        started = time.monotonic()
        delay = self.first_delay_seconds
        failures = 0
        while True:
            try:
                return write(failures > 0)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                waited = time.monotonic() - started
                if waited + delay > self.deadline_seconds:
                    raise DatabaseUnavailable(
                        f"could not record {what}: the database was unreachable for {waited:.0f} s "
                        f"({short_reason(exc)})"
                    ) from None
                if failures == 1:
                    log.warning(
                        "database unreachable while recording %s (%s); retrying for up to %.0f s",
                        what,
                        short_reason(exc),
                        self.deadline_seconds,
                    )
                time.sleep(delay)
                delay = min(delay * 2, self.max_delay_seconds)


def short_reason(exc: BaseException) -> str:
    """The driver's first line, not SQLAlchemy's page of SQL and links."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()
    return f"{type(original).__name__}: {first[0]}" if first else type(original).__name__
