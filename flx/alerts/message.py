"""What an alert says: one title line and a plain-text body a person on call can act on."""

from __future__ import annotations

from apprise import NotifyType

from flx.alerts.event import AlertEvent, Severity

PREFIX = "[flx]"

_NOTIFY_TYPES: dict[Severity, NotifyType] = {
    "info": NotifyType.INFO,
    "warning": NotifyType.WARNING,
    "error": NotifyType.FAILURE,
    "critical": NotifyType.FAILURE,
}


def one_line(text: str, limit: int = 300) -> str:
    """Titles and log lines must stay on one line: chat channels and log parsers split on newlines."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def title_of(event: AlertEvent) -> str:
    title = one_line(event.title)
    return title if title.startswith(PREFIX) else f"{PREFIX} {title}"


def body_of(event: AlertEvent) -> str:
    lines = [event.body.strip(), ""] if event.body.strip() else []
    lines.append(f"pipeline: {event.pipeline}")
    lines.append(f"severity: {event.severity}")
    if event.execution_id:
        lines.append(f"execution: {event.execution_id}")
    if event.check_name:
        lines.append(f"check: {event.check_name}")
    lines.extend(f"{key}: {value}" for key, value in event.details.items())
    return "\n".join(lines)


def notify_type_of(severity: Severity) -> NotifyType:
    return _NOTIFY_TYPES[severity]


def resolved_title(fingerprint: str) -> str:
    """The fingerprint is `pipeline:kind:check`; `-` stands for "no check"."""
    pipeline, _, rest = fingerprint.partition(":")
    kind, _, check = rest.partition(":")
    what = kind if check in ("", "-") else f"{kind} ({check})"
    return f"{PREFIX} {pipeline} resolved: {what}"
