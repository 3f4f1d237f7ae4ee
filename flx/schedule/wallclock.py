"""Turning one local wall-clock time into the real instants it names, across DST transitions.

croniter's own time-zone handling goes backwards or repeats forever around transitions (croniter 7), so cron
matching runs on naive local wall times and this module maps each matched wall time to UTC with zoneinfo.

The rules, following cronie/Vixie cron:

* A wall time that does not exist (spring forward, e.g. 02:30 in New York on the second Sunday of March)
  fires once, at the transition instant, the first valid instant after the gap (03:00 local).
* A wall time that occurs twice (fall back, e.g. 01:30 in New York on the first Sunday of November) fires
  only on its first occurrence.
* Schedules whose hour field matches every hour (``0 * * * *``, ``*/15 * * * *``) measure elapsed time, not
  a time of day, so they follow real hours instead: wall times in the gap are skipped and repeated wall times
  fire on both occurrences. ``0 * * * *`` therefore fires 23 times on a spring-forward day and 25 times on a
  fall-back day, once per real hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Generous bound on how far one transition (or two close ones) can move the local clock; real zones move at
# most two hours at a time, so three hours keeps every search window safe.
MAX_SHIFT = timedelta(hours=3)


@dataclass(frozen=True)
class WallInstants:
    """What one wall time means in real time: the instants to fire at, plus ordering bounds for merging.

    `low` and `high` bound every instant this wall time could name (also ones not fired); both never
    decrease as the wall time increases, which lets the tick iterators emit in order with small buffers.
    """

    fire: tuple[datetime, ...]
    low: datetime
    high: datetime


def utc_offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    """The zone's UTC offset at a real instant."""
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # zoneinfo always knows the offset of an aware instant
    return offset


def wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock reading at a real instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def resolve(wall: datetime, zone: ZoneInfo, every_hour: bool) -> WallInstants:
    """The instants a matched naive wall time fires at, per the module rules."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return WallInstants(fire=(first,), low=first, high=first)
    if wall_time(first, zone) == wall:
        # Occurs twice; PEP 495 makes fold=0 the earlier occurrence.
        fire = (first, second) if every_hour else (first,)
        return WallInstants(fire=fire, low=first, high=second)
    transition = _transition_in_gap(earlier=second, later=first, zone=zone)
    return WallInstants(fire=() if every_hour else (transition,), low=transition, high=transition)


def _transition_in_gap(earlier: datetime, later: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clock jumps over a gap, found by bisection between the gap's two readings.

    For a skipped wall time, PEP 495 maps fold=1 with the new offset (an instant before the jump) and
    fold=0 with the old offset (an instant after it); zoneinfo exposes no transition list, so bisect.
    """
    after_offset = utc_offset(later, zone)
    low, high = math.floor(earlier.timestamp()), math.ceil(later.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if utc_offset(datetime.fromtimestamp(middle, UTC), zone) == after_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
