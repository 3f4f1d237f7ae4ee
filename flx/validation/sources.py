"""Counting rows at the source of a row_count reconciliation: an Oracle source by name, or any database
SQLAlchemy can reach by URL (another PostgreSQL, for instance).

URL engines are created on first use and disposed by `close()`, so a validation run leaves no
connections behind. Source URLs carry passwords: only `hide_password` renderings reach messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from flx.validation.identifiers import quote_qualified
from flx.validation.spec import CheckSpec

ORACLE_PREFIX = "oracle:"

# SQLAlchemy's defaults are drivers flx does not install (psycopg2, cx_Oracle)
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "oracle": "oracle+oracledb"}


class RowCounter(Protocol):
    """What a row_count check needs from an Oracle source (OracleConnectionManager provides it)."""

    def count_rows(self, table: str | None = None, query: str | None = None) -> int: ...


class SourceError(Exception):
    """The source could not be counted; `details` says why in machine-readable form (category, code)."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = dict(details or {})


def describe_source(source: str) -> str:
    """A log-safe name for a source: `oracle:<name>` as is, URLs without their password."""
    if source.startswith(ORACLE_PREFIX):
        return source
    try:
        return make_url(source).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable source URL>"


class SourceCounter:
    def __init__(self, oracle_sources: Mapping[str, RowCounter]) -> None:
        self._oracle = oracle_sources
        self._engines: dict[str, Engine] = {}

    def count(self, spec: CheckSpec) -> int:
        assert spec.source is not None
        if spec.source.startswith(ORACLE_PREFIX):
            return self._count_oracle(spec.source[len(ORACLE_PREFIX) :].strip(), spec)
        return self._count_url(spec.source, spec)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def _count_oracle(self, name: str, spec: CheckSpec) -> int:
        manager = self._oracle.get(name)
        if manager is None:
            known = ", ".join(sorted(self._oracle)) or "none configured"
            raise SourceError(f"no Oracle source named {name!r} (known: {known})", {"category": "config"})
        try:
            return manager.count_rows(table=spec.source_table, query=spec.source_query)
        except SourceError:
            raise
        except Exception as exc:
            from flx.oracle.errors import classify

            failure = classify(exc)
            raise SourceError(
                f"oracle source {name!r}: {failure.category} {failure.code or ''}".rstrip()
                + f": {failure.message}",
                {
                    "category": failure.category,
                    "code": failure.code,
                    "recoverable": failure.recoverable,
                    "severity": failure.severity,
                    "message": failure.message,
                },
            ) from exc

    def _count_url(self, source: str, spec: CheckSpec) -> int:
        engine = self._engine(source)
        if spec.source_table:
            sql = f"SELECT count(*) FROM {quote_qualified(spec.source_table, engine.dialect)}"
        else:
            sql = f"SELECT count(*) FROM ({spec.source_query}) flx_source"
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())

    def _engine(self, source: str) -> Engine:
        if source not in self._engines:
            try:
                url = make_url(source)
            except Exception:
                raise SourceError(
                    "the row_count source is neither oracle:<name> nor a database URL"
                ) from None
            url = url.set(drivername=_DRIVERS.get(url.drivername, url.drivername))
            self._engines[source] = create_engine(url, poolclass=NullPool)
        return self._engines[source]
