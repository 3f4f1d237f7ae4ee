"""Deciding whether an alert goes out, and remembering what went out, in `flx.alerts`.

One row per fingerprint (pipeline + kind + check) is the memory of an ongoing problem. The row is locked
(`SELECT … FOR UPDATE`) while the decision is made and the message sent, so two `flx` processes that see
the same failure send it once: the second one waits, then sees `last_sent_at` and stays quiet. Sending
while holding the lock is deliberate; apprise's socket timeouts bound how long the other one waits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta

from apprise import NotifyType
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from flx.alerts.channels import Channels
from flx.alerts.defaults import REPEAT_INTERVAL_SECONDS
from flx.alerts.event import AlertEvent, Severity
from flx.alerts.message import body_of, notify_type_of, one_line, resolved_title, title_of
from flx_core.models import Alert

log = logging.getLogger(__name__)

FIRING = "firing"
RESOLVED = "resolved"

_LEVELS: dict[Severity, int] = {
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


# the `alert_repeat_interval_seconds` setting's default
DEFAULT_REPEAT_INTERVAL = timedelta(seconds=REPEAT_INTERVAL_SECONDS)


class AlertManager:
    """Sends an alert when it is new, came back after being resolved, or is still firing after
    `repeat_interval`; in between, repeats only refresh `last_message`.

    A channel that fails leaves `last_sent_at` untouched, so the next `notify` retries without waiting for
    the repeat interval. With no URLs the log is the only channel. A pipeline's own `alert_urls` are told
    about its alerts besides the common ones (the team that owns a job, beside the on-call channel).
    """

    def __init__(
        self,
        engine: Engine,
        urls: Sequence[str],
        repeat_interval: timedelta = DEFAULT_REPEAT_INTERVAL,
        pipeline_urls: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._engine = engine
        self._channels = Channels(urls)
        self._own = {name: Channels(own) for name, own in (pipeline_urls or {}).items() if own}
        self._repeat_interval = repeat_interval

    @property
    def channels(self) -> list[str]:
        """The configured channels, privacy-masked."""
        return self._channels.describe()

    def notify(self, event: AlertEvent, pipeline_id: uuid.UUID | None = None) -> bool:
        """True when the alert was announced now, False when deduplicated or no channel took it."""
        title, body = title_of(event), body_of(event)
        message = f"{title}\n\n{body}"
        with Session(self._engine) as session, session.begin():
            session.execute(
                insert(Alert)
                .values(
                    fingerprint=event.fingerprint,
                    pipeline_id=pipeline_id,
                    check_name=event.check_name,
                    severity=event.severity,
                    status=FIRING,
                    last_message=message,
                )
                .on_conflict_do_nothing(index_elements=[Alert.fingerprint])
            )
            alert, due = session.execute(
                select(
                    Alert,
                    (Alert.last_sent_at.is_(None))
                    | (Alert.last_sent_at <= func.now() - self._repeat_interval),
                )
                .where(Alert.fingerprint == event.fingerprint)
                .with_for_update(of=Alert)
            ).one()
            reopened = alert.status == RESOLVED
            alert.last_message = message
            alert.severity = event.severity
            alert.check_name = event.check_name
            if pipeline_id is not None:
                alert.pipeline_id = pipeline_id
            if reopened:
                alert.status = FIRING
                alert.resolved_at = None
                alert.first_seen_at = func.now()
                alert.last_sent_at = None
            if not (due or reopened):
                log.log(
                    _LEVELS[event.severity],
                    "Alert %s still firing (already sent, not repeated): %s",
                    event.fingerprint,
                    title,
                )
                return False
            log.log(_LEVELS[event.severity], "Alert %s: %s", event.fingerprint, title)
            delivered = self._deliver(event.pipeline, title, body, notify_type_of(event.severity))
            if delivered:
                alert.last_sent_at = func.now()
                alert.send_count = Alert.send_count + 1
            return delivered

    def resolve(self, pipeline: str) -> int:
        """Resolve every firing alert of `pipeline`; returns how many. Only alerts whose firing message
        went out get a "resolved" message: nobody needs to hear that an unannounced problem is gone."""
        with Session(self._engine) as session, session.begin():
            alerts = session.scalars(
                select(Alert)
                .where(Alert.status == FIRING, Alert.fingerprint.startswith(f"{pipeline}:", autoescape=True))
                .order_by(Alert.first_seen_at)
                .with_for_update()
            ).all()
            for alert in alerts:
                announced = alert.last_sent_at is not None
                alert.status = RESOLVED
                alert.resolved_at = func.now()
                title = resolved_title(alert.fingerprint)
                log.info("Alert %s resolved", alert.fingerprint)
                if announced:
                    previous = one_line((alert.last_message or "").split("\n", 1)[0])
                    body = f"Resolved: {previous}\npipeline: {pipeline}"
                    self._deliver(pipeline, title, body, NotifyType.SUCCESS)
            return len(alerts)

    def _deliver(self, pipeline: str, title: str, body: str, notify_type: NotifyType) -> bool:
        groups = [channels for channels in (self._channels, self._own.get(pipeline)) if channels]
        if not groups:
            return True  # log-only: the log line above was the announcement
        delivered = [channels.send(title, body, notify_type) for channels in groups]
        return any(delivered)
