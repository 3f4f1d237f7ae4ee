"""Recording through a database blip: bounded retries, one log line, and a lost commit recognised."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from flx.config import PipelineSettings
from flx.execution.dbretry import DatabaseRetry, DatabaseUnavailable
from flx.execution.records import ConcurrencyError, ExecutionRecord, sync_pipeline
from flx_core.models import ExecutionStatus

T = TypeVar("T")
QUICK = DatabaseRetry(deadline_seconds=1.0, first_delay_seconds=0.01, max_delay_seconds=0.05)


def _lost_connection() -> OperationalError:
    return OperationalError("UPDATE …", {}, Exception("server closed the connection unexpectedly"))


def _failing(times: int, error: Callable[[], Exception]) -> Callable[[bool], str]:
    calls: list[bool] = []

    def write(retrying: bool) -> str:
        calls.append(retrying)
        if len(calls) <= times:
            raise error()
        return f"done after {calls}"

    return write


def test_a_lost_connection_is_retried_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flx.execution.dbretry"):
        assert QUICK.call(_failing(3, _lost_connection), "a status") == "done after [False, True, True, True]"
    assert len(caplog.records) == 1
    assert "retrying for up to 1 s" in caplog.records[0].getMessage()
    assert "server closed the connection" in caplog.records[0].getMessage()


def test_other_errors_are_not_retried_and_the_wait_is_bounded() -> None:
    with pytest.raises(IntegrityError):
        QUICK.call(_failing(1, lambda: IntegrityError("INSERT", {}, Exception("duplicate"))), "a row")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="unreachable for"):
        QUICK.call(_failing(1000, _lost_connection), "a status")
    assert time.monotonic() - started < 2


@pytest.fixture(scope="module")
def control(own_control: Engine) -> Engine:
    return own_control


class _AfterLostCommit(DatabaseRetry):
    """As if the first attempt had committed and then lost its connection: the write runs as a retry."""

    def call(self, write: Callable[[bool], T], what: str) -> T:
        return write(True)


def test_a_status_change_retried_after_a_lost_commit_recognises_itself(control: Engine) -> None:
    pipeline_id = sync_pipeline(control, PipelineSettings(name=f"p_{uuid.uuid4().hex[:8]}"))
    record = ExecutionRecord.create(control, pipeline_id, "manual")
    record.transition(ExecutionStatus.RUNNING, attempt=1)
    retried = ExecutionRecord(control, record.id, ExecutionStatus.PENDING, _AfterLostCommit())
    retried.transition(ExecutionStatus.RUNNING, attempt=1)  # already there, by its own hand
    assert retried.status is ExecutionStatus.RUNNING
    stale = ExecutionRecord(control, record.id, ExecutionStatus.PENDING, _AfterLostCommit())
    with pytest.raises(ConcurrencyError):
        stale.transition(ExecutionStatus.SUCCEEDED)
