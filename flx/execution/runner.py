"""Running one pipeline: lease a slot, record, run `meltano run` with retries and a deadline, validate, alert.

Meltano's exit code decides the outcome, always, and every attempt, retry, timeout and cancel is in the
event log with the reason. The job's outcome is what
`run` returns even when the database is away while it is recorded: recording waits for it (bounded), and
what still cannot be written is logged in one line, never raised past a finished job.
"""

from __future__ import annotations

import logging
import os
import random
import shlex
import shutil
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine

from flx.alerts.manager import AlertManager
from flx.config import FlxSettings, PipelineSettings
from flx.execution.dbretry import DatabaseRetry, DatabaseUnavailable
from flx.execution.lease import Lease, Leases, LeaseTiming
from flx.execution.locks import PipelineBusy
from flx.execution.logstore import EXPIRY, LogWriter
from flx.execution.process import ChildProcess, ProcessResult
from flx.execution.records import ConcurrencyError, ExecutionRecord, sync_pipeline
from flx.execution.recovery import StaleExecution, buried_recently, recover_stale, wait_for_dead_local_runner
from flx.execution.run_alerts import RunAlerts
from flx.validation.runner import ValidationRunner
from flx_core.models import ExecutionStatus

log = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 3600.0
# What a status change can meet besides success: the database away too long, or the run buried meanwhile.
RECORDING_FAILED = (DatabaseUnavailable, ConcurrencyError)

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


@dataclass(frozen=True)
class _Run:
    """What one `Runner.run` call asked for, handed down its steps."""

    pipeline: PipelineSettings
    pipeline_id: uuid.UUID
    trigger: str
    retries: int
    timeout_seconds: float | None
    output: TextIO | None
    force: bool  # tell Meltano its last run of this state ID is over


class Runner:
    """Runs pipelines for the `flx` process; `cancel()` is safe to call from a signal handler.

    `leases` and `db_retry` come from the container; a runner built without them makes its own.
    """

    def __init__(
        self,
        settings: FlxSettings,
        engine: Engine,
        validations: ValidationRunner,
        alerts: AlertManager,
        leases: Leases | None = None,
        db_retry: DatabaseRetry | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.validations = validations
        self.alerts = alerts
        self._tell = RunAlerts(alerts)
        self.leases = leases or Leases(engine, LeaseTiming.from_settings(settings))
        self.db_retry = db_retry or DatabaseRetry()
        self._cancelled = threading.Event()
        self._child: ChildProcess | None = None
        self._lease: Lease | None = None
        self._lease_lost: str | None = None
        self._cancelled_by: str | None = None
        self._logs: LogWriter | None = None

    def cancel(self) -> None:
        self._cancelled.set()
        if self._child is not None:
            self._child.cancel()

    def recover(self) -> list[StaleExecution]:
        """Fail executions whose runner died (ending what their job left on this machine); alert once each."""
        timing = self.leases.timing
        stale = self.db_retry.call(
            lambda _: recover_stale(
                self.engine,
                timing.stale_after_seconds,
                timing.session_gone_after_seconds,
                runner_gone_after_seconds=timing.runner_gone_after_seconds,
                kill_grace_seconds=timing.kill_grace_seconds,
            ),
            "stale-run recovery",
        )
        for execution in stale:
            log.warning(
                "execution %s of %s had no heartbeat: marked failed", execution.id, execution.pipeline
            )
            self._tell.stuck(execution)
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
        # so: --force. Overlap is still impossible: the pipeline lease below is ours.
        self._lease_lost = None
        self._cancelled_by = None
        EXPIRY.maybe(self.engine, self.settings.log_retention_days)
        buried_now = any(dead.pipeline == pipeline.name for dead in self.recover())
        force = (
            force
            or buried_now
            or self.db_retry.call(lambda _: buried_recently(self.engine, pipeline.name), "a recent recovery")
        )
        pipeline_id = sync_pipeline(
            self.engine,
            pipeline,
            self.db_retry,
            self.settings.blocks_of(pipeline),
            self.settings.plugin_details,
        )
        lease = self.leases.lease(pipeline.name, pipeline.max_concurrent_executions)
        try:
            force = self._acquire(lease) or force
        except PipelineBusy as exc:
            log.error("%s", exc)
            record = ExecutionRecord.create(self.engine, pipeline_id, trigger, retry=self.db_retry)
            now = datetime.now(UTC)
            try:
                record.transition(ExecutionStatus.SKIPPED, error=str(exc), started_at=now, ended_at=now)
            except RECORDING_FAILED as failed:
                log.error("%s: %s", pipeline.name, failed)
            return RunOutcome(record.id, pipeline.name, ExecutionStatus.SKIPPED, 0, None, str(exc))
        self._lease = lease
        run = _Run(
            pipeline,
            pipeline_id,
            trigger,
            pipeline.retries if retries is None else retries,
            timeout_seconds or pipeline.timeout_seconds,
            output,
            force,
        )
        try:
            return self._run_locked(run, lease)
        finally:
            lease.release()
            self._lease = None

    def _acquire(self, lease: Lease) -> bool:
        """Take the pipeline's lease; a holder whose runner just died here is waited out, then buried
        (True: Meltano must be told with --force that its run is over)."""
        try:
            self.db_retry.call(lambda _: lease.acquire(), f"the lease of {lease.pipeline!r}")
            return False
        except PipelineBusy:
            window = self.leases.timing.runner_gone_after_seconds
            wait = wait_for_dead_local_runner(self.engine, lease.pipeline, window)
            if not wait:
                raise
        log.info(
            "%s: its last runner died on this machine; waiting %.1f s to take over", lease.pipeline, wait
        )
        if self._cancelled.wait(wait + 0.1):
            raise PipelineBusy(f"pipeline {lease.pipeline!r}: cancelled while waiting for a dead run's lease")
        buried = any(dead.pipeline == lease.pipeline for dead in self.recover())
        self.db_retry.call(lambda _: lease.acquire(), f"the lease of {lease.pipeline!r}")
        return buried

    def _run_locked(self, run: _Run, lease: Lease) -> RunOutcome:
        record = ExecutionRecord.create(
            self.engine, run.pipeline_id, run.trigger, lease.session_pid, retry=self.db_retry
        )
        lease.keep(record.id)
        self._logs = LogWriter(self.engine, record.id)
        try:
            return self._attempts(run, record)
        finally:
            self._logs.close()
            self._logs = None

    def _attempts(self, run: _Run, record: ExecutionRecord) -> RunOutcome:
        """Attempts until one succeeds, the retries are used up, or a failure is not worth retrying."""
        pipeline, retries = run.pipeline, run.retries
        assert self._logs is not None
        if pipeline.run_options:  # this run's own `meltano run` options, not the pipeline's settings
            self._event(pipeline, record, "meltano_options", {"options": list(pipeline.run_options)})
        started = datetime.now(UTC)
        attempt = 0
        result: ProcessResult | None = None
        while True:
            attempt += 1
            run_id = uuid.uuid4()
            first = {"started_at": started} if attempt == 1 else {}
            try:
                record.transition(
                    ExecutionStatus.RUNNING,
                    attempt=attempt,
                    run_id=run_id,
                    heartbeat_at=datetime.now(UTC),
                    **first,
                )
            except RECORDING_FAILED as exc:
                log.error("%s: not starting attempt %d: %s", pipeline.name, attempt, exc)
                if result is None:
                    return RunOutcome(record.id, pipeline.name, ExecutionStatus.FAILED, 0, None, str(exc))
                attempt -= 1
                break
            log.info("%s: attempt %d of %d (execution %s)", pipeline.name, attempt, retries + 1, record.id)
            argv = self.meltano_argv(pipeline, run.force)
            self._logs.start_attempt(
                attempt,
                f"{pipeline.name} #{record.number or '?'} ({run.trigger}), attempt {attempt} of "
                f"{retries + 1} on {socket.gethostname()}: meltano {shlex.join(argv[1:])}",
            )
            result = self._attempt(pipeline, record, run_id, argv, run.timeout_seconds, run.output)
            self._logs.marker(_attempt_ended(result))
            if result.exit_code == 0 and not result.timed_out and not result.cancelled:
                break
            if result.cancelled or self._cancelled.is_set() or self._lease_lost or attempt > retries:
                break
            if result.not_retryable:
                self._not_retried(pipeline, record, result.not_retryable)
                break
            if not self._retry_later(pipeline, record, attempt, result):
                break
        outcome = self._finish(pipeline, run.pipeline_id, record, started, attempt, result)
        self._logs.marker(f"{outcome.status.value} after {outcome.attempts} attempt(s)")
        return outcome

    def _retry_later(
        self, pipeline: PipelineSettings, record: ExecutionRecord, attempt: int, result: ProcessResult
    ) -> bool:
        """Record the failed attempt as `retrying` and wait the backoff; False when the run stops instead
        (it could not be recorded, or it was cancelled or lost its lease meanwhile)."""
        assert self._logs is not None
        delay = retry_delay(pipeline.retry_delay_seconds, attempt)
        try:
            record.transition(
                ExecutionStatus.RETRYING,
                exit_code=result.exit_code,
                error=result.error,
                log_tail=result.log_tail,
            )
            record.event("retry_scheduled", {"attempt": attempt + 1, "delay_seconds": round(delay, 1)})
        except RECORDING_FAILED as exc:
            log.error("%s: not retrying: %s", pipeline.name, exc)
            return False
        log.warning("%s: attempt %d failed; retrying in %.1f s", pipeline.name, attempt, delay)
        self._logs.marker(f"retrying in {delay:.1f} s")
        return not self._wait(delay)

    def _not_retried(self, pipeline: PipelineSettings, record: ExecutionRecord, reason: str) -> None:
        """A configuration error fails every attempt the same way: no retries, the alert goes out now."""
        log.error("%s: not retrying: the same error would end every attempt: %s", pipeline.name, reason)
        assert self._logs is not None
        self._logs.marker("not retrying: a configuration error fails every attempt the same way")
        self._event(pipeline, record, "not_retried", {"reason": reason[-500:]})

    def _event(
        self, pipeline: PipelineSettings, record: ExecutionRecord, kind: str, payload: dict[str, object]
    ) -> None:
        """An event that must not stop the run when it cannot be written (logged in one line instead)."""
        try:
            record.event(kind, payload)
        except RECORDING_FAILED as exc:
            log.error("%s: could not record %s: %s", pipeline.name, kind, exc)

    def meltano_argv(self, pipeline: PipelineSettings, force: bool) -> list[str]:
        return [self.meltano_executable(), "run", *(["--force"] if force else []), *pipeline.meltano_args]

    def _attempt(
        self,
        pipeline: PipelineSettings,
        record: ExecutionRecord,
        run_id: uuid.UUID,
        argv: list[str],
        timeout_seconds: float | None,
        output: TextIO | None,
    ) -> ProcessResult:
        env = {**os.environ, "FLX_EXECUTION_ID": str(record.id), "MELTANO_RUN_ID": str(run_id)}
        child = ChildProcess(
            argv,
            env=env,
            cwd=self.settings.project_root,
            timeout_seconds=timeout_seconds,
            kill_grace_seconds=self.settings.kill_grace_seconds,
            output=output,
            on_line=self._logs.line if self._logs is not None else None,
        )
        self._child = child
        if self._cancelled.is_set() or self._lease_lost:
            child.cancel()
        lease = self._lease
        try:
            return child.run(
                self._check_lease,
                min(1.0, self.settings.heartbeat_interval_seconds),
                on_start=lease.note_process_group if lease is not None else None,
            )
        finally:
            self._child = None

    def _wait(self, seconds: float) -> bool:
        """Sleep between attempts (the lease keeper heartbeats); True when cancelled or the lease is lost."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._cancelled.wait(min(remaining, 0.5)):
                return True
            self._check_lease()
            if self._lease_lost:
                return True
        return False

    def _check_lease(self) -> None:
        """A job whose lease is gone may be overlapped at any moment: stop it, and say why. A cancel asked
        for from elsewhere arrives with a lease renewal: stop the job too."""
        if self._lease is None or self._lease_lost:
            return
        request = self._lease.cancel_request
        if request is not None and self._cancelled_by is None:
            self._cancelled_by = request.by
            log.warning("%s: cancel requested by %s; stopping the job", self._lease.pipeline, request.by)
            if self._logs is not None:
                self._logs.marker(f"cancel requested by {request.by}; stopping the job")
            self.cancel()
            return
        reason = self._lease.lost()
        if reason:
            self._lease_lost = reason
            log.error("%s", reason)
            if self._child is not None:
                self._child.cancel()

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
        succeeded = result.exit_code == 0 and not result.timed_out and not result.cancelled
        if self._lease_lost and not succeeded:  # lost after a success, the lease mattered no more
            status, error = ExecutionStatus.FAILED, "\n".join(filter(None, (self._lease_lost, result.error)))
        elif result.timed_out:
            status = ExecutionStatus.TIMED_OUT
            error = f"timed out after {result.duration_seconds:.0f} s; process group killed\n{result.error}"
        elif result.cancelled or self._cancelled.is_set():
            by = f"by {self._cancelled_by}" if self._cancelled_by else "by signal"
            status, error = ExecutionStatus.CANCELLED, f"cancelled {by}; process group stopped"
        elif result.exit_code != 0:
            status, error = ExecutionStatus.FAILED, result.error
        else:
            status, error = self._validate(pipeline, record)
        if self._lease is not None:
            self._lease.stop_renewing()
            request = self._lease.cancel_request
            if request is not None and status is ExecutionStatus.CANCELLED:
                self._event(
                    pipeline, record, "cancel_requested", {"by": request.by, "at": request.at.isoformat()}
                )
        ended = datetime.now(UTC)
        try:
            record.transition(
                status,
                exit_code=result.exit_code,
                error=error,
                log_tail=result.log_tail,
                ended_at=ended,
                duration_seconds=Decimal(f"{(ended - started).total_seconds():.3f}"),
            )
        except RECORDING_FAILED as exc:
            log.error("%s: the job %s, but %s", pipeline.name, status.value, exc)
        outcome = RunOutcome(record.id, pipeline.name, status, attempts, result.exit_code, error)
        self._tell.outcome(pipeline_id, outcome)
        return outcome

    def _validate(
        self, pipeline: PipelineSettings, record: ExecutionRecord
    ) -> tuple[ExecutionStatus, str | None]:
        if not pipeline.validations:
            return ExecutionStatus.SUCCEEDED, None
        try:
            outcomes = self.db_retry.call(
                lambda _: self.validations.run(pipeline.validations, record.id), "validation results"
            )
        except DatabaseUnavailable as exc:
            return ExecutionStatus.FAILED_VALIDATION, f"checks could not run: {exc}"
        failed = [o for o in outcomes if o.status != "passed"]
        for outcome in failed:
            self._tell.check_failed(pipeline.name, record.id, outcome)
        blocking = [o for o in failed if o.spec.severity != "warning"]
        if not blocking:
            return ExecutionStatus.SUCCEEDED, None
        return ExecutionStatus.FAILED_VALIDATION, "; ".join(
            f"check {o.spec.name} {o.status}: {o.message}" for o in blocking
        )

    def meltano_executable(self) -> str:
        """`meltano_executable` if it is a path or on PATH, else the one installed beside this Python."""
        configured = self.settings.meltano_executable
        found = shutil.which(configured)
        if found:
            return found
        beside = Path(sys.executable).with_name("meltano")
        return str(beside) if beside.exists() else configured


def _attempt_ended(result: ProcessResult) -> str:
    if result.timed_out:
        how = "timed out"
    elif result.cancelled:
        how = "was cancelled"
    else:
        how = f"exited {result.exit_code}"
    return f"meltano run {how} after {result.duration_seconds:.1f} s"


class RunnerFactory:
    """Fresh runners wired like the container's own, for processes that run many pipelines at once (`flx
    serve`, `flx worker`): a runner's cancel and its child belong to one run, its leases and retries not."""

    def __init__(
        self,
        settings: FlxSettings,
        engine: Engine,
        validations: ValidationRunner,
        alerts: AlertManager,
        leases: Leases,
        db_retry: DatabaseRetry,
    ) -> None:
        self._parts = (settings, engine, validations, alerts)
        self._leases = leases
        self._db_retry = db_retry

    def __call__(self) -> Runner:
        return Runner(*self._parts, leases=self._leases, db_retry=self._db_retry)
