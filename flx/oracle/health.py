"""A bounded probe of an Oracle source: connect, run one query, report, whatever happens.

python-oracledb has no timeout for the login handshake (tcp_connect_timeout stops at the TCP connect;
oracle/python-oracledb#451), so a server that accepts and then stays silent would hang the caller. The
probe therefore runs in a daemon thread and the caller stops waiting at the deadline; the thread dies
with the process if the server never answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flx.oracle.errors import Category, OracleFailure, classify


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    latency_ms: float
    category: Category | None = None
    code: str | None = None
    message: str = "ok"
    failure: OracleFailure | None = None


def probe(name: str, attempt: Callable[[], None], deadline_seconds: float) -> HealthResult:
    """Run `attempt` (connect + query) with a deadline; never raises."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            attempt()
        except BaseException as exc:  # reported to the caller, never lost in the thread
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"flx-oracle-health-{name}", daemon=True)
    thread.start()
    thread.join(deadline_seconds)
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    if not outcome:
        failure = OracleFailure(
            "timeout", None, True, "warning", f"no answer from the database within {deadline_seconds:g}s"
        )
        return HealthResult(False, latency_ms, failure.category, None, failure.message, failure)
    error = outcome[0]
    if error is None:
        return HealthResult(True, latency_ms)
    failure = classify(error)
    return HealthResult(False, latency_ms, failure.category, failure.code, failure.message, failure)
