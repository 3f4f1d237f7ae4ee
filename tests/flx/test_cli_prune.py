"""`flx db prune --older-than DAYS`: old runs lose their events, logs and log tails, keep their summaries."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from tests.flx.meltano_project import MeltanoProject

pytestmark = pytest.mark.slow


def test_prune_keeps_summaries_and_recent_runs(project: MeltanoProject, database_url: URL) -> None:
    assert project.flx("run", "ok-job").returncode == 0
    assert project.flx("run", "ok-job").returncode == 0
    engine = project.engine(database_url)
    c = project.control
    count = f"(SELECT count(*) FROM {c}.execution_events e WHERE e.execution_id = x.id)"
    with engine.begin() as conn:  # the first run ended 40 days ago
        old = f"UPDATE {c}.executions SET ended_at = now() - interval '40 days' WHERE execution_number = 1"
        conn.execute(text(old))
        events = dict(conn.execute(text(f"SELECT execution_number, {count} FROM {c}.executions x")).all())
    assert events[1] > 0 and events[2] > 0

    dry = project.flx("db", "prune", "--older-than", "30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete {events[1]:,} events, 1 log chunks, 1 log tails" in dry.stdout.replace("\n", " ")

    done = project.flx("db", "prune", "--older-than", "30")
    assert done.returncode == 0, done.stderr
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                f"SELECT execution_number, status, log_tail IS NULL, {count},"
                f" (SELECT count(*) FROM {c}.execution_logs l WHERE l.execution_id = x.id)"
                f" FROM {c}.executions x ORDER BY execution_number"
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, "succeeded", True, 0, 0), (2, "succeeded", False, events[2], 1)]
    engine.dispose()

    refused = project.flx("db", "prune", "--older-than", "0")
    assert refused.returncode == 2 and "--older-than" in refused.stderr
