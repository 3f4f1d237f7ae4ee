"""Schedule tick computation for `flx serve`: cron in each pipeline's time zone, catch-up, jitter, keys.

Pure logic, no I/O: the serve loop asks `due_ticks` what to run, enqueues each tick under `tick_key`, and
records the skipped ones. DST rules are documented in `orchestrator.schedule.wallclock`.
"""

from orchestrator.schedule.clock import Clock, FakeClock, SystemClock
from orchestrator.schedule.due import DEFAULT_GRACE, MAX_REPORTED_SKIPS, CatchupPolicy, DuePlan, due_ticks
from orchestrator.schedule.keys import jittered, tick_key
from orchestrator.schedule.ticks import UNSCHEDULED, Schedule, parse_schedule

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
