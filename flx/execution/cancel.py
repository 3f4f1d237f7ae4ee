"""A cancel request: written on an active execution by `flx cancel` or the UI, from any machine; the runner
holding the run reads it with its next lease renewal (`flx.execution.lease`), stops the job and records
`cancelled`. psycopg only, so that the command that writes it starts fast."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flx_core.statuses import ACTIVE


def request_cancel(conn: Any, schema: str, execution_id: Any, by: str) -> tuple[datetime, str] | None:
    """Write the request on an active execution through a psycopg connection (the first request stands);
    (when, by whom) of the request that stands, or None when the execution is no longer active."""
    from psycopg import sql

    query = sql.SQL(
        "UPDATE {}.executions SET cancel_requested_at = coalesce(cancel_requested_at, now()), "
        "cancel_requested_by = coalesce(cancel_requested_by, %(by)s) "
        "WHERE id = %(id)s AND status = ANY(%(active)s) "
        "RETURNING cancel_requested_at, cancel_requested_by"
    ).format(sql.Identifier(schema))
    found = conn.execute(query, {"id": execution_id, "by": by, "active": list(ACTIVE)}).fetchone()
    return (found[0], str(found[1])) if found else None
