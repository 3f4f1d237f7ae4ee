"""`flx run` and `flx worker` under real faults, on a private PostgreSQL cluster this module starts.

A runner SIGKILLed mid-job takes its job with it (the supervisor), and a runner killed together with its
supervisor has its leftovers ended by the next flx start; a server restart (fast or immediate) neither lets a
second run of the pipeline start nor changes the first one's exit code; records say what happened.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from flx.config import PipelineSettings
from flx.execution.lease import Lease, Leases, LeaseTiming, lock_engine
from flx.execution.locks import PipelineBusy
from flx.execution.records import ExecutionRecord, sync_pipeline
from flx.service.queue import QUEUE_SCHEMA
from flx_core.database import make_engine
from flx_core.migrate import ensure_schema
from flx_core.models import Execution, ExecutionStatus
from flx_core.settings import DatabaseSettings
from tests.flx.fault_project import JOB, Background, FaultProject, make_fault_project
from tests.flx.meltano_project import events, executions
from tests.flx.pg_cluster import Cluster, available, private_cluster
from tests.flx.webhook import closed_port

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not available(), reason="needs PostgreSQL 15 server binaries (initdb, pg_ctl)"),
]

T = TypeVar("T")
KILL_GRACE = 3  # the projects' kill_grace_seconds


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with private_cluster() as started:
        yield started


@pytest.fixture
def project(tmp_path: Path, cluster: Cluster) -> Iterator[FaultProject]:
    made = make_fault_project(tmp_path / "project", cluster.url)
    yield made
    for proc in survivors(made):  # a failed test must not leave a job running into the next one
        with contextlib.suppress(psutil.Error):
            proc.kill()


@pytest.fixture
def engine(project: FaultProject, cluster: Cluster) -> Iterator[Engine]:
    settings = DatabaseSettings(sqlalchemy_url=cluster.url, control_schema=project.control)  # type: ignore[arg-type]
    eng = make_engine(settings)
    ensure_schema(eng, project.control)
    yield eng
    eng.dispose()


def eventually(check: Callable[[], T | None], timeout: float = 60, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if (value := check()) is not None:
                return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")


def running_job(engine: Engine, project: FaultProject) -> Execution:
    """The job's execution once its tap is ticking and its process group is on record."""

    def ready() -> Execution | None:
        found = executions(engine, JOB)
        if found and found[-1].status == "running" and found[-1].process_group and project.tap_runs():
            return found[-1]
        return None

    return eventually(ready, 90, "a running job with a ticking tap")


def survivors(project: FaultProject, pgid: int | None = None) -> list[psutil.Process]:
    """Live processes of the project's job: in its process group, or started from or for the project."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status", "cwd"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            command = " ".join(proc.info["cmdline"] or [])
            if (
                (pgid is not None and os.getpgid(proc.pid) == pgid)
                or str(project.root) in command
                or proc.info["cwd"] == str(project.root)
            ):
                found.append(proc)
    return found


def no_overlap(project: FaultProject) -> None:
    spans = sorted(project.tap_runs().values())
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert second_start > first_end, f"two copies of the job ran at once: {spans}"


def finish(background: Background, timeout: float = 120) -> int:
    try:
        return background.process.wait(timeout=timeout)
    finally:
        if background.process.poll() is None:
            os.killpg(background.process.pid, signal.SIGKILL)
        background.close()


def test_sigkill_of_flx_run_ends_its_job_and_the_next_run_does_not_overlap(
    project: FaultProject, engine: Engine
) -> None:
    project.tap_seconds(60)
    runner = project.flx_background("first", "run", JOB)
    try:
        execution = running_job(engine, project)
        assert execution.process_group is not None
        assert survivors(project, execution.process_group), "the job is running"
        os.kill(runner.process.pid, signal.SIGKILL)  # only flx: its supervisor and job must follow
        runner.process.wait(timeout=10)
        killed = time.monotonic()
        eventually(lambda: not survivors(project, execution.process_group) or None, 15, "no survivor")
        assert time.monotonic() - killed < KILL_GRACE + 4
    finally:
        finish(runner)

    project.tap_seconds(0.5)
    again = project.flx("run", JOB)
    assert again.returncode == 0, again.stdout + again.stderr
    first, second = executions(engine, JOB)
    assert (first.status, second.status) == ("failed", "succeeded")
    _, type_, payload = events(engine, first.id)[-1]
    assert type_ == "failed" and payload["reason"] == "stale_heartbeat"
    assert payload["previous_status"] == "running", payload
    assert len(project.tap_runs()) == 2
    no_overlap(project)


def test_a_run_started_right_after_its_runner_was_killed_takes_over(tmp_path: Path, cluster: Cluster) -> None:
    # heartbeats 2 s apart: the dead run's lease is surely still fresh when the next run starts
    project = make_fault_project(tmp_path / "slow-beat", cluster.url, {"heartbeat_interval_seconds": 2})
    settings = DatabaseSettings(sqlalchemy_url=cluster.url, control_schema=project.control)  # type: ignore[arg-type]
    engine = make_engine(settings)
    ensure_schema(engine, project.control)
    project.tap_seconds(60)
    runner = project.flx_background("first", "run", JOB)
    try:
        running_job(engine, project)
        os.kill(runner.process.pid, signal.SIGKILL)
        runner.process.wait(timeout=10)
        project.tap_seconds(0.5)
        again = project.flx("run", JOB)  # at once: the dead run's heartbeat is still fresh
    finally:
        finish(runner)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "its last runner died on this machine; waiting" in again.stderr
    first, second = executions(engine, JOB)
    assert (first.status, second.status) == ("failed", "succeeded")
    no_overlap(project)
    engine.dispose()


def test_a_runner_killed_with_its_supervisor_has_its_leftovers_ended_by_the_next_start(
    project: FaultProject, engine: Engine
) -> None:
    project.tap_seconds(60)
    runner = project.flx_background("first", "run", JOB)
    try:
        execution = running_job(engine, project)
        pgid = execution.process_group
        assert pgid is not None
        # The runner and the supervisor die together: Meltano, its tap and its target are orphaned.
        os.kill(runner.process.pid, signal.SIGKILL)
        os.kill(pgid, signal.SIGKILL)
        runner.process.wait(timeout=10)
        time.sleep(1)
        assert survivors(project, pgid), "the orphaned job is still running before anyone recovers it"

        listed = project.flx("history", "--pipeline", JOB)  # any flx start recovers
        assert listed.returncode == 0, listed.stderr
        assert not survivors(project, pgid)
    finally:
        finish(runner)
    (recovered,) = executions(engine, JOB)
    assert recovered.status == "failed"
    assert recovered.error and "left behind were ended" in recovered.error
    assert events(engine, recovered.id)[-1][2]["previous_status"] == "running"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_server_restart_mid_run_lets_no_second_run_start_and_keeps_the_outcome(
    project: FaultProject, engine: Engine, cluster: Cluster, mode: str
) -> None:
    project.tap_seconds(12)
    first = project.flx_background("first", "run", JOB)
    try:
        running_job(engine, project)
        # Frozen, the runner cannot take its lock back before the second run tries: only its lease,
        # the heartbeat it sent before the restart, stands in the way.
        os.kill(first.process.pid, signal.SIGSTOP)
        try:
            cluster.restart(mode)
            by_lease = project.flx("run", JOB)
        finally:
            os.kill(first.process.pid, signal.SIGCONT)
        eventually(lambda: "re-acquired" in first.stderr or None, 20, "the lock re-acquired")
        by_lock = project.flx("run", JOB)
    finally:
        code = finish(first)
    assert by_lease.returncode == 75, by_lease.stdout + by_lease.stderr
    assert "renewed its lease" in by_lease.stderr
    assert by_lock.returncode == 75, by_lock.stdout + by_lock.stderr
    assert "already running" in by_lock.stderr
    assert code == 0, first.output
    assert "Traceback" not in first.stderr, first.stderr
    found = executions(engine, JOB)
    assert [e.status for e in found] == ["succeeded", "skipped", "skipped"]
    assert len(project.tap_runs()) == 1, "only the first run's job ran"
    # the run's log rode out the restart: every line the job printed is stored, in order
    logged = project.flx("logs", str(found[0].id)).stdout.splitlines()
    printed = [line for line in first.stdout_path.read_text().splitlines() if "] " in line]
    assert printed and [line for line in logged if line in printed] == printed
    assert logged[-1] == "flx ▸ succeeded after 1 attempt(s)"


def test_a_worker_holding_a_job_rides_out_a_server_restart(
    project: FaultProject, engine: Engine, cluster: Cluster
) -> None:
    project.tap_seconds(12)
    worker = project.flx_background(
        "worker", "worker", "--name", "w1", "--stalled-after", "10", "--grace", "5"
    )
    try:
        queued = project.flx("run", "--queue", JOB)
        assert queued.returncode == 0, queued.stderr
        held = running_job(engine, project)
        cluster.restart("fast")
        refused = project.flx("run", JOB)
        assert refused.returncode == 75, refused.stdout + refused.stderr

        done = eventually(
            lambda: ((e := executions(engine, JOB)[0]).status in ("succeeded", "failed") and e) or None,
            90,
            "done",
        )
        assert (done.id, done.status) == (held.id, "succeeded"), worker.output
        project.tap_seconds(0.5)  # the worker still takes jobs after the restart
        assert project.flx("run", "--queue", JOB).returncode == 0

        def second_done() -> bool | None:
            found = executions(engine, JOB)
            return (len(found) == 3 and found[-1].status == "succeeded") or None

        eventually(second_done, 90, "a second queued run")
        assert worker.process.poll() is None, worker.output
    finally:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
        finish(worker, 60)
    assert [e.status for e in executions(engine, JOB)] == ["succeeded", "skipped", "succeeded"]
    with engine.connect() as conn:
        statuses = conn.execute(
            text(f"SELECT status FROM {QUEUE_SCHEMA}.procrastinate_jobs WHERE queue_name = :q ORDER BY id"),
            {"q": project.control},
        ).scalars()
        assert list(statuses) == ["succeeded", "succeeded"], "neither job was retried or left doing"
    assert "Traceback" not in worker.output, worker.output
    assert len(project.tap_runs()) == 2
    no_overlap(project)


def test_a_failed_taps_own_lines_are_the_recorded_error(project: FaultProject, engine: Engine) -> None:
    done = project.flx("run", "broken-job")
    assert done.returncode == 1, done.stdout + done.stderr
    (failed,) = executions(engine, "broken-job")
    assert failed.error is not None
    assert "source system unavailable" in failed.error
    assert "before any STATE" not in failed.error, "the target's complaint is not the reason"
    assert failed.log_tail and "before any STATE" in failed.log_tail


def _running_record(engine: Engine, lease: Lease, name: str) -> ExecutionRecord:
    pipeline_id = sync_pipeline(engine, PipelineSettings(name=name))
    lease.acquire()
    record = ExecutionRecord.create(engine, pipeline_id, "manual", lease.session_pid)
    record.transition(ExecutionStatus.RUNNING, attempt=1)
    lease.keep(record.id)
    return record


def _lock_session(engine: Engine, execution_id: uuid.UUID) -> int | None:
    with Session(engine) as session:
        row = session.get(Execution, execution_id)
        return row.lock_session if row is not None else None


def test_a_fresh_lease_refuses_a_run_though_its_lock_is_free(engine: Engine) -> None:
    leases = Leases(
        engine, LeaseTiming(heartbeat_interval_seconds=0.2, stale_after_seconds=30, kill_grace_seconds=1)
    )
    name = f"p_{uuid.uuid4().hex[:8]}"
    holder = leases.lease(name, 1)
    record = _running_record(engine, holder, name)
    lost_session = holder.session_pid
    try:
        # The lock's session ends (as in a restart) while the run goes on: its lease still holds.
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost_session})
        with pytest.raises(PipelineBusy, match="renewed its lease"):
            leases.lease(name, 1).acquire()
        eventually(
            lambda: _lock_session(engine, record.id) not in (None, lost_session) or None, 10, "re-acquired"
        )
        assert _lock_session(engine, record.id) == holder.session_pid
        with pytest.raises(PipelineBusy, match="already running"):
            leases.lease(name, 1).acquire()
        assert holder.lost() is None
    finally:
        holder.release()
        leases.engine.dispose()


def test_a_lease_is_lost_when_its_run_is_buried_or_it_cannot_be_renewed(engine: Engine) -> None:
    timing = LeaseTiming(heartbeat_interval_seconds=0.2, stale_after_seconds=4, kill_grace_seconds=1)
    assert timing.hold_seconds < timing.session_gone_after_seconds <= timing.stale_after_seconds
    leases = Leases(engine, timing)
    buried = leases.lease(f"p_{uuid.uuid4().hex[:8]}", 1)
    record = _running_record(engine, buried, buried.pipeline)
    unreachable = leases.lease(f"p_{uuid.uuid4().hex[:8]}", 1)
    _running_record(engine, unreachable, unreachable.pipeline)
    try:
        record.transition(ExecutionStatus.FAILED, error="marked by someone else")
        assert "marked final by another process" in eventually(buried.lost, 5, "the buried run's lease lost")

        # From now on every reconnect fails, as if the server never came back.
        unreachable.slot.engine = lock_engine(
            create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/x")
        )
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": unreachable.session_pid})
        started = time.monotonic()
        reason = eventually(unreachable.lost, 10, "the unrenewable lease lost")
        assert "could not renew it" in reason
        assert time.monotonic() - started < timing.hold_seconds + 2
    finally:
        buried.release()
        unreachable.release()
        leases.engine.dispose()
