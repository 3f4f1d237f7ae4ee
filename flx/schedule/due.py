"""Which ticks to run now, given the last tick already handled: the scheduler's catch-up policy.

The baseline is the last handled tick; when there is none, it is `since` (when the scheduler first saw the
pipeline), and when that is unknown too, only a tick within `grace` of `now` counts. A new pipeline, or one
whose history was wiped, therefore never replays its past: it waits for its next tick.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from flx.schedule.instants import as_utc
from flx.schedule.ticks import Schedule

DEFAULT_GRACE = timedelta(seconds=60)
# Skipped ticks are reported so they can be recorded, but a pipeline down for a year on a one-minute cron
# must not build half a million of them; only the newest this many are listed.
MAX_REPORTED_SKIPS = 1000


class CatchupPolicy(StrEnum):
    """What to do with ticks missed while the scheduler was down."""

    NONE = "none"  # skip them; only a tick within the grace window of now runs
    LATEST = "latest"  # run the most recent one only
    ALL = "all"  # run them all, oldest first, capped by max_catchup

    @classmethod
    def parse(cls, value: str) -> CatchupPolicy:
        """The policy named in meltano.yml, with an error listing the valid names."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            valid = ", ".join(policy.value for policy in cls)
            raise ValueError(f"unknown catchup policy {value!r} (expected one of: {valid})") from None


@dataclass(frozen=True)
class DuePlan:
    """Ticks to run now (oldest first) and ticks deliberately not run (oldest first), for the record.

    `skipped_truncated` says older skipped ticks exist beyond the `MAX_REPORTED_SKIPS` listed.
    """

    run: list[datetime] = field(default_factory=list)
    skipped: list[datetime] = field(default_factory=list)
    skipped_truncated: bool = False

    @property
    def handled_up_to(self) -> datetime | None:
        """The newest tick this plan settles (run or skipped): the caller's next `last_tick`."""
        return max([*self.run, *self.skipped], default=None)


def due_ticks(
    schedule: Schedule,
    last_tick: datetime | None,
    now: datetime,
    catchup: str = CatchupPolicy.LATEST,
    max_catchup: int = 50,
    *,
    since: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> DuePlan:
    """The ticks in (baseline, now] split into run and skipped according to the catch-up policy.

    With `all`, the newest `max_catchup` missed ticks run and older ones are skipped: when the backlog is
    too long, the fresh data matters more than the stale.
    """
    policy = CatchupPolicy.parse(catchup)
    if max_catchup < 1:
        raise ValueError(f"max_catchup must be at least 1, got {max_catchup}")
    now = as_utc(now, "now")
    baseline = _baseline(last_tick, since, now, grace)
    wanted = max_catchup + MAX_REPORTED_SKIPS if policy is CatchupPolicy.ALL else 1 + MAX_REPORTED_SKIPS
    newest_first = list(
        itertools.islice(
            itertools.takewhile(lambda tick: tick > baseline, schedule.ticks_backward(now)), wanted + 1
        )
    )
    truncated = len(newest_first) > wanted
    ticks = newest_first[:wanted][::-1]
    if policy is CatchupPolicy.NONE:
        run = [tick for tick in ticks if tick > now - grace]
    elif policy is CatchupPolicy.LATEST:
        run = ticks[-1:]
    else:
        run = ticks[-max_catchup:]
    skipped = ticks[: len(ticks) - len(run)]
    return DuePlan(run=run, skipped=skipped, skipped_truncated=truncated)


def _baseline(
    last_tick: datetime | None, since: datetime | None, now: datetime, grace: timedelta
) -> datetime:
    """The instant after which ticks count as not yet handled."""
    if last_tick is not None:
        return as_utc(last_tick, "last_tick")
    if since is not None:
        return as_utc(since, "since")
    return now - grace
