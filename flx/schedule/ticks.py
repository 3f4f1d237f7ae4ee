"""A pipeline's cron schedule in its own time zone: which real instants it ticks at.

croniter does the cron-field matching on naive local wall times; `wallclock` maps those to UTC so DST is
handled one way, documented there. Iteration merges the per-wall-time instants through a small heap, because
near a fall-back transition consecutive wall times do not name consecutive instants.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from flx.schedule.instants import as_utc
from flx.schedule.wallclock import MAX_SHIFT, resolve, utc_offset

# Schedule values that mean "only run when asked": Meltano's `@once` / `@manual`, or nothing at all.
UNSCHEDULED = frozenset({"", "@once", "@manual", "@none"})
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MINUTE = timedelta(minutes=1)
_PROBE_START = datetime(2000, 1, 1)


class Schedule:
    """A validated cron expression (5 fields or an `@daily`-style alias) evaluated in an IANA time zone."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = expression.strip()
        self.timezone = timezone
        self.zone = _zone(timezone)
        self._every_hour = _validate(self.expression)

    def __repr__(self) -> str:
        return f"Schedule({self.expression!r}, {self.timezone!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (self.expression, self.timezone) == (other.expression, other.timezone)

    def __hash__(self) -> int:
        return hash((self.expression, self.timezone))

    def next_after(self, instant: datetime) -> datetime:
        """The first tick strictly after `instant` (aware in, aware UTC out)."""
        return next(self._forward(as_utc(instant)))

    def previous_at_or_before(self, instant: datetime) -> datetime:
        """The latest tick at or before `instant`: the one a scheduler looking at `instant` is "on"."""
        return next(self._backward(as_utc(instant)))

    def ticks_between(self, start: datetime, end: datetime, limit: int | None = None) -> list[datetime]:
        """Ticks in (start, end], oldest first, at most `limit` of them."""
        end = as_utc(end, "end")
        ticks: list[datetime] = []
        for tick in self._forward(as_utc(start, "start")):
            if tick > end or (limit is not None and len(ticks) >= limit):
                break
            ticks.append(tick)
        return ticks

    def ticks_backward(self, instant: datetime) -> Iterator[datetime]:
        """Ticks at or before `instant`, newest first; lets catch-up look back without a start bound."""
        return self._backward(as_utc(instant))

    def _forward(self, after: datetime) -> Iterator[datetime]:
        """Ticks > `after` in order: walk wall times up, release instants no later wall time can undercut."""
        lowest_offset = min(utc_offset(after, self.zone), utc_offset(after + MAX_SHIFT, self.zone))
        walls = croniter(self.expression, (after + lowest_offset).replace(tzinfo=None) - _MINUTE)
        pending: list[datetime] = []
        last: datetime | None = None
        while True:
            resolved = resolve(walls.get_next(datetime), self.zone, self._every_hour)
            for instant in resolved.fire:
                if instant > after:
                    heapq.heappush(pending, instant)
            while pending and pending[0] <= resolved.low:
                tick = heapq.heappop(pending)
                if last is None or tick > last:
                    last = tick
                    yield tick

    def _backward(self, at_or_before: datetime) -> Iterator[datetime]:
        """Ticks <= `at_or_before`, newest first; the mirror image of `_forward`."""
        start = at_or_before + max(
            utc_offset(at_or_before, self.zone), utc_offset(at_or_before - MAX_SHIFT, self.zone)
        )
        walls = croniter(self.expression, start.replace(tzinfo=None) + _MINUTE)
        pending: list[_Descending] = []
        last: datetime | None = None
        while True:
            resolved = resolve(walls.get_prev(datetime), self.zone, self._every_hour)
            for instant in resolved.fire:
                if instant <= at_or_before:
                    heapq.heappush(pending, _Descending(instant))
            while pending and pending[0].instant >= resolved.high:
                tick = heapq.heappop(pending).instant
                if last is None or tick < last:
                    last = tick
                    yield tick


class _Descending:
    """Heap entry ordering instants newest first, since heapq only offers a min-heap."""

    __slots__ = ("instant",)

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def __lt__(self, other: _Descending) -> bool:
        return self.instant > other.instant


def parse_schedule(expression: str | None, timezone: str = "UTC") -> Schedule | None:
    """The pipeline's Schedule, or None when it only runs on demand (`@once`, `@manual`, empty)."""
    if expression is None or expression.strip().lower() in UNSCHEDULED:
        return None
    return Schedule(expression, timezone)


def _zone(name: str) -> ZoneInfo:
    """The IANA zone, with an error that says it is the time zone that is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as 'Europe/Lisbon')"
        ) from error


def _validate(expression: str) -> bool:
    """Check the expression, naming the wrong field; returns whether the hour field matches every hour."""
    try:
        fields, _ = croniter.expand(expression)
    except CroniterError as error:
        raise ValueError(_explain(expression, error)) from error
    if len(fields) != len(FIELD_NAMES):
        raise ValueError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            "(minute hour day-of-month month day-of-week) or an alias such as @daily"
        )
    try:
        croniter(expression, _PROBE_START).get_next(datetime)
    except CroniterBadDateError as error:
        raise ValueError(f"cron expression {expression!r} never fires (no matching date)") from error
    return set(fields[1]) in ({"*"}, set(range(24)))


def _explain(expression: str, error: Exception) -> str:
    """Name the offending field when croniter only says the whole expression is unacceptable."""
    parts = expression.split()
    if expression.startswith("@"):
        return f"invalid cron expression {expression!r}: unknown alias (use @hourly, @daily, @weekly, ...)"
    if len(parts) != len(FIELD_NAMES):
        return (
            f"invalid cron expression {expression!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    for index, (name, part) in enumerate(zip(FIELD_NAMES, parts, strict=True)):
        probe = ["*"] * len(FIELD_NAMES)
        probe[index] = part
        if not croniter.is_valid(" ".join(probe)):
            return f"invalid cron expression {expression!r}: bad {name} field {part!r}"
    return f"invalid cron expression {expression!r}: {error}"
