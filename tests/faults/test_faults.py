"""target-flx under faults: killed, cancelled, its server restarted or crashed, its sessions terminated, fed
a bad line or a truncated input. Whatever happens, no STATE may go out ahead of the committed rows, and
resuming from the last emitted STATE must end with every record loaded (once, for keyed streams).

Trials land at seeded random moments: the seed is in the report header and in every failure message, and
FLX_FAULT_SEED reproduces a run. FLX_FAULT_TRIALS sets the trials per fault kind.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable

import pytest
from psycopg import sql

from tests.faults.generator import VARIANTS, BadLine, Feed, Rendering, bookmarks_of
from tests.faults.harness import (
    Fault,
    FirstRun,
    Lab,
    RunOutcome,
    TrialReport,
    last_stderr_line,
    sigkill,
    sigterm,
    stderr_problems,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TRIALS = int(os.environ.get("FLX_FAULT_TRIALS") or 4)
BATCH_ROWS = 3000  # 24,000 records: eight batches per stream-run, so faults land between commits


def _position(rng: random.Random, rendering: Rendering) -> int:
    """A record position past the first batches' start and before the end of the input."""
    return rng.randint(rendering.records // 10, rendering.records * 9 // 10)


def _exit_problems(outcome: RunOutcome, expected: int) -> list[str]:
    if outcome.returncode is None or outcome.returncode == expected:
        return []
    return [f"exit {outcome.returncode}, expected {expected}: {last_stderr_line(outcome.stderr)}"]


def _run_trials(
    lab: Lab, seed: int, name: str, first_run: Callable[[random.Random, Feed], FirstRun], trials: int = TRIALS
) -> None:
    rng = random.Random(f"{seed}:{name}")
    reports: list[TrialReport] = []
    print(f"fault seed {seed}")
    for trial in range(trials):
        feed = Feed(VARIANTS[trial % len(VARIANTS)])
        report = lab.trial(feed, first_run(rng, feed), batch_size_rows=BATCH_ROWS)
        print(f"trial {trial + 1}: {report.summary}")
        reports.append(report)
    problems = [f"trial {i + 1}: {p}" for i, r in enumerate(reports) for p in r.problems]
    assert not problems, f"seed {seed} (FLX_FAULT_SEED={seed}), {len(problems)} problems:\n" + "\n".join(
        problems
    )


def _at_random_record(
    rng: random.Random, action: Callable[..., str], label: str
) -> Callable[[Rendering], Fault]:
    def fault(rendering: Rendering) -> Fault:
        position = _position(rng, rendering)
        return Fault(rendering.end_of_record(position), action, f"{label} after record {position}")

    return fault


@pytest.mark.timeout(300)
def test_sigkill(lab: Lab, fault_seed: int) -> None:
    """SIGKILL leaves no chance to clean up: only what was committed (and its STATE) counts."""

    def first_run(rng: random.Random, feed: Feed) -> FirstRun:
        return FirstRun(
            "SIGKILL",
            fault=_at_random_record(rng, sigkill, "SIGKILL"),
            expect=lambda o, _r, _l: _exit_problems(o, -signal.SIGKILL),
        )

    _run_trials(lab, fault_seed, "sigkill", first_run)


@pytest.mark.timeout(300)
def test_sigterm(lab: Lab, fault_seed: int) -> None:
    """Meltano cancels with SIGTERM: commit what was received, emit its STATE, exit 143 with one line."""

    def expect(outcome: RunOutcome, _rendering: Rendering, _line: int | None) -> list[str]:
        problems = _exit_problems(outcome, 143)
        if outcome.returncode is not None and outcome.returncode != 0:
            problems += stderr_problems(outcome.stderr, mentions="SIGTERM")
        return problems

    def first_run(rng: random.Random, feed: Feed) -> FirstRun:
        return FirstRun("SIGTERM", fault=_at_random_record(rng, sigterm, "SIGTERM"), expect=expect)

    _run_trials(lab, fault_seed, "sigterm", first_run)


def _either_went_on_or_stopped_cleanly(
    outcome: RunOutcome, _rendering: Rendering, _line: int | None
) -> list[str]:
    """Losing the database: reconnecting and going on (exit 0) and stopping with one line (exit 1) are
    both fine."""
    if outcome.returncode is None:
        return []
    if outcome.returncode == 0:
        return []
    if outcome.returncode != 1:
        return [f"exit {outcome.returncode}, expected 0 or 1: {last_stderr_line(outcome.stderr)}"]
    return stderr_problems(outcome.stderr)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restart(lab: Lab, fault_seed: int, mode: str) -> None:
    """`pg_ctl restart` mid-load: every session of the target ends; with `immediate`, the server also
    recovers from a crash."""

    def restart(_proc: object) -> str:
        lab.cluster.restart(mode)
        return f"server restarted -m {mode}"

    def first_run(rng: random.Random, feed: Feed) -> FirstRun:
        return FirstRun(
            f"restart -m {mode}",
            fault=_at_random_record(rng, restart, f"restart -m {mode}"),
            expect=_either_went_on_or_stopped_cleanly,
        )

    _run_trials(lab, fault_seed, f"restart-{mode}", first_run, trials=max(1, TRIALS - 1))


@pytest.mark.timeout(300)
def test_terminated_sessions(lab: Lab, fault_seed: int) -> None:
    """An administrator's `pg_terminate_backend` on every session of the target, mid-load."""

    def terminate(_proc: object) -> str:
        return f"terminated {lab.cluster.terminate_target()} sessions"

    def first_run(rng: random.Random, feed: Feed) -> FirstRun:
        return FirstRun(
            "pg_terminate_backend",
            fault=_at_random_record(rng, terminate, "pg_terminate_backend"),
            expect=_either_went_on_or_stopped_cleanly,
        )

    _run_trials(lab, fault_seed, "terminate", first_run)


def _bad_line_problems(outcome: RunOutcome, rendering: Rendering, _line: int | None) -> list[str]:
    problems = _exit_problems(outcome, 1)
    if outcome.returncode == 0:
        problems.append(f"exit 0 on the bad line {rendering.bad_line}")
    elif outcome.returncode is not None:
        problems += stderr_problems(outcome.stderr, line=rendering.bad_line)
    return problems


@pytest.mark.timeout(300)
def test_bad_line(lab: Lab, fault_seed: int) -> None:
    """A bad record mid-load: exit 1 naming its line; the tap fixed, the resume loses nothing."""
    keyed_only = {"null_key", "missing_key"}  # without key properties, these are valid records
    kinds = [
        "string_in_numeric",
        "truncated_json",
        "invalid_utf8",
        "null_key",
        "missing_key",
        "impossible_datetime",
    ]

    def first_run(rng: random.Random, feed: Feed) -> FirstRun:
        choices = [k for k in kinds if feed.keys or k not in keyed_only]
        kind = rng.choice(choices)
        position = rng.randint(feed.total // 10, feed.total * 9 // 10)
        return FirstRun(
            f"bad line ({kind} at record {position})",
            render=lambda f: f.render(bad=BadLine(position, kind)),
            expect=_bad_line_problems,
        )

    _run_trials(lab, fault_seed, "bad-line", first_run)


@pytest.mark.timeout(300)
def test_truncated_input(lab: Lab, fault_seed: int) -> None:
    """The tap dies mid-line: the target reports the partial last line and emits nothing uncommitted."""

    def expect(outcome: RunOutcome, _rendering: Rendering, line: int | None) -> list[str]:
        problems = _exit_problems(outcome, 1)
        if outcome.returncode == 0:
            problems.append(f"exit 0 on input cut inside line {line}")
        elif outcome.returncode is not None:
            problems += stderr_problems(outcome.stderr, line=line)
        return problems

    def first_run(rng: random.Random, feed: Feed) -> FirstRun:
        position = rng.randint(feed.total // 10, feed.total * 9 // 10)
        return FirstRun(
            f"input cut inside record {position}",
            cut=lambda r: r.cut_inside_record(position),
            expect=expect,
        )

    _run_trials(lab, fault_seed, "truncated", first_run)


@pytest.mark.timeout(120)
def test_refused_batch_holds_back_its_state(lab: Lab) -> None:
    """The database refuses a batch (a CHECK constraint added after the table was made): no STATE after
    that batch's records may go out, even when the input then pauses and the target flushes."""
    feed = Feed("keyed", total=300, state_every=10)
    schema = lab.new_schema()
    first = lab.run(schema, feed.render(until=100).data, batch_size_rows=100, paced=False)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.last_state is not None and bookmarks_of(first.last_state) == {"orders": 100}
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("orders"))
    lab.cluster.query(sql.SQL("ALTER TABLE {} ADD CONSTRAINT orders_not_150 CHECK (id <> 150)").format(table))

    second_input = feed.render({"orders": 100})  # ids 101..300: batches of 25, id 150 ends the second
    hold = (second_input.end_of_record(60), 2.0)  # ids 151..160 sent, then the tap pauses for 2 s
    second = lab.run(
        schema, second_input.data, batch_size_rows=25, paced=False, hold=hold, after={"orders": 100}
    )
    print(f"run 2: exit {second.returncode}, STATEs {second.states}, {last_stderr_line(second.stderr)}")
    problems = [f"run 2: {v}" for v in second.violations]
    if second.returncode != 1:
        problems.append(f"run 2: exit {second.returncode}, expected 1: {last_stderr_line(second.stderr)}")
    problems += [
        f"run 2: {p}" for p in stderr_problems(second.stderr, line=second_input.line_number_of_record(50))
    ]
    last = bookmarks_of(second.last_state)["orders"] if second.last_state is not None else 100
    committed = lab.cluster.query(
        sql.SQL("SELECT count(DISTINCT id) FROM {} WHERE id <= %s").format(table), last
    )
    if committed[0][0] < last:
        problems.append(
            f"run 2: last STATE is id {last} but only {committed[0][0]} of ids 1..{last} are committed"
        )
    if last >= 150:
        problems.append(f"run 2: last STATE is id {last}, at or past the refused id 150")

    lab.cluster.query(sql.SQL("ALTER TABLE {} DROP CONSTRAINT orders_not_150").format(table))
    third = lab.run(
        schema, feed.render({"orders": last}).data, batch_size_rows=25, paced=False, after={"orders": last}
    )
    problems += [f"run 3 (resume from {last}): {v}" for v in third.violations]
    if third.returncode != 0:
        problems.append(
            f"run 3 (resume from {last}): exit {third.returncode}: {last_stderr_line(third.stderr)}"
        )
    table_problems, _ = lab.check_tables(schema, feed, runs=3, batch_size_rows=25)
    problems += table_problems
    assert not problems, "\n".join(problems)
