"""What a run tells the alert manager: its outcome, each failed check, a runner found dead.

An alert that cannot be recorded (the database is away) is logged; it never becomes the run's failure.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from flx.alerts.event import AlertEvent, AlertKind, Severity
from flx.alerts.manager import AlertManager
from flx.execution.dbretry import short_reason
from flx.execution.recovery import StaleExecution
from flx.validation.outcome import CheckOutcome
from flx.validation.runner import oracle_source_alert
from flx_core.statuses import ExecutionStatus

if TYPE_CHECKING:
    from flx.execution.runner import RunOutcome

log = logging.getLogger(__name__)

# The outcomes that alert as a whole run: validation alerts go per check, a cancel is somebody's decision.
_OUTCOME_ALERTS: dict[ExecutionStatus, tuple[AlertKind, Severity, str]] = {
    ExecutionStatus.FAILED: ("failure", "error", "failed (exit {exit_code})"),
    ExecutionStatus.TIMED_OUT: ("timeout", "error", "timed out"),
}


class RunAlerts:
    def __init__(self, alerts: AlertManager) -> None:
        self.alerts = alerts

    def outcome(self, pipeline_id: uuid.UUID, outcome: RunOutcome) -> None:
        """A success resolves the pipeline's open alerts; a failure or timeout raises one."""
        if outcome.status is ExecutionStatus.SUCCEEDED:
            try:
                self.alerts.resolve(outcome.pipeline)
            except SQLAlchemyError as exc:
                log.error("%s: could not record the outcome's alert: %s", outcome.pipeline, short_reason(exc))
            return
        if outcome.status not in _OUTCOME_ALERTS:
            return
        kind, severity, what = _OUTCOME_ALERTS[outcome.status]
        what = what.format(exit_code=outcome.exit_code)
        title = f"{outcome.pipeline} {what} after {outcome.attempts} attempt(s)"
        body, execution = outcome.error or "", str(outcome.execution_id)
        self.send(AlertEvent(outcome.pipeline, kind, severity, title, body, None, execution), pipeline_id)

    def check_failed(self, pipeline: str, execution_id: uuid.UUID, outcome: CheckOutcome) -> None:
        """A check that did not pass; one whose Oracle source failed alerts as that source's failure
        (unreachable, refused, timed out), not as a count that does not match."""
        if (source_alert := oracle_source_alert(outcome, pipeline, str(execution_id))) is not None:
            self.send(source_alert)
            return
        title = f"{pipeline}: check {outcome.spec.name} {outcome.status}"
        self.send(
            AlertEvent(
                pipeline,
                "validation",
                outcome.spec.severity,
                title,
                outcome.message,
                outcome.spec.name,
                str(execution_id),
            )
        )

    def stuck(self, execution: StaleExecution) -> None:
        """A run whose runner stopped sending heartbeats, marked failed by recovery."""
        self.send(
            AlertEvent(
                execution.pipeline,
                "stuck",
                "error",
                f"{execution.pipeline} #{execution.execution_number} stopped responding",
                f"No heartbeat since {execution.heartbeat_at}; runner pid {execution.pid} on "
                f"{execution.hostname}. Marked failed.",
                None,
                str(execution.id),
            )
        )

    def send(self, event: AlertEvent, pipeline_id: uuid.UUID | None = None) -> None:
        try:
            self.alerts.notify(event, pipeline_id)
        except SQLAlchemyError as exc:
            log.error("could not record alert %s: %s", event.fingerprint, exc.__class__.__name__)
