"""AlertManager against the real control schema and a real HTTP endpoint (apprise json://)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from flx.alerts.channels import AlertConfigError
from flx.alerts.event import AlertEvent
from flx.alerts.manager import AlertManager
from flx_core.migrate import ensure_schema
from flx_core.models import Alert
from tests.flx.webhook import Webhook, closed_port, webhook_server


@pytest.fixture(scope="module")
def control(engine: Engine) -> Engine:
    ensure_schema(engine, "flx")
    return engine


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


@pytest.fixture
def pipeline() -> str:
    return f"orders_{uuid.uuid4().hex[:8]}"


def failure(
    pipeline: str, *, kind: str = "failure", check: str | None = None, exit_code: int = 1
) -> AlertEvent:
    return AlertEvent(
        pipeline=pipeline,
        kind=kind,  # type: ignore[arg-type]
        severity="error",
        title=f"{pipeline} failed (exit {exit_code})",
        body="tap-oracle exited with 1",
        check_name=check,
        execution_id="7d7f5d0e-0000-4000-8000-000000000001",
        details={"error": "ORA-12541: TNS:no listener"},
    )


def row(engine: Engine, fingerprint: str) -> Alert:
    with Session(engine) as session:
        return session.scalars(select(Alert).where(Alert.fingerprint == fingerprint)).one()


def age_last_sent(engine: Engine, fingerprint: str, by: timedelta) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Alert).where(Alert.fingerprint == fingerprint).values(last_sent_at=Alert.last_sent_at - by)
        )


def test_first_sends_repeat_is_suppressed_until_interval(
    control: Engine, hook: Webhook, pipeline: str
) -> None:
    manager = AlertManager(control, [hook.url], repeat_interval=timedelta(hours=4))
    event = failure(pipeline)

    assert manager.notify(event) is True
    assert len(hook.received) == 1
    assert hook.received[0]["title"] == f"[flx] {pipeline} failed (exit 1)"
    assert hook.received[0]["type"] == "failure"
    assert hook.paths == ["/hook"]
    body = hook.received[0]["message"]
    assert "tap-oracle exited with 1" in body
    assert "execution: 7d7f5d0e-0000-4000-8000-000000000001" in body
    assert "error: ORA-12541: TNS:no listener" in body

    second = failure(pipeline, exit_code=2)
    assert manager.notify(second) is False
    assert len(hook.received) == 1
    stored = row(control, event.fingerprint)
    assert stored.send_count == 1 and stored.status == "firing"
    assert stored.last_message is not None and "(exit 2)" in stored.last_message

    age_last_sent(control, event.fingerprint, timedelta(hours=5))
    assert manager.notify(event) is True
    assert len(hook.received) == 2
    assert row(control, event.fingerprint).send_count == 2


def test_zero_interval_repeats_every_time(control: Engine, hook: Webhook, pipeline: str) -> None:
    manager = AlertManager(control, [hook.url], repeat_interval=timedelta(0))
    assert manager.notify(failure(pipeline))
    assert manager.notify(failure(pipeline))
    assert len(hook.received) == 2


def test_resolve_once_then_new_failure_fires_again(control: Engine, hook: Webhook, pipeline: str) -> None:
    manager = AlertManager(control, [hook.url])
    event = failure(pipeline)
    assert manager.notify(event)

    assert manager.resolve(pipeline) == 1
    assert len(hook.received) == 2
    resolved = hook.received[1]
    assert resolved["type"] == "success"
    assert resolved["title"] == f"[flx] {pipeline} resolved: failure"
    stored = row(control, event.fingerprint)
    assert stored.status == "resolved" and stored.resolved_at is not None

    assert manager.resolve(pipeline) == 0
    assert len(hook.received) == 2

    # back again well within the repeat interval: a status change is always announced
    assert manager.notify(event) is True
    assert len(hook.received) == 3
    stored = row(control, event.fingerprint)
    assert stored.status == "firing" and stored.resolved_at is None and stored.send_count == 2


def test_resolve_touches_only_that_pipeline(control: Engine, hook: Webhook, pipeline: str) -> None:
    manager = AlertManager(control, [hook.url])
    other = f"{pipeline}_other"
    manager.notify(failure(pipeline))
    manager.notify(failure(other))
    manager.notify(failure(pipeline, kind="validation", check="row_count_orders"))

    assert manager.resolve(pipeline) == 2
    titles = hook.titles()[3:]
    assert sorted(titles) == sorted(
        [f"[flx] {pipeline} resolved: failure", f"[flx] {pipeline} resolved: validation (row_count_orders)"]
    )
    assert row(control, failure(other).fingerprint).status == "firing"


def test_resolve_escapes_like_wildcards(control: Engine, hook: Webhook) -> None:
    base = uuid.uuid4().hex[:8]
    manager = AlertManager(control, [hook.url])
    manager.notify(failure(f"a{base}_x"))
    assert manager.resolve(f"a{base}%") == 0
    assert manager.resolve(f"a{base}_") == 0
    assert manager.resolve(f"a{base}_x") == 1


def test_fingerprints_are_independent(control: Engine, hook: Webhook, pipeline: str) -> None:
    manager = AlertManager(control, [hook.url])
    assert manager.notify(failure(pipeline))
    assert manager.notify(failure(pipeline, kind="timeout"))
    assert manager.notify(failure(pipeline, kind="validation", check="not_null_id"))
    assert manager.notify(failure(pipeline, kind="validation", check="unique_id"))
    assert not manager.notify(failure(pipeline, kind="timeout"))
    assert len(hook.received) == 4


def test_channel_down_does_not_raise_and_is_retried(
    control: Engine, hook: Webhook, pipeline: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"json://alice:s3cr3t-token@127.0.0.1:{closed_port()}/hook"
    event = failure(pipeline)
    with caplog.at_level(logging.DEBUG):
        assert AlertManager(control, [down]).notify(event) is False
    stored = row(control, event.fingerprint)
    assert stored.last_sent_at is None and stored.send_count == 0
    assert "s3cr3t-token" not in caplog.text
    ours = [r for r in caplog.records if r.name.startswith("flx.alerts")]
    assert any("did not accept" in r.getMessage() and "alice" in r.getMessage() for r in ours)

    # the channel is back: the next notify sends although the repeat interval has not passed
    assert AlertManager(control, [hook.url]).notify(event) is True
    assert len(hook.received) == 1
    assert row(control, event.fingerprint).send_count == 1


def test_one_dead_channel_does_not_hide_the_other(control: Engine, hook: Webhook, pipeline: str) -> None:
    manager = AlertManager(control, [f"json://127.0.0.1:{closed_port()}/x", hook.url])
    assert manager.notify(failure(pipeline)) is True
    assert len(hook.received) == 1


def test_log_only_without_urls(control: Engine, pipeline: str, caplog: pytest.LogCaptureFixture) -> None:
    manager = AlertManager(control, [])
    with caplog.at_level(logging.INFO, logger="flx.alerts"):
        assert manager.notify(failure(pipeline)) is True
        assert manager.notify(failure(pipeline)) is False
    lines = [r.getMessage() for r in caplog.records if r.name == "flx.alerts.manager"]
    assert len(lines) == 2
    assert all("\n" not in line and pipeline in line for line in lines)
    assert row(control, failure(pipeline).fingerprint).send_count == 1


@pytest.mark.parametrize("state", ["new", "resolved", "due"])
def test_concurrent_notifies_send_once(control: Engine, hook: Webhook, pipeline: str, state: str) -> None:
    if state != "new":
        AlertManager(control, []).notify(failure(pipeline))
        if state == "resolved":
            AlertManager(control, []).resolve(pipeline)
        else:
            age_last_sent(control, failure(pipeline).fingerprint, timedelta(days=1))
    managers = [AlertManager(control, [hook.url]) for _ in range(4)]
    barrier = threading.Barrier(len(managers))
    results: list[bool] = []

    def fire(manager: AlertManager) -> None:
        barrier.wait()
        results.append(manager.notify(failure(pipeline)))

    threads = [threading.Thread(target=fire, args=(m,)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, False, False, True]
    assert len(hook.received) == 1


def test_pipeline_id_is_recorded(control: Engine, hook: Webhook, pipeline: str) -> None:
    from flx_core.models import Pipeline

    with Session(control) as session, session.begin():
        record = Pipeline(name=pipeline)
        session.add(record)
        session.flush()
        pipeline_id = record.id
    AlertManager(control, [hook.url]).notify(failure(pipeline), pipeline_id=pipeline_id)
    assert row(control, failure(pipeline).fingerprint).pipeline_id == pipeline_id


def test_unusable_url_is_a_config_error_without_the_secret(control: Engine) -> None:
    with pytest.raises(AlertConfigError) as info:
        AlertManager(control, ["nosuchscheme://user:hunter2@host/x"])
    assert "hunter2" not in str(info.value)
    assert "nosuchscheme" in str(info.value)


def test_channels_are_described_masked(control: Engine) -> None:
    manager = AlertManager(control, ["json://bob:pa55word@127.0.0.1:9/hook"])
    assert manager.channels and "pa55word" not in manager.channels[0]
