"""Instants are aware UTC datetimes everywhere in the scheduler.

Naive datetimes are rejected rather than guessed: a scheduler that silently reads a naive value as local time
fires at the wrong hour on every machine whose clock is not in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(instant: datetime, what: str = "instant") -> datetime:
    """The same instant in UTC; naive input is a programming error, so it raises instead of assuming."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)
