"""Schedule ticks: cron in a pipeline's local time across DST, catch-up policies, jitter and tick keys.

Pure unit tests: no database. The DST transitions used are asserted first (`test_transition_premises`) so a
tzdata change shows up as a failed premise rather than a puzzling schedule failure.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flx.schedule import (
    MAX_REPORTED_SKIPS,
    CatchupPolicy,
    FakeClock,
    Schedule,
    SystemClock,
    due_ticks,
    jittered,
    parse_schedule,
    tick_key,
)

NEW_YORK, LISBON, SYDNEY = "America/New_York", "Europe/Lisbon", "Australia/Sydney"
HOUR = timedelta(hours=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticks_on_local_day(schedule: Schedule, day: date) -> list[datetime]:
    """Every tick whose local calendar date is `day`."""
    start = datetime.combine(day, datetime.min.time()).replace(tzinfo=UTC) - timedelta(days=1)
    ticks = schedule.ticks_between(start, start + timedelta(days=3))
    return [tick for tick in ticks if tick.astimezone(schedule.zone).date() == day]


def local(tick: datetime, zone: str) -> str:
    return tick.astimezone(ZoneInfo(zone)).strftime("%H:%M%z")


# (zone, spring-forward local date, wall time that does not exist, fall-back date, wall time occurring twice)
TRANSITIONS = [
    (NEW_YORK, date(2026, 3, 8), "02:30", date(2026, 11, 1), "01:30"),
    (LISBON, date(2026, 3, 29), "01:30", date(2026, 10, 25), "01:30"),
    (SYDNEY, date(2026, 10, 4), "02:30", date(2026, 4, 5), "02:30"),
]


@pytest.mark.parametrize(
    ("zone", "spring", "missing", "fall", "repeated"), TRANSITIONS, ids=[row[0] for row in TRANSITIONS]
)
def test_transition_premises(zone: str, spring: date, missing: str, fall: date, repeated: str) -> None:
    tz = ZoneInfo(zone)
    gap = datetime.combine(spring, datetime.strptime(missing, "%H:%M").time()).replace(tzinfo=tz)
    assert gap.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != gap.replace(tzinfo=None)
    fold = datetime.combine(fall, datetime.strptime(repeated, "%H:%M").time())
    first, second = (fold.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
    assert second - first == HOUR


@pytest.mark.parametrize(
    ("zone", "expression", "day", "expected"),
    [
        # The wall time falls in the spring-forward gap: once, at the transition instant.
        (NEW_YORK, "30 2 * * *", date(2026, 3, 8), ["2026-03-08T07:00"]),  # 03:00 EDT
        (LISBON, "30 1 * * *", date(2026, 3, 29), ["2026-03-29T01:00"]),  # 02:00 WEST
        (SYDNEY, "30 2 * * *", date(2026, 10, 4), ["2026-10-03T16:00"]),  # 03:00 AEDT
        # Two wall times in the same gap collapse onto the transition and run once.
        (NEW_YORK, "0,30 2 * * *", date(2026, 3, 8), ["2026-03-08T07:00"]),
        # The wall time occurs twice on the fall-back day: only the first occurrence runs.
        (NEW_YORK, "30 1 * * *", date(2026, 11, 1), ["2026-11-01T05:30"]),  # 01:30 EDT
        (LISBON, "30 1 * * *", date(2026, 10, 25), ["2026-10-25T00:30"]),  # 01:30 WEST
        (SYDNEY, "30 2 * * *", date(2026, 4, 5), ["2026-04-04T15:30"]),  # 02:30 AEDT
        (SYDNEY, "0,30 2 * * *", date(2026, 4, 5), ["2026-04-04T15:00", "2026-04-04T15:30"]),
        # Ordinary days on either side use the offset of the day.
        (NEW_YORK, "30 2 * * *", date(2026, 3, 9), ["2026-03-09T06:30"]),
        (NEW_YORK, "30 1 * * *", date(2026, 11, 2), ["2026-11-02T06:30"]),
        (SYDNEY, "30 2 * * *", date(2026, 10, 5), ["2026-10-04T15:30"]),
    ],
)
def test_fixed_time_runs_once_on_dst_days(zone: str, expression: str, day: date, expected: list[str]) -> None:
    assert ticks_on_local_day(Schedule(expression, zone), day) == [utc(text) for text in expected]


@pytest.mark.parametrize(
    ("zone", "spring", "missing", "fall", "repeated"), TRANSITIONS, ids=[row[0] for row in TRANSITIONS]
)
def test_hourly_follows_real_hours(zone: str, spring: date, missing: str, fall: date, repeated: str) -> None:
    """`0 * * * *` runs once per real hour: 23 times on the short day, 25 on the long one."""
    hourly = Schedule("0 * * * *", zone)
    short, long = ticks_on_local_day(hourly, spring), ticks_on_local_day(hourly, fall)
    assert (len(short), len(long)) == (23, 25)
    for ticks in (short, long):
        assert all(later - earlier == HOUR for earlier, later in itertools.pairwise(ticks))
    assert missing[:2] + ":00" not in {local(tick, zone)[:5] for tick in short}
    repeated_hour = [tick for tick in long if local(tick, zone).startswith(repeated[:2] + ":00")]
    assert len(repeated_hour) == 2


def test_sub_hourly_schedule_keeps_real_spacing_through_fall_back() -> None:
    ticks = ticks_on_local_day(Schedule("*/20 * * * *", NEW_YORK), date(2026, 11, 1))
    assert len(ticks) == 25 * 3
    assert {later - earlier for earlier, later in itertools.pairwise(ticks)} == {timedelta(minutes=20)}


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [(zone, spring, fall) for zone, spring, _, fall, _ in TRANSITIONS],
    ids=[row[0] for row in TRANSITIONS],
)
@pytest.mark.parametrize("expression", ["30 1 * * *", "30 2 * * *", "0 * * * *", "15 */2 * * *"])
def test_next_previous_and_between_agree_across_transitions(
    zone: str, spring: date, fall: date, expression: str
) -> None:
    schedule = Schedule(expression, zone)
    for transition_day in (spring, fall):
        start = datetime.combine(transition_day, datetime.min.time()).replace(tzinfo=UTC) - timedelta(days=1)
        end = start + timedelta(days=3)
        between = schedule.ticks_between(start, end)
        assert between == sorted(set(between)) and between

        walked, cursor = [], schedule.next_after(start)
        while cursor <= end:
            walked.append(cursor)
            cursor = schedule.next_after(cursor)
        assert walked == between

        backward = list(itertools.islice(schedule.ticks_backward(end), len(between) + 1))
        assert backward[:-1] == between[::-1] and backward[-1] <= start
        assert schedule.previous_at_or_before(between[-1]) == between[-1]
        assert schedule.previous_at_or_before(between[-1] - timedelta(seconds=1)) == between[-2]


def test_next_after_from_inside_the_repeated_hour() -> None:
    """At 01:40 EDT on fall-back day, the next hourly tick is 01:00 EST; a daily 01:30 waits a day."""
    inside = utc("2026-11-01T05:40")
    assert Schedule("0 * * * *", NEW_YORK).next_after(inside) == utc("2026-11-01T06:00")
    assert Schedule("30 1 * * *", NEW_YORK).next_after(inside) == utc("2026-11-02T06:30")
    assert Schedule("30 1 * * *", NEW_YORK).previous_at_or_before(utc("2026-11-01T06:45")) == utc(
        "2026-11-01T05:30"
    )


def test_instants_are_utc_and_start_is_exclusive_end_inclusive() -> None:
    schedule = Schedule("0 12 * * *", LISBON)
    noon = datetime(2026, 7, 1, 12, tzinfo=ZoneInfo(LISBON))  # 11:00 UTC in summer
    assert schedule.next_after(noon) == utc("2026-07-02T11:00")
    assert schedule.next_after(noon).tzinfo is UTC
    assert schedule.next_after(noon - timedelta(microseconds=1)) == utc("2026-07-01T11:00")
    assert schedule.ticks_between(noon, noon + timedelta(days=2)) == [
        utc("2026-07-02T11:00"),
        utc("2026-07-03T11:00"),
    ]
    assert schedule.ticks_between(noon - HOUR, noon + timedelta(days=9), limit=3) == [
        utc("2026-07-01T11:00"),
        utc("2026-07-02T11:00"),
        utc("2026-07-03T11:00"),
    ]
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_after(datetime(2026, 7, 1, 12))


@pytest.mark.parametrize(
    ("alias", "after", "expected"),
    [
        ("@hourly", "2026-03-29T00:10", "2026-03-29T01:00"),  # Lisbon: 02:00 WEST, right after the gap
        ("@daily", "2026-03-29T00:10", "2026-03-29T23:00"),  # midnight WEST
        ("@midnight", "2026-01-15T00:10", "2026-01-16T00:00"),  # midnight WET
        ("@weekly", "2026-07-01T00:00", "2026-07-04T23:00"),  # Sunday 00:00 WEST
        ("@monthly", "2026-07-01T00:00", "2026-07-31T23:00"),
        ("@yearly", "2026-07-01T00:00", "2027-01-01T00:00"),
        ("@annually", "2026-07-01T00:00", "2027-01-01T00:00"),
    ],
)
def test_aliases(alias: str, after: str, expected: str) -> None:
    assert Schedule(alias, LISBON).next_after(utc(after)) == utc(expected)


def test_daily_alias_equals_its_cron() -> None:
    start = utc("2026-03-20T00:00")
    daily, cron = Schedule("@daily", SYDNEY), Schedule("0 0 * * *", SYDNEY)
    assert daily.ticks_between(start, start + timedelta(days=30)) == cron.ticks_between(
        start, start + timedelta(days=30)
    )


@pytest.mark.parametrize("value", [None, "", "  ", "@once", "@manual", "@ONCE"])
def test_unscheduled_values(value: str | None) -> None:
    assert parse_schedule(value, "UTC") is None


def test_parse_schedule_builds_a_schedule() -> None:
    assert parse_schedule(" @daily ", NEW_YORK) == Schedule("@daily", NEW_YORK)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "bad minute field '61'"),
        ("0 24 * * *", "bad hour field '24'"),
        ("0 0 32 * *", "bad day-of-month field '32'"),
        ("0 0 * 13 *", "bad month field '13'"),
        ("0 0 * * funday", "bad day-of-week field 'funday'"),
        ("* * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("@fortnightly", "unknown alias"),
        ("@reboot", "unknown alias"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule(expression, "UTC")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "new york"])
def test_bad_time_zone_is_named(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Schedule("0 0 * * *", zone)


# -- catch-up after the scheduler was down for three days ------------------------------------------------

LAST = utc("2026-03-10T09:00")
BACK_UP = utc("2026-03-13T09:00:30")  # 72 hourly ticks missed: 10:00 on the 10th to 09:00 on the 13th
HOURLY = Schedule("0 * * * *", LISBON)


def hours(start: datetime, count: int) -> list[datetime]:
    return [start + HOUR * index for index in range(count)]


def test_catchup_none_runs_only_the_tick_within_grace() -> None:
    plan = due_ticks(HOURLY, LAST, BACK_UP, "none")
    assert plan.run == [utc("2026-03-13T09:00")]
    assert plan.skipped == hours(utc("2026-03-10T10:00"), 71)
    late = due_ticks(HOURLY, LAST, BACK_UP + timedelta(minutes=5), "none")
    assert late.run == [] and len(late.skipped) == 72
    assert late.handled_up_to == utc("2026-03-13T09:00")


def test_catchup_latest_runs_the_most_recent_missed_tick() -> None:
    plan = due_ticks(HOURLY, LAST, BACK_UP + timedelta(minutes=30), "latest")
    assert plan.run == [utc("2026-03-13T09:00")]
    assert plan.skipped == hours(utc("2026-03-10T10:00"), 71)
    assert not plan.skipped_truncated


def test_catchup_all_runs_the_newest_max_catchup_oldest_first() -> None:
    plan = due_ticks(HOURLY, LAST, BACK_UP, "all", max_catchup=50)
    assert plan.run == hours(utc("2026-03-11T08:00"), 50)
    assert plan.skipped == hours(utc("2026-03-10T10:00"), 22)
    everything = due_ticks(HOURLY, LAST, BACK_UP, "ALL", max_catchup=100)
    assert everything.run == hours(utc("2026-03-10T10:00"), 72) and everything.skipped == []


def test_catchup_all_for_a_daily_pipeline() -> None:
    daily = Schedule("30 2 * * *", NEW_YORK)  # 06:30 UTC before the 8th, 03:00 EDT on it, 06:30 UTC after
    plan = due_ticks(daily, utc("2026-03-06T07:30"), utc("2026-03-09T12:00"), "all")
    assert plan.run == [utc("2026-03-07T07:30"), utc("2026-03-08T07:00"), utc("2026-03-09T06:30")]
    assert plan.skipped == []


def test_skipped_list_is_capped_for_very_long_outages() -> None:
    every_minute = Schedule("* * * * *", "UTC")
    plan = due_ticks(every_minute, LAST, LAST + timedelta(days=3), "latest")
    assert plan.run == [LAST + timedelta(days=3)]
    assert len(plan.skipped) == MAX_REPORTED_SKIPS and plan.skipped_truncated
    assert plan.skipped[-1] == LAST + timedelta(days=3, minutes=-1)


def test_scheduler_loop_with_a_fake_clock() -> None:
    """What `flx serve` does: ask, run, remember the newest handled tick, ask again later."""
    clock = FakeClock(BACK_UP)
    last: datetime | None = LAST
    plan = due_ticks(HOURLY, last, clock.now(), "latest")
    last = plan.handled_up_to
    assert last == utc("2026-03-13T09:00")

    clock.advance(timedelta(minutes=20))
    assert due_ticks(HOURLY, last, clock.now(), "latest").run == []
    clock.advance(40 * 60)  # 10:00:30
    nxt = due_ticks(HOURLY, last, clock.now(), "latest")
    assert nxt.run == [utc("2026-03-13T10:00")] and nxt.skipped == []
    assert due_ticks(HOURLY, nxt.handled_up_to, clock.now(), "all").run == []


@pytest.mark.parametrize("policy", list(CatchupPolicy))
def test_never_ran_does_not_replay_the_past(policy: CatchupPolicy) -> None:
    """No last tick and no `since`: only a tick within the grace window of now counts."""
    assert due_ticks(HOURLY, None, utc("2026-03-13T09:30"), policy) == due_ticks(
        HOURLY, None, utc("2026-03-13T09:30"), policy, max_catchup=5
    )
    assert due_ticks(HOURLY, None, utc("2026-03-13T09:30"), policy).run == []
    assert due_ticks(HOURLY, None, utc("2026-03-13T10:00:20"), policy).run == [utc("2026-03-13T10:00")]


def test_since_is_the_baseline_when_nothing_ran_yet() -> None:
    seen = utc("2026-03-13T07:30")
    plan = due_ticks(HOURLY, None, utc("2026-03-13T10:10"), "all", since=seen)
    assert plan.run == hours(utc("2026-03-13T08:00"), 3)
    latest = due_ticks(HOURLY, None, utc("2026-03-13T10:10"), "latest", since=seen)
    assert latest.run == [utc("2026-03-13T10:00")] and latest.skipped == hours(utc("2026-03-13T08:00"), 2)


def test_bad_catchup_arguments() -> None:
    with pytest.raises(ValueError, match="unknown catchup policy 'sometimes'"):
        due_ticks(HOURLY, LAST, BACK_UP, "sometimes")
    with pytest.raises(ValueError, match="max_catchup"):
        due_ticks(HOURLY, LAST, BACK_UP, "all", max_catchup=0)


# -- jitter, keys, clocks ------------------------------------------------------------------------------------


def test_jitter_is_deterministic_and_stable_across_processes() -> None:
    tick = utc("2026-03-29T01:30")
    # Pinned values: the offset must not depend on the process (no salted hash()) or on the run.
    assert jittered(tick, 300, "daily") == datetime(2026, 3, 29, 1, 31, 55, 262177, tzinfo=UTC)
    assert jittered(tick, 300, "hourly") == datetime(2026, 3, 29, 1, 32, 59, 920749, tzinfo=UTC)
    same_instant = tick.astimezone(ZoneInfo(SYDNEY))
    assert jittered(same_instant, 300, "daily") == jittered(tick, 300, "daily")


def test_jitter_stays_in_bounds_and_spreads() -> None:
    tick = utc("2026-03-29T01:00")
    offsets = [jittered(tick, 90, f"pipeline-{index}") - tick for index in range(300)]
    assert all(timedelta(0) <= offset < timedelta(seconds=90) for offset in offsets)
    assert len(set(offsets)) > 250
    assert min(offsets) < timedelta(seconds=10) and max(offsets) > timedelta(seconds=80)
    per_tick = {jittered(tick + HOUR * index, 90, "same") - tick - HOUR * index for index in range(20)}
    assert len(per_tick) > 15
    assert jittered(tick, 0, "daily") == tick


def test_tick_key_names_the_utc_instant() -> None:
    tick = datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo(LISBON))
    assert tick_key("daily", tick) == "daily@2026-03-29T01:30:00Z"
    assert tick_key("daily", tick.astimezone(ZoneInfo(NEW_YORK))) == tick_key("daily", tick)
    assert tick_key("daily", tick + timedelta(minutes=1)) != tick_key("daily", tick)
    assert tick_key("hourly", tick) != tick_key("daily", tick)
    with pytest.raises(ValueError, match="timezone-aware"):
        tick_key("daily", datetime(2026, 3, 29, 1, 30))


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 1, tzinfo=ZoneInfo(LISBON)))
    assert clock.now() == utc("2026-01-01T01:00") and clock.now().tzinfo is UTC
    assert clock.advance(90) == utc("2026-01-01T01:01:30")
    assert clock.advance(timedelta(days=3)) == utc("2026-01-04T01:01:30")
    clock.set(utc("2025-12-31T00:00"))
    assert clock.now() == utc("2025-12-31T00:00")
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_system_clock_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC and before <= now <= datetime.now(UTC)
