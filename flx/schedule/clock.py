"""Where the scheduler gets "now", so tests can move time instead of sleeping through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from flx.schedule.instants import as_utc


class Clock(Protocol):
    """A source of the current instant (aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; shared by the schedule and `flx serve` tests."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to `instant`, backwards included: simulating a clock step is one of the things to test."""
        self._now = as_utc(instant)

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new now."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            raise ValueError(f"advance() only moves forward; use set() to go back (got {step})")
        self._now += step
        return self._now
