"""The checks that only look at the loaded PostgreSQL table: one function per kind.

Each takes an open connection and returns a `Measurement`; exceptions are left to the runner, which turns
them into an "error" outcome. `where` is the pipeline owner's own SQL and is used verbatim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, text

from flx.validation.identifiers import quote_column, quote_qualified
from flx.validation.outcome import Measurement
from flx.validation.spec import CheckKind, CheckSpec


def where_clause(spec: CheckSpec, *conditions: str) -> str:
    parts = [f"({spec.where})"] if spec.where and spec.where.strip() else []
    parts.extend(f"({condition})" for condition in conditions)
    return f" WHERE {' AND '.join(parts)}" if parts else ""


def count_target(conn: Connection, spec: CheckSpec) -> int:
    table = quote_qualified(spec.table, conn.dialect)
    return int(conn.execute(text(f"SELECT count(*) FROM {table}{where_clause(spec)}")).scalar_one())


def not_null(conn: Connection, spec: CheckSpec) -> Measurement:
    table = quote_qualified(spec.table, conn.dialect)
    columns = [quote_column(c, conn.dialect) for c in spec.key_columns]
    any_null = " OR ".join(f"{c} IS NULL" for c in columns)
    per_column = ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in columns)
    row = conn.execute(
        text(f"SELECT count(*) FILTER (WHERE {any_null}), {per_column} FROM {table}{where_clause(spec)}")
    ).one()
    total = int(row[0])
    nulls = {name: int(n) for name, n in zip(spec.key_columns, row[1:], strict=True)}
    offenders = ", ".join(f"{name}={n}" for name, n in nulls.items() if n)
    return Measurement(
        passed=total == 0,
        observed=str(total),
        expected="0",
        message="no NULLs" if total == 0 else f"{total} row(s) with NULLs ({offenders})",
        details={"null_rows": total, "nulls_by_column": nulls},
    )


def unique(conn: Connection, spec: CheckSpec) -> Measurement:
    table = quote_qualified(spec.table, conn.dialect)
    key = ", ".join(quote_column(c, conn.dialect) for c in spec.key_columns)
    row = conn.execute(
        text(
            "SELECT count(*), coalesce(sum(n), 0) FROM ("
            f"SELECT count(*) AS n FROM {table}{where_clause(spec)} GROUP BY {key} HAVING count(*) > 1"
            ") AS duplicates"
        )
    ).one()
    groups, rows = int(row[0]), int(row[1])
    return Measurement(
        passed=groups == 0,
        observed=str(groups),
        expected="0",
        message="unique" if groups == 0 else f"{groups} duplicate key(s) over {rows} rows",
        details={"duplicate_keys": groups, "duplicate_rows": rows, "columns": list(spec.key_columns)},
    )


def freshness(conn: Connection, spec: CheckSpec) -> Measurement:
    assert spec.column is not None and spec.max_age_seconds is not None
    table = quote_qualified(spec.table, conn.dialect)
    column = quote_column(spec.column, conn.dialect)
    latest, age = conn.execute(
        text(
            f"SELECT max({column})::timestamptz, "
            f"EXTRACT(EPOCH FROM now() - max({column})::timestamptz) FROM {table}{where_clause(spec)}"
        )
    ).one()
    expected = f"<= {spec.max_age_seconds}s"
    if latest is None:
        return Measurement(False, None, expected, f"no {spec.column} value: the table is empty", {})
    seconds = float(age)
    return Measurement(
        passed=seconds <= spec.max_age_seconds,
        observed=f"{seconds:.0f}s",
        expected=expected,
        message=f"latest {spec.column} is {latest.isoformat()}, {seconds:.0f}s old",
        details={"latest": latest.isoformat(), "age_seconds": round(seconds, 3)},
    )


def min_rows(conn: Connection, spec: CheckSpec) -> Measurement:
    assert spec.min_rows is not None
    rows = count_target(conn, spec)
    return Measurement(
        passed=rows >= spec.min_rows,
        observed=str(rows),
        expected=f">= {spec.min_rows}",
        message=f"{rows} row(s), at least {spec.min_rows} required",
        details={"rows": rows},
    )


def accepted_values(conn: Connection, spec: CheckSpec) -> Measurement:
    assert spec.column is not None
    table = quote_qualified(spec.table, conn.dialect)
    column = quote_column(spec.column, conn.dialect)
    outside = where_clause(spec, f"{column} IS NOT NULL", f"CAST({column} AS text) NOT IN :values")
    values: BindParameter[Any] = bindparam("values", list(spec.values), expanding=True)
    bad = int(conn.execute(text(f"SELECT count(*) FROM {table}{outside}").bindparams(values)).scalar_one())
    sample: list[Any] = []
    if bad:
        sample = list(
            conn.execute(
                text(
                    f"SELECT DISTINCT CAST({column} AS text) AS v FROM {table}{outside} ORDER BY v LIMIT 5"
                ).bindparams(values)
            ).scalars()
        )
    return Measurement(
        passed=bad == 0,
        observed=str(bad),
        expected="0",
        message="all values accepted" if not bad else f"{bad} row(s) with other values, e.g. {sample}",
        details={"rejected_rows": bad, "sample": sample},
    )


TARGET_CHECKS: dict[CheckKind, Callable[[Connection, CheckSpec], Measurement]] = {
    "not_null": not_null,
    "unique": unique,
    "freshness": freshness,
    "min_rows": min_rows,
    "accepted_values": accepted_values,
}
