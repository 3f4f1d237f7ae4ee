"""ValidationRunner against real tables in the test database, results read back from the control schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx.validation.runner import ValidationRunner
from flx.validation.spec import CheckSpec
from flx_core.migrate import ensure_schema
from flx_core.models import Execution, Pipeline, ValidationResult
from tests.flx.webhook import closed_port


@pytest.fixture(scope="module")
def control(engine: Engine) -> Engine:
    ensure_schema(engine, "flx")
    return engine


@pytest.fixture
def schema(control: Engine, fresh_schema_name: str) -> Iterator[str]:
    """orders: 6 rows, one NULL customer, one duplicate id, one odd status, fresh and stale timestamps."""
    with control.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{fresh_schema_name}"'))
        conn.execute(
            text(
                f'CREATE TABLE "{fresh_schema_name}".orders '
                "(id int, line int, customer text, status text, updated_at timestamptz, day date)"
            )
        )
        conn.execute(
            text(
                f'INSERT INTO "{fresh_schema_name}".orders VALUES '
                "(1, 1, 'acme', 'open', now() - interval '10 minutes', current_date),"
                "(2, 1, 'acme', 'shipped', now() - interval '2 days', current_date - 2),"
                "(3, 1, NULL, 'open', now() - interval '3 days', current_date - 3),"
                "(4, 1, 'zeta', 'lost', now() - interval '3 days', current_date - 3),"
                "(4, 2, 'zeta', 'open', now() - interval '3 days', current_date - 3),"
                "(4, 2, 'zeta', NULL, now() - interval '3 days', current_date - 3)"
            )
        )
        conn.execute(text(f'CREATE TABLE "{fresh_schema_name}".source_orders (id int)'))
        conn.execute(text(f'INSERT INTO "{fresh_schema_name}".source_orders SELECT generate_series(1, 100)'))
        conn.execute(text(f'CREATE TABLE "{fresh_schema_name}".empty (id int, at timestamptz)'))
    yield fresh_schema_name
    with control.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{fresh_schema_name}" CASCADE'))


@pytest.fixture
def runner(control: Engine) -> ValidationRunner:
    return ValidationRunner(control, {})


def check(**fields: Any) -> CheckSpec:
    fields.setdefault("name", f"check_{uuid.uuid4().hex[:6]}")
    return CheckSpec(**fields)


def run_one(runner: ValidationRunner, spec: CheckSpec) -> Any:
    (outcome,) = runner.run([spec], None)
    return outcome


def source_url(database_url: URL) -> str:
    return database_url.render_as_string(hide_password=False)


# --- target-only kinds -------------------------------------------------------------------------------


def test_not_null(runner: ValidationRunner, schema: str) -> None:
    ok = run_one(runner, check(kind="not_null", table=f"{schema}.orders", columns=["id", "line"]))
    assert (ok.status, ok.observed, ok.expected) == ("passed", "0", "0")

    bad = run_one(
        runner, check(kind="not_null", table=f"{schema}.orders", columns=["id", "customer", "status"])
    )
    assert (bad.status, bad.observed) == ("failed", "2")
    assert bad.details["nulls_by_column"] == {"id": 0, "customer": 1, "status": 1}
    assert "customer=1" in bad.message and "\n" not in bad.message


def test_unique(runner: ValidationRunner, schema: str) -> None:
    bad = run_one(runner, check(kind="unique", table=f"{schema}.orders", columns=["id"]))
    assert (bad.status, bad.observed) == ("failed", "1")
    assert bad.details["duplicate_rows"] == 3

    composite = run_one(runner, check(kind="unique", table=f"{schema}.orders", columns=["id", "line"]))
    assert (composite.status, composite.observed) == ("failed", "1")

    filtered = run_one(
        runner,
        check(kind="unique", table=f"{schema}.orders", columns=["id", "line"], where="status IS NOT NULL"),
    )
    assert filtered.status == "passed"

    single = run_one(runner, check(kind="unique", table=f"{schema}.source_orders", column="id"))
    assert single.status == "passed"


def test_freshness(runner: ValidationRunner, schema: str) -> None:
    fresh = run_one(
        runner, check(kind="freshness", table=f"{schema}.orders", column="updated_at", max_age_seconds=3600)
    )
    assert fresh.status == "passed"
    assert 500 <= fresh.details["age_seconds"] <= 3600

    stale = run_one(
        runner,
        check(
            kind="freshness",
            table=f"{schema}.orders",
            column="updated_at",
            max_age_seconds=86_400,
            where="customer = 'zeta'",
        ),
    )
    assert stale.status == "failed"
    assert 3 * 86_400 - 60 <= stale.details["age_seconds"] <= 3 * 86_400 + 60

    by_date = run_one(
        runner, check(kind="freshness", table=f"{schema}.orders", column="day", max_age_seconds=2 * 86_400)
    )
    assert by_date.status == "passed"

    empty = run_one(runner, check(kind="freshness", table=f"{schema}.empty", column="at", max_age_seconds=60))
    assert empty.status == "failed" and "empty" in empty.message


def test_min_rows(runner: ValidationRunner, schema: str) -> None:
    assert run_one(runner, check(kind="min_rows", table=f"{schema}.orders", min_rows=6)).status == "passed"
    low = run_one(runner, check(kind="min_rows", table=f"{schema}.orders", min_rows=7))
    assert (low.status, low.observed, low.expected) == ("failed", "6", ">= 7")
    filtered = run_one(runner, check(kind="min_rows", table=f"{schema}.orders", min_rows=2, where="id = 4"))
    assert filtered.status == "passed" and filtered.observed == "3"
    assert run_one(runner, check(kind="min_rows", table=f"{schema}.empty", min_rows=1)).status == "failed"


def test_accepted_values(runner: ValidationRunner, schema: str) -> None:
    bad = run_one(
        runner,
        check(kind="accepted_values", table=f"{schema}.orders", column="status", values=["open", "shipped"]),
    )
    assert (bad.status, bad.observed) == ("failed", "1")  # NULL is not_null's business
    assert bad.details["sample"] == ["lost"]

    ok = run_one(
        runner,
        check(
            kind="accepted_values",
            table=f"{schema}.orders",
            column="status",
            values=["open", "shipped", "lost"],
        ),
    )
    assert ok.status == "passed"

    numbers = run_one(
        runner, check(kind="accepted_values", table=f"{schema}.orders", column="line", values=["1"])
    )
    assert (numbers.status, numbers.observed) == ("failed", "2")


# --- row_count reconciliation --------------------------------------------------------------------------


def test_row_count_against_another_postgres_source(
    runner: ValidationRunner, schema: str, database_url: URL
) -> None:
    url = source_url(database_url)
    equal = run_one(
        runner,
        check(
            kind="row_count",
            table=f"{schema}.orders",
            source=url,
            source_query=f'SELECT * FROM "{schema}".source_orders WHERE id <= 6',
        ),
    )
    assert (equal.status, equal.observed, equal.expected) == ("passed", "6", "6")

    off = run_one(
        runner,
        check(kind="row_count", table=f"{schema}.orders", source=url, source_table=f"{schema}.source_orders"),
    )
    assert (off.status, off.observed, off.expected) == ("failed", "6", "100")
    assert off.details["difference"] == 94


def test_row_count_tolerance(runner: ValidationRunner, schema: str, database_url: URL) -> None:
    url = source_url(database_url)
    base = {"kind": "row_count", "table": f"{schema}.orders", "source": url}
    query = f'SELECT 1 FROM "{schema}".source_orders WHERE id <= 8'  # 8 at the source, 6 loaded

    assert run_one(runner, check(**base, source_query=query, tolerance_rows=2)).status == "passed"
    assert run_one(runner, check(**base, source_query=query, tolerance_rows=1)).status == "failed"
    assert run_one(runner, check(**base, source_query=query, tolerance_pct=25)).status == "passed"
    pct_short = run_one(runner, check(**base, source_query=query, tolerance_pct=20))
    assert pct_short.status == "failed" and pct_short.details["allowed"] == 1

    where = run_one(runner, check(**base, source_query=query, where="id < 4"))
    assert (where.status, where.observed) == ("failed", "3")


def test_row_count_source_down_is_an_error_without_password(runner: ValidationRunner, schema: str) -> None:
    url = f"postgresql://flx:sup3rs3cret@127.0.0.1:{closed_port()}/nowhere"
    outcome = run_one(runner, check(kind="row_count", table=f"{schema}.orders", source=url, source_table="t"))
    assert outcome.status == "error"
    assert "sup3rs3cret" not in outcome.message
    assert "OperationalError" in outcome.message


def test_unknown_oracle_source_is_an_error(runner: ValidationRunner, schema: str) -> None:
    outcome = run_one(
        runner, check(kind="row_count", table=f"{schema}.orders", source="oracle:erp", source_table="X.Y")
    )
    assert outcome.status == "error" and "no Oracle source named 'erp'" in outcome.message


# --- errors, quoting, persistence ----------------------------------------------------------------------


def test_missing_table_is_an_error_and_the_run_goes_on(runner: ValidationRunner, schema: str) -> None:
    outcomes = runner.run(
        [
            check(kind="min_rows", table=f"{schema}.nope", min_rows=1),
            check(kind="not_null", table=f"{schema}.orders", columns=["nope"]),
            check(kind="min_rows", table=f"{schema}.orders", min_rows=1),
        ],
        None,
    )
    assert [o.status for o in outcomes] == ["error", "error", "passed"]
    assert "UndefinedTable" in outcomes[0].message and "nope" in outcomes[0].message
    assert "UndefinedColumn" in outcomes[1].message


def test_identifiers_are_quoted(runner: ValidationRunner, control: Engine, fresh_schema_name: str) -> None:
    odd = f"Odd {fresh_schema_name}"
    with control.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{odd}"'))
        conn.execute(text(f'CREATE TABLE "{odd}"."Order" ("Select" int, "group" int)'))
        conn.execute(text(f'INSERT INTO "{odd}"."Order" VALUES (1, NULL), (2, 3)'))
    try:
        outcome = run_one(
            runner, check(kind="not_null", table=f'"{odd}"."Order"', columns=['"Select"', "group"])
        )
        assert (outcome.status, outcome.observed) == ("failed", "1")
        injected = run_one(
            runner, check(kind="min_rows", table=f"{fresh_schema_name}.x; DROP TABLE y", min_rows=1)
        )
        assert injected.status == "error" and "not a plain identifier" in injected.message
    finally:
        with control.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{odd}" CASCADE'))


def test_checks_run_read_only(runner: ValidationRunner, control: Engine, schema: str) -> None:
    with control.begin() as conn:
        conn.execute(text(f'CREATE SEQUENCE "{schema}".s'))
    outcome = run_one(
        runner,
        check(kind="min_rows", table=f"{schema}.orders", min_rows=1, where=f"nextval('{schema}.s') > 0"),
    )
    assert outcome.status == "error" and "read-only" in outcome.message


def test_results_are_persisted(runner: ValidationRunner, control: Engine, schema: str) -> None:
    with Session(control) as session, session.begin():
        pipeline = Pipeline(name=f"p_{uuid.uuid4().hex[:8]}")
        session.add(pipeline)
        session.flush()
        execution = Execution(pipeline_id=pipeline.id, execution_number=1)
        session.add(execution)
        session.flush()
        execution_id = execution.id

    specs = [
        check(name="orders_min", kind="min_rows", table=f"{schema}.orders", min_rows=10),
        check(name="orders_ids", kind="not_null", table=f"{schema}.orders", columns=["id"]),
        check(name="missing", kind="min_rows", table=f"{schema}.missing", min_rows=1),
    ]
    runner.run(specs, execution_id)
    with Session(control) as session:
        rows = session.scalars(
            select(ValidationResult)
            .where(ValidationResult.execution_id == execution_id)
            .order_by(ValidationResult.created_at, ValidationResult.check_name)
        ).all()
    by_name = {r.check_name: r for r in rows}
    assert set(by_name) == {"orders_min", "orders_ids", "missing"}
    assert (by_name["orders_min"].status, by_name["orders_min"].observed, by_name["orders_min"].expected) == (
        "failed",
        "6",
        ">= 10",
    )
    assert by_name["orders_min"].kind == "min_rows"
    assert by_name["orders_ids"].status == "passed"
    assert by_name["missing"].status == "error"
    assert "UndefinedTable" in by_name["missing"].details["message"]
    assert by_name["orders_min"].details["table"] == f"{schema}.orders"

    runner.run([check(name="no_execution", kind="min_rows", table=f"{schema}.orders", min_rows=1)], None)
    with Session(control) as session:
        stored = session.scalars(
            select(ValidationResult).where(ValidationResult.check_name == "no_execution")
        ).one()
    assert stored.execution_id is None and stored.status == "passed"


# --- spec validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"kind": "row_count", "source_table": "a.b"}, "`source` is required"),
        ({"kind": "row_count", "source": "oracle:x"}, "exactly one of"),
        ({"kind": "not_null"}, "`columns` is required"),
        ({"kind": "freshness", "column": "at"}, "max_age_seconds"),
        ({"kind": "min_rows"}, "min_rows"),
        ({"kind": "accepted_values", "column": "c"}, "`values` is required"),
    ],
)
def test_incomplete_specs_are_rejected(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        CheckSpec(name="c", table="s.t", **fields)
