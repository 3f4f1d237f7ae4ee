"""One Oracle source: a lazily created python-oracledb (thin mode) pool, plus the few operations the
orchestrator needs from it: a health check, row counts for reconciliation, and streaming reads.

The pool is created on first use, so configuring a source that a given run never touches costs nothing
and cannot fail the run. Its getmode is TIMEDWAIT, so an unreachable or exhausted source fails within
`connect_timeout` instead of blocking; `call_timeout_ms` bounds every call on a connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import oracledb

from flx.oracle.health import HealthResult, probe
from flx.oracle.identifiers import oracle_table
from flx.oracle.params import describe_target, pool_params
from flx.oracle.settings import OracleSourceSettings

log = logging.getLogger(__name__)


class OracleConnectionManager:
    def __init__(self, settings: OracleSourceSettings) -> None:
        self.settings = settings
        self.params = pool_params(settings)  # raises OracleConfigError on unusable settings
        self.dsn = settings.dsn
        self._pool: oracledb.ConnectionPool | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        user = self.settings.user or "<wallet>"
        return f"OracleConnectionManager({self.settings.name!r}, {user}@{describe_target(self.settings)})"

    __str__ = __repr__

    @property
    def name(self) -> str:
        return self.settings.name

    # --- lifecycle ------------------------------------------------------------------------------------

    def _get_pool(self) -> oracledb.ConnectionPool:
        with self._lock:
            if self._pool is None:
                log.info("Opening Oracle pool for %r", self)
                self._pool = oracledb.create_pool(dsn=self.dsn, params=self.params)
            return self._pool

    def close(self) -> None:
        """Close the pool without waiting on a stuck login (see health.py); a no-op when never opened."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        closer = threading.Thread(target=_close_pool, args=(pool,), daemon=True, name="flx-oracle-close")
        closer.start()
        closer.join(self.settings.connect_timeout)
        if closer.is_alive():
            log.warning("Oracle pool for %r did not close within %ss", self, self.settings.connect_timeout)

    def __enter__(self) -> OracleConnectionManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def connection(self) -> Iterator[oracledb.Connection]:
        """A pooled connection with `call_timeout` set; back to the pool when the block ends."""
        with self._get_pool().acquire() as conn:
            conn.call_timeout = self.settings.call_timeout_ms
            yield conn

    # --- operations -----------------------------------------------------------------------------------

    def health_check(self) -> HealthResult:
        """Connect (a fresh session, not the pool: it tests the credentials too) and run one query."""

        def attempt() -> None:
            with oracledb.connect(dsn=self.dsn, params=self.params) as conn:
                conn.call_timeout = self.settings.call_timeout_ms
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM dual")
                    cursor.fetchone()

        result = probe(self.settings.name, attempt, self.settings.connect_timeout)
        if result.ok:
            log.info("Oracle source %r healthy (%.0f ms)", self.settings.name, result.latency_ms)
        else:
            log.warning("Oracle source %r unhealthy: %s: %s", self.name, result.category, result.message)
        return result

    def count_rows(self, table: str | None = None, query: str | None = None) -> int:
        """`SELECT COUNT(*)` of a table (`SCHEMA.TABLE`, validated and quoted) or of a query's rows."""
        if (table is None) == (query is None):
            raise ValueError("count_rows needs exactly one of `table` and `query`")
        if table is not None:
            sql = f"SELECT COUNT(*) FROM {oracle_table(table)}"
        else:
            assert query is not None
            sql = f"SELECT COUNT(*) FROM ({query.strip().rstrip(';')})"
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
        assert row is not None
        return int(row[0])


def _close_pool(pool: oracledb.ConnectionPool) -> None:
    try:
        pool.close(force=True)
    except Exception as exc:  # closing is best effort: the process is usually about to end
        log.debug("Closing an Oracle pool failed: %s", exc)
