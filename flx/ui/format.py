"""Jinja filters: times, durations, counts and sizes written for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

DASH = "\u2013"  # what an unknown or missing value shows


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def ago(at: datetime | None, now: datetime | None = None) -> str:
    if at is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 86400 * 2:
        text = f"{seconds / 3600:.0f} h"
    else:
        text = f"{seconds / 86400:.0f} days"
    return f"in {text}" if future else f"{text} ago"


def when(at: datetime | None, zone: str | None = None) -> Markup:
    """A `<time>` element: UTC (or `zone`) as text, the exact instant for the page script and the tooltip."""
    if at is None:
        return Markup(DASH)
    shown = at.astimezone(UTC)
    suffix = "UTC"
    if zone and zone != "UTC":
        try:
            shown = at.astimezone(ZoneInfo(zone))
            suffix = shown.strftime("%Z")
        except (ZoneInfoNotFoundError, ValueError):
            pass
    iso = at.astimezone(UTC).isoformat()
    text = f"{shown:%Y-%m-%d %H:%M:%S} {escape(suffix)}"
    # Digits, dashes, colons and a zone abbreviation: nothing to escape but the abbreviation.
    return Markup(f'<time datetime="{iso}" title="{ago(at)}">{text}</time>')


def number(value: int | float | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", "\u202f")
    return f"{int(value):,}".replace(",", "\u202f")


def size(value: int | None) -> str:
    if not value:
        return "0 B" if value == 0 else DASH
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.0f} %"


def status_badge(status: str) -> Markup:
    safe = escape(status)
    return Markup(f'<span class="badge s-{safe}">{safe.replace("_", " ")}</span>')


def check_badge(status: str) -> Markup:
    """A validation result: passed, failed, or error (the check itself could not run)."""
    safe = escape(status)
    return Markup(f'<span class="badge c-{safe}">{safe}</span>')


def one_line(text: str | None, limit: int = 140) -> str:
    if not text:
        return ""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def payload(data: dict[str, Any] | None) -> str:
    """An event's payload as `key=value` pairs, long values shortened."""
    if not data:
        return ""
    parts = []
    for key, value in data.items():
        shown = str(value)
        if len(shown) > 200:
            shown = shown[:199] + "…"
        parts.append(f"{key}={shown}")
    return "  ".join(parts)


FILTERS = {
    "duration": duration,
    "ago": ago,
    "when": when,
    "number": number,
    "size": size,
    "percent": percent,
    "status": status_badge,
    "status_check": check_badge,
    "one_line": one_line,
    "payload": payload,
}
