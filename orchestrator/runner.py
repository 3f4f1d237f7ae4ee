"""Running one pipeline: lock a slot, record, run `meltano run` with retries and a deadline, validate, alert.

The design this replaces reported success when Meltano failed; here the exit code decides, always, and
every attempt, retry, timeout and cancel is in the event log with the reason.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from flx_core.models import ExecutionStatus
from orchestrator.alerts.event import AlertEvent, AlertKind, Severity
from orchestrator.alerts.manager import AlertManager
from orchestrator.config import FlxSettings, PipelineSettings
from orchestrator.locks import PipelineBusy, PipelineSlot
from orchestrator.process import ChildProcess, ProcessResult
from orchestrator.records import ExecutionRecord, sync_pipeline
from orchestrator.recovery import StaleExecution, buried_recently, recover_stale
from orchestrator.validation.runner import ValidationRunner

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 3600.0

EXIT_CODES = {
    ExecutionStatus.SUCCEEDED: 0,
    ExecutionStatus.FAILED: 1,
    ExecutionStatus.FAILED_VALIDATION: 3,
    ExecutionStatus.SKIPPED: 75,
    ExecutionStatus.TIMED_OUT: 124,
    ExecutionStatus.CANCELLED: 130,
}


@dataclass(frozen=True)
class RunOutcome:
    execution_id: uuid.UUID
    pipeline: str
    status: ExecutionStatus
    attempts: int
    exit_code: int | None
    error: str | None

    @property
    def cli_exit_code(self) -> int:
        """What `flx run` exits with: 0 only for success; documented per status in the README."""
        return EXIT_CODES.get(self.status, 1)


def retry_delay(base_seconds: float, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with ±50 % jitter, so retries of many pipelines don't hit a source together."""
    exponential = min(base_seconds * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)
    return exponential * (rng or random).uniform(0.5, 1.5)


class Runner:
    """Runs pipelines for the `flx` process; `cancel()` is safe to call from a signal handler."""

    def __init__(
        self, settings: FlxSettings, engine: Engine, validations: ValidationRunner, alerts: AlertManager
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.validations = validations
        self.alerts = alerts
        self._cancelled = threading.Event()
        self._child: ChildProcess | None = None

    def cancel(self) -> None:
        self._cancelled.set()
        if self._child is not None:
            self._child.cancel()

    def recover(self) -> list[StaleExecution]:
        """Fail executions whose runner died, and alert once for each."""
        stale = recover_stale(
            self.engine, self.settings.stale_after_seconds, 3 * self.settings.heartbeat_interval_seconds
        )
        for execution in stale:
            log.warning(
                "execution %s of %s had no heartbeat: marked failed", execution.id, execution.pipeline
            )
            self._alert(
                execution.pipeline,
                execution.id,
                "stuck",
                "error",
                f"{execution.pipeline} #{execution.execution_number} stopped responding",
                f"No heartbeat since {execution.heartbeat_at}; runner pid {execution.pid} on "
                f"{execution.hostname}. Marked failed.",
            )
        return stale

    def run(
        self,
        pipeline: PipelineSettings,
        *,
        trigger: str = "manual",
        retries: int | None = None,
        timeout_seconds: float | None = None,
        output: TextIO | None = None,
        force: bool = False,
    ) -> RunOutcome:
        # Meltano refuses a state ID whose last run it still believes RUNNING (for 5 minutes after its
        # heartbeat stops). When flx has buried that run (here, or any other worker lately), we tell Meltano
        # so: --force. Overlap is still impossible: the pipeline lock below is ours.
        buried_now = any(dead.pipeline == pipeline.name for dead in self.recover())
        force = force or buried_now or buried_recently(self.engine, pipeline.name)
        pipeline_id = sync_pipeline(self.engine, pipeline)
        slot = PipelineSlot(self.engine, pipeline.name, pipeline.max_concurrent_executions)
        try:
            slot.acquire()
        except PipelineBusy as exc:
            record = ExecutionRecord.create(self.engine, pipeline_id, trigger)
            now = datetime.now(UTC)
            record.transition(ExecutionStatus.SKIPPED, error=str(exc), started_at=now, ended_at=now)
            log.error("%s", exc)
            return RunOutcome(record.id, pipeline.name, ExecutionStatus.SKIPPED, 0, None, str(exc))
        try:
            return self._run_locked(
                pipeline,
                pipeline_id,
                trigger,
                pipeline.retries if retries is None else retries,
                timeout_seconds or pipeline.timeout_seconds,
                output,
                slot.session_pid,
                force,
            )
        finally:
            slot.release()

    def _run_locked(
        self,
        pipeline: PipelineSettings,
        pipeline_id: uuid.UUID,
        trigger: str,
        retries: int,
        timeout_seconds: float | None,
        output: TextIO | None,
        lock_session: int | None,
        force: bool,
    ) -> RunOutcome:
        record = ExecutionRecord.create(self.engine, pipeline_id, trigger, lock_session)
        started = datetime.now(UTC)
        attempt = 0
        result: ProcessResult | None = None
        while True:
            attempt += 1
            run_id = uuid.uuid4()
            first = {"started_at": started} if attempt == 1 else {}
            record.transition(
                ExecutionStatus.RUNNING,
                attempt=attempt,
                run_id=run_id,
                heartbeat_at=datetime.now(UTC),
                **first,
            )
            log.info("%s: attempt %d of %d (execution %s)", pipeline.name, attempt, retries + 1, record.id)
            result = self._attempt(pipeline, record, run_id, timeout_seconds, output, force)
            if result.exit_code == 0 and not result.timed_out and not result.cancelled:
                break
            if result.cancelled or self._cancelled.is_set() or attempt > retries:
                break
            delay = retry_delay(pipeline.retry_delay_seconds, attempt)
            record.transition(
                ExecutionStatus.RETRYING,
                exit_code=result.exit_code,
                error=result.error,
                log_tail=result.log_tail,
            )
            record.event("retry_scheduled", {"attempt": attempt + 1, "delay_seconds": round(delay, 1)})
            log.warning("%s: attempt %d failed; retrying in %.1f s", pipeline.name, attempt, delay)
            if self._wait(record, delay):
                break
        return self._finish(pipeline, pipeline_id, record, started, attempt, result)

    def _attempt(
        self,
        pipeline: PipelineSettings,
        record: ExecutionRecord,
        run_id: uuid.UUID,
        timeout_seconds: float | None,
        output: TextIO | None,
        force: bool,
    ) -> ProcessResult:
        env = {**os.environ, "FLX_EXECUTION_ID": str(record.id), "MELTANO_RUN_ID": str(run_id)}
        argv = [self.meltano_executable(), "run", *(["--force"] if force else []), *pipeline.meltano_args]
        child = ChildProcess(
            argv,
            env=env,
            cwd=self.settings.project_root,
            timeout_seconds=timeout_seconds,
            kill_grace_seconds=self.settings.kill_grace_seconds,
            output=output,
        )
        self._child = child
        if self._cancelled.is_set():
            child.cancel()
        try:
            return child.run(lambda: self._heartbeat(record), self.settings.heartbeat_interval_seconds)
        finally:
            self._child = None

    def _wait(self, record: ExecutionRecord, seconds: float) -> bool:
        """Sleep between attempts, heartbeating; True when cancelled meanwhile."""
        remaining = seconds
        while remaining > 0:
            step = min(remaining, self.settings.heartbeat_interval_seconds)
            if self._cancelled.wait(step):
                return True
            remaining -= step
            self._heartbeat(record)
        return False

    def _heartbeat(self, record: ExecutionRecord) -> None:
        """A database hiccup must not kill a healthy load: log it; stale recovery is minutes away."""
        try:
            if not record.heartbeat():
                log.warning("execution %s was marked final by another process", record.id)
        except SQLAlchemyError as exc:
            log.warning("heartbeat for execution %s failed: %s", record.id, exc.__class__.__name__)

    def _finish(
        self,
        pipeline: PipelineSettings,
        pipeline_id: uuid.UUID,
        record: ExecutionRecord,
        started: datetime,
        attempts: int,
        result: ProcessResult | None,
    ) -> RunOutcome:
        assert result is not None
        error: str | None
        if result.timed_out:
            status = ExecutionStatus.TIMED_OUT
            error = f"timed out after {result.duration_seconds:.0f} s; process group killed\n{result.error}"
        elif result.cancelled or self._cancelled.is_set():
            status, error = ExecutionStatus.CANCELLED, "cancelled by signal; process group stopped"
        elif result.exit_code != 0:
            status, error = ExecutionStatus.FAILED, result.error
        else:
            status, error = self._validate(pipeline, record)
        ended = datetime.now(UTC)
        record.transition(
            status,
            exit_code=result.exit_code,
            error=error,
            log_tail=result.log_tail,
            ended_at=ended,
            duration_seconds=Decimal(f"{(ended - started).total_seconds():.3f}"),
        )
        outcome = RunOutcome(record.id, pipeline.name, status, attempts, result.exit_code, error)
        self._alert_outcome(pipeline_id, outcome)
        return outcome

    def _validate(
        self, pipeline: PipelineSettings, record: ExecutionRecord
    ) -> tuple[ExecutionStatus, str | None]:
        if not pipeline.validations:
            return ExecutionStatus.SUCCEEDED, None
        outcomes = self.validations.run(pipeline.validations, record.id)
        failed = [o for o in outcomes if o.status != "passed"]
        for outcome in failed:
            self._alert(
                pipeline.name,
                record.id,
                "validation",
                outcome.spec.severity,
                f"{pipeline.name}: check {outcome.spec.name} {outcome.status}",
                outcome.message,
                check_name=outcome.spec.name,
            )
        blocking = [o for o in failed if o.spec.severity != "warning"]
        if not blocking:
            return ExecutionStatus.SUCCEEDED, None
        return ExecutionStatus.FAILED_VALIDATION, "; ".join(
            f"check {o.spec.name} {o.status}: {o.message}" for o in blocking
        )

    def _alert_outcome(self, pipeline_id: uuid.UUID, outcome: RunOutcome) -> None:
        if outcome.status is ExecutionStatus.SUCCEEDED:
            self.alerts.resolve(outcome.pipeline)
            return
        kinds: dict[ExecutionStatus, tuple[AlertKind, Severity, str]] = {
            ExecutionStatus.FAILED: ("failure", "error", f"failed (exit {outcome.exit_code})"),
            ExecutionStatus.TIMED_OUT: ("timeout", "error", "timed out"),
        }
        if outcome.status not in kinds:
            return  # validation alerts were sent per check; a cancel is somebody's decision
        kind, severity, what = kinds[outcome.status]
        self._alert(
            outcome.pipeline,
            outcome.execution_id,
            kind,
            severity,
            f"{outcome.pipeline} {what} after {outcome.attempts} attempt(s)",
            outcome.error or "",
            pipeline_id=pipeline_id,
        )

    def _alert(
        self,
        pipeline: str,
        execution_id: uuid.UUID,
        kind: AlertKind,
        severity: Severity,
        title: str,
        body: str,
        *,
        check_name: str | None = None,
        pipeline_id: uuid.UUID | None = None,
    ) -> None:
        event = AlertEvent(pipeline, kind, severity, title, body, check_name, str(execution_id))
        try:
            self.alerts.notify(event, pipeline_id)
        except SQLAlchemyError as exc:
            log.error("could not record alert %s: %s", event.fingerprint, exc.__class__.__name__)

    def meltano_executable(self) -> str:
        """`meltano_executable` if it is a path or on PATH, else the one installed beside this Python."""
        configured = self.settings.meltano_executable
        found = shutil.which(configured)
        if found:
            return found
        beside = Path(sys.executable).with_name("meltano")
        return str(beside) if beside.exists() else configured
