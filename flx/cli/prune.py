"""`flx db prune`: old detail goes, each run's summary stays.

Events, logs and log tails, quarantined raw lines and schedule ticks of runs that ended more than N days
ago are what grows without bound; the execution rows (status, times, exit code, error), their stream loads and
validation results are small and are what history, the UI and the metrics read, so they are kept. Running
executions are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class Pruned:
    events: int
    logs: int
    log_tails: int
    quarantined: int
    ticks: int


def prune(engine: Engine, schema: str, older_than_days: float, *, dry_run: bool = False) -> Pruned:
    """Delete (or, with `dry_run`, count) what is older than the cutoff, in one transaction."""
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    s = '"' + schema.replace('"', '""') + '"'
    old = f"SELECT id FROM {s}.executions WHERE ended_at < :cutoff"
    with_tail = "ended_at < :cutoff AND log_tail IS NOT NULL"
    statements = {
        "events": f"FROM {s}.execution_events WHERE execution_id IN ({old})",
        "logs": f"FROM {s}.execution_logs WHERE execution_id IN ({old})",
        "log_tails": f"FROM {s}.executions WHERE {with_tail}",
        "quarantined": f"FROM {s}.quarantine WHERE created_at < :cutoff",
        "ticks": f"FROM {s}.schedule_ticks WHERE tick_at < :cutoff",
    }
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for what, where in statements.items():
            if dry_run:
                counts[what] = int(
                    conn.execute(text(f"SELECT count(*) {where}"), {"cutoff": cutoff}).scalar_one()
                )
            elif what == "log_tails":
                update = f"UPDATE {s}.executions SET log_tail = NULL WHERE {with_tail}"
                counts[what] = conn.execute(text(update), {"cutoff": cutoff}).rowcount
            else:
                counts[what] = conn.execute(text(f"DELETE {where}"), {"cutoff": cutoff}).rowcount
    return Pruned(**counts)
