"""row_count reconciliation whose source is an Oracle source that cannot be reached."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from flx.oracle.manager import OracleConnectionManager
from flx.oracle.settings import OracleSourceSettings
from flx.validation.outcome import CheckOutcome
from flx.validation.runner import ValidationRunner, oracle_source_alert
from flx.validation.spec import CheckSpec
from flx_core.migrate import ensure_schema
from flx_core.models import ValidationResult
from tests.flx.webhook import closed_port


@pytest.fixture(scope="module")
def control(engine: Engine) -> Engine:
    ensure_schema(engine, "flx")
    return engine


def test_oracle_source_down_is_an_error_with_its_category(control: Engine, fresh_schema_name: str) -> None:
    with control.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{fresh_schema_name}"'))
        conn.execute(text(f'CREATE TABLE "{fresh_schema_name}".orders AS SELECT generate_series(1, 3) AS id'))
    source = OracleSourceSettings(
        name="erp",
        host="127.0.0.1",
        port=closed_port(),
        service_name="ORCLPDB1",
        user="scott",
        password=SecretStr("tiger-s3cr3t"),
        tcp_connect_timeout=2,
        connect_timeout=5,
    )
    name = f"erp_orders_{uuid.uuid4().hex[:6]}"
    spec = CheckSpec(
        name=name,
        kind="row_count",
        table=f"{fresh_schema_name}.orders",
        source="oracle:erp",
        source_table="SALES.ORDERS",
    )
    with OracleConnectionManager(source) as erp:
        (outcome,) = ValidationRunner(control, {"erp": erp}).run([spec], None)
    assert outcome.status == "error"
    assert "connectivity" in outcome.message and "DPY-6005" in outcome.message
    assert "tiger-s3cr3t" not in outcome.message
    assert outcome.details["source_error"]["category"] == "connectivity"

    with Session(control) as session:
        stored = session.scalars(select(ValidationResult).where(ValidationResult.check_name == name)).one()
    assert stored.status == "error" and stored.details["source_error"]["code"] == "DPY-6005"

    # the runner alerts this as an unreachable source, with the source's severity, not as a count mismatch
    event = oracle_source_alert(outcome, "daily_orders", "exec-1")
    assert event is not None
    assert (event.kind, event.severity, event.check_name) == ("connectivity", "error", "oracle:erp")
    assert "Oracle source erp is unreachable (DPY-6005)" in event.title
    assert "tiger-s3cr3t" not in event.body


def test_a_check_that_ran_and_failed_is_not_a_source_alert(control: Engine, fresh_schema_name: str) -> None:
    spec = CheckSpec(name="n", kind="row_count", table="x.y", source="oracle:erp", source_table="S.T")
    mismatch = CheckOutcome(spec, "failed", "3", "5", "3 rows, expected 5")
    assert oracle_source_alert(mismatch, "daily_orders", "exec-1") is None
    unknown = CheckOutcome(
        spec, "error", None, None, "no Oracle source named 'erp'", {"source_error": {"category": "config"}}
    )
    assert oracle_source_alert(unknown, "daily_orders", "exec-1") is None
