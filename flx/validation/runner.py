"""Running a pipeline's checks after its load, and recording each result in `flx.validation_results`.

A check never takes the run down: whatever goes wrong (missing table, bad SQL, Oracle unreachable) becomes
an "error" outcome with a one-line message, because the caller has to decide about the execution as a
whole and alert on it. Each check runs in its own read-only transaction, so the owner's `where` SQL
cannot write and one broken check cannot poison the next.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from flx.alerts.event import AlertEvent
from flx.validation.checks import TARGET_CHECKS, count_target
from flx.validation.outcome import CheckOutcome, CheckStatus, Measurement
from flx.validation.sources import RowCounter, SourceCounter, SourceError, describe_source
from flx.validation.spec import CheckSpec
from flx_core.models import ValidationResult

log = logging.getLogger(__name__)


def _one_line(text_: str, limit: int = 500) -> str:
    flat = " ".join(text_.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _error_message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error; its text is the useful part
    first = str(orig if orig is not None else exc).strip().splitlines()
    return _one_line(f"{type(orig or exc).__name__}: {first[0] if first else ''}")


class ValidationRunner:
    def __init__(
        self,
        engine: Engine,
        oracle_sources: Mapping[str, RowCounter],
        *,
        statement_timeout: timedelta | None = timedelta(minutes=15),
    ) -> None:
        self._engine = engine
        self._oracle_sources = oracle_sources
        self._statement_timeout = statement_timeout

    def run(self, checks: Sequence[CheckSpec], execution_id: uuid.UUID | None) -> list[CheckOutcome]:
        sources = SourceCounter(self._oracle_sources)
        outcomes: list[CheckOutcome] = []
        try:
            for spec in checks:
                outcome = self._run_one(spec, sources)
                log.log(
                    logging.INFO if outcome.passed else logging.WARNING,
                    "Check %s (%s on %s): %s: %s",
                    spec.name,
                    spec.kind,
                    spec.table,
                    outcome.status,
                    outcome.message,
                )
                self._record(outcome, execution_id)
                outcomes.append(outcome)
        finally:
            sources.close()
        return outcomes

    def _run_one(self, spec: CheckSpec, sources: SourceCounter) -> CheckOutcome:
        try:
            measurement = self._measure(spec, sources)
        except SourceError as exc:
            return CheckOutcome(spec, "error", None, None, _one_line(str(exc)), {"source_error": exc.details})
        except Exception as exc:
            return CheckOutcome(spec, "error", None, None, _error_message(exc), {"error": type(exc).__name__})
        status: CheckStatus = "passed" if measurement.passed else "failed"
        return CheckOutcome(
            spec,
            status,
            measurement.observed,
            measurement.expected,
            _one_line(measurement.message),
            measurement.details,
        )

    def _measure(self, spec: CheckSpec, sources: SourceCounter) -> Measurement:
        with self._engine.connect() as conn, conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            if self._statement_timeout is not None:
                ms = int(self._statement_timeout.total_seconds() * 1000)
                conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            if spec.kind == "row_count":
                return self._row_count(conn, spec, sources)
            return TARGET_CHECKS[spec.kind](conn, spec)

    def _row_count(self, conn: Connection, spec: CheckSpec, sources: SourceCounter) -> Measurement:
        target = count_target(conn, spec)
        source = sources.count(spec)
        difference = abs(source - target)
        allowed = max(spec.tolerance_rows, int(spec.tolerance_pct / 100 * source))
        return Measurement(
            passed=difference <= allowed,
            observed=str(target),
            expected=str(source) if not allowed else f"{source} ± {allowed}",
            message=f"target {target} vs source {source} (difference {difference}, allowed {allowed})",
            details={
                "source": describe_source(spec.source or ""),
                "source_rows": source,
                "target_rows": target,
                "difference": difference,
                "allowed": allowed,
            },
        )

    def _record(self, outcome: CheckOutcome, execution_id: uuid.UUID | None) -> None:
        """A lost result row must not lose the outcome: the caller still gets it and alerts on it."""
        details: dict[str, Any] = {
            "message": outcome.message,
            "table": outcome.spec.table,
            "severity": outcome.spec.severity,
            **outcome.details,
        }
        try:
            with Session(self._engine) as session, session.begin():
                session.add(
                    ValidationResult(
                        execution_id=execution_id,
                        check_name=outcome.spec.name,
                        kind=outcome.spec.kind,
                        status=outcome.status,
                        observed=outcome.observed,
                        expected=outcome.expected,
                        details=details,
                    )
                )
        except Exception as exc:
            log.error("Could not record check %s: %s", outcome.spec.name, _error_message(exc))


def oracle_source_alert(outcome: CheckOutcome, pipeline: str, execution_id: str) -> AlertEvent | None:
    """For a check that could not run because its Oracle source failed, the alert that failure means
    (connectivity, authentication, timeout: with the source's own severity); None for other outcomes."""
    source = outcome.spec.source or ""
    error = outcome.details.get("source_error")
    if outcome.status != "error" or not source.startswith("oracle:") or not isinstance(error, dict):
        return None
    from flx.oracle.alerting import alert_for
    from flx.oracle.errors import OracleFailure

    category = error.get("category")
    if category not in ("connectivity", "timeout", "authentication", "other"):
        return None  # e.g. a source name that is not configured: a plain check error
    failure = OracleFailure(
        category=category,
        code=error.get("code"),
        recoverable=bool(error.get("recoverable")),
        severity=error.get("severity") or "error",
        message=str(error.get("message") or outcome.message),
    )
    return alert_for(failure, source.removeprefix("oracle:"), pipeline, execution_id)
