"""Execution records, optimistic status changes and pipeline slots against the real database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from flx.config import PipelineSettings
from flx.execution.locks import PipelineBusy, PipelineSlot
from flx.execution.records import ConcurrencyError, ExecutionRecord, sync_pipeline
from flx.execution.recovery import buried_recently, recover_stale
from flx_core.models import Execution, ExecutionEvent, ExecutionStatus, Pipeline


@pytest.fixture(scope="module")
def control(own_control: Engine) -> Engine:
    return own_control


@pytest.fixture
def pipeline_id(control: Engine) -> uuid.UUID:
    return sync_pipeline(control, PipelineSettings(name=f"p_{uuid.uuid4().hex[:8]}", retries=2))


def test_sync_pipeline_is_an_upsert(control: Engine) -> None:
    name = f"p_{uuid.uuid4().hex[:8]}"
    first = sync_pipeline(control, PipelineSettings(name=name, retries=1))
    second = sync_pipeline(control, PipelineSettings(name=name, retries=4, timeout_seconds=90))
    assert first == second
    with control.connect() as conn:
        row = conn.execute(
            select(Execution.__table__.c.id).where(Execution.pipeline_id == first).limit(1)
        ).first()
        assert row is None
        stored = conn.execute(
            select(Pipeline.retry_attempts, Pipeline.timeout_seconds).where(Pipeline.id == first)
        )
        assert stored.one() == (4, 90)


def test_executions_are_numbered_per_pipeline(control: Engine, pipeline_id: uuid.UUID) -> None:
    records = [ExecutionRecord.create(control, pipeline_id, "manual") for _ in range(3)]
    with Session(control) as session:
        numbers = [session.get(Execution, r.id).execution_number for r in records]  # type: ignore[union-attr]
    assert numbers == [1, 2, 3]


def test_a_stale_writer_gets_a_clear_error_not_a_silent_overwrite(
    control: Engine, pipeline_id: uuid.UUID
) -> None:
    mine = ExecutionRecord.create(control, pipeline_id, "manual")
    mine.transition(ExecutionStatus.RUNNING, attempt=1)
    theirs = ExecutionRecord(control, mine.id, ExecutionStatus.RUNNING)
    theirs.transition(ExecutionStatus.FAILED, error="marked by someone else")
    with pytest.raises(ConcurrencyError, match="is failed, not running"):
        mine.transition(ExecutionStatus.SUCCEEDED)
    assert mine.heartbeat() is False
    with Session(control) as session:
        types = session.scalars(
            select(ExecutionEvent.type)
            .where(ExecutionEvent.execution_id == mine.id)
            .order_by(ExecutionEvent.seq)
        ).all()
    assert types == ["pending", "running", "failed"]


def test_slots_refuse_overlap_and_die_with_the_connection(control: Engine) -> None:
    name = f"p_{uuid.uuid4().hex[:8]}"
    first = PipelineSlot(control, name, 1)
    first.acquire()
    with pytest.raises(PipelineBusy, match="already running"):
        PipelineSlot(control, name, 1).acquire()
    other = PipelineSlot(control, name + "_other", 1)
    other.acquire()  # another pipeline is independent
    other.release()
    first.release()
    with PipelineSlot(control, name, 1):
        pass

    two = [PipelineSlot(control, name, 2), PipelineSlot(control, name, 2)]
    for slot in two:
        slot.acquire()
    assert sorted(s.slot for s in two if s.slot is not None) == [0, 1]
    with pytest.raises(PipelineBusy, match="max_concurrent_executions=2"):
        PipelineSlot(control, name, 2).acquire()
    # A killed runner's connection closes: its slot is free without any cleanup.
    assert two[0]._conn is not None
    two[0]._conn.invalidate()
    two[0]._conn, two[0].slot = None, None
    PipelineSlot(control, name, 2).acquire()
    two[1].release()


def test_recovery_fails_only_executions_without_heartbeat(control: Engine, pipeline_id: uuid.UUID) -> None:
    alive = ExecutionRecord.create(control, pipeline_id, "manual")
    alive.transition(ExecutionStatus.RUNNING, attempt=1)
    dead = ExecutionRecord.create(control, pipeline_id, "manual")
    dead.transition(ExecutionStatus.RUNNING, attempt=1)
    with control.begin() as conn:
        conn.execute(
            update(Execution)
            .where(Execution.id == dead.id)
            .values(heartbeat_at=Execution.heartbeat_at - timedelta(minutes=10))
        )
    with Session(control) as session:
        name = session.get(Pipeline, pipeline_id).name  # type: ignore[union-attr]
    assert not buried_recently(control, name)
    recovered = recover_stale(control, stale_after_seconds=60)
    assert [r.id for r in recovered] == [dead.id]
    assert recovered[0].pipeline == name and buried_recently(control, name), "Meltano still holds that run"
    assert not buried_recently(control, name, within_seconds=0)
    assert not buried_recently(control, f"{name}-other")
    with Session(control) as session:
        assert session.get(Execution, dead.id).status == "failed"  # type: ignore[union-attr]
        assert session.get(Execution, alive.id).status == "running"  # type: ignore[union-attr]
    assert recover_stale(control, stale_after_seconds=60) == []
    with pytest.raises(ConcurrencyError):
        dead.transition(ExecutionStatus.SUCCEEDED)


def test_a_runner_whose_lock_session_ended_is_recovered_before_the_heartbeat_timeout(
    control: Engine, pipeline_id: uuid.UUID
) -> None:
    with control.connect() as conn:
        live_session = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        ended_session = conn.execute(text("SELECT max(pid) + 100000 FROM pg_stat_activity")).scalar_one()
        alive = ExecutionRecord.create(control, pipeline_id, "manual", lock_session=live_session)
        crashed = ExecutionRecord.create(control, pipeline_id, "manual", lock_session=ended_session)
        for record in (alive, crashed):
            record.transition(ExecutionStatus.RUNNING, attempt=1)
        with control.begin() as tx:
            tx.execute(
                update(Execution)
                .where(Execution.id.in_([alive.id, crashed.id]))
                .values(heartbeat_at=Execution.heartbeat_at - timedelta(seconds=20))
            )
        recovered = recover_stale(control, stale_after_seconds=600, session_gone_after_seconds=15)
        assert [r.id for r in recovered] == [crashed.id]
