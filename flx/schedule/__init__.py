"""Schedule tick computation for `flx serve`: cron in each pipeline's time zone, catch-up, jitter, keys.

Pure logic, no I/O: the serve loop asks `due_ticks` what to run, enqueues each tick under `tick_key`, and
records the skipped ones. DST rules are documented in `flx.schedule.wallclock`.
"""

from flx.schedule.clock import Clock, FakeClock, SystemClock
from flx.schedule.due import DEFAULT_GRACE, MAX_REPORTED_SKIPS, CatchupPolicy, DuePlan, due_ticks
from flx.schedule.keys import jittered, tick_key
from flx.schedule.ticks import UNSCHEDULED, Schedule, parse_schedule

__all__ = [
    "DEFAULT_GRACE",
    "MAX_REPORTED_SKIPS",
    "UNSCHEDULED",
    "CatchupPolicy",
    "Clock",
    "DuePlan",
    "FakeClock",
    "Schedule",
    "SystemClock",
    "due_ticks",
    "jittered",
    "parse_schedule",
    "tick_key",
]
