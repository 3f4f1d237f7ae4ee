"""procrastinate's psycopg connector, made to ride out a database restart instead of stopping `flx worker`.

procrastinate stops a worker when one of its side tasks fails, and a restart fails two of them at once: the
worker heartbeat's query and the LISTEN connection's reconnect. The worker would then wait for its running
job and exit, leaving nothing to pick up the next one. Here a query that lost its connection is tried again
on a new one (bounded, with backoff, one log line), and the listener reconnects until it succeeds (polling
finds new jobs meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import procrastinate
import psycopg
from procrastinate import connector
from procrastinate.exceptions import ConnectorException

from flx.execution.dbretry import DatabaseRetry, short_reason

log = logging.getLogger(__name__)

T = TypeVar("T")


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectorException) and isinstance(exc.__cause__, psycopg.OperationalError)


class ResilientConnector(procrastinate.PsycopgConnector):
    """Queries wait for the database (as `DatabaseRetry` does for the runner); LISTEN reconnects."""

    retry = DatabaseRetry()

    async def _again(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        started = time.monotonic()
        delay = self.retry.first_delay_seconds
        failures = 0
        while True:
            try:
                return await call()
            except ConnectorException as exc:
                waited = time.monotonic() - started
                if not _transient(exc) or waited + delay > self.retry.deadline_seconds:
                    raise
                failures += 1
                if failures == 1:
                    log.warning(
                        "queue: database unreachable (%s); retrying %s for up to %.0f s",
                        short_reason(exc.__cause__ or exc),
                        what,
                        self.retry.deadline_seconds,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry.max_delay_seconds)

    async def execute_query_async(self, query: Any, **arguments: Any) -> None:
        await self._again(
            lambda: super(ResilientConnector, self).execute_query_async(query, **arguments), "a query"
        )

    async def execute_query_one_async(self, query: Any, **arguments: Any) -> dict[str, Any]:
        return await self._again(
            lambda: super(ResilientConnector, self).execute_query_one_async(query, **arguments), "a query"
        )

    async def execute_query_all_async(self, query: Any, **arguments: Any) -> list[dict[str, Any]]:
        return await self._again(
            lambda: super(ResilientConnector, self).execute_query_all_async(query, **arguments), "a query"
        )

    async def listen_notify(self, on_notification: connector.Notify, channels: Iterable[str]) -> None:
        delay = self.retry.first_delay_seconds
        warned = False
        while True:
            listening = time.monotonic()
            try:
                await super().listen_notify(on_notification, channels)
            except ConnectorException as exc:
                if not _transient(exc):
                    raise
                if time.monotonic() - listening > 10 * self.retry.max_delay_seconds:
                    delay, warned = self.retry.first_delay_seconds, False  # a new outage
                if not warned:
                    log.warning(
                        "queue: lost the LISTEN connection (%s); reconnecting, polling meanwhile",
                        short_reason(exc.__cause__ or exc),
                    )
                    warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry.max_delay_seconds)
