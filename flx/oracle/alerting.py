"""The alert the runner raises when an Oracle source fails, shaped by what the failure means."""

from __future__ import annotations

from flx.alerts.event import AlertEvent, AlertKind
from flx.oracle.errors import OracleFailure

_KINDS: dict[str, AlertKind] = {
    "connectivity": "connectivity",
    "timeout": "connectivity",  # a source too slow to answer is, for the operator, a source that is down
    "authentication": "authentication",
    "other": "failure",
}

_WHAT = {
    "connectivity": "is unreachable",
    "timeout": "timed out",
    "authentication": "refused the credentials",
    "other": "failed",
}


def alert_for(
    failure: OracleFailure, source_name: str, pipeline: str, execution_id: str | None = None
) -> AlertEvent:
    """One alert per pipeline, kind and source (`check_name` = `oracle:<source>`)."""
    code = f" ({failure.code})" if failure.code else ""
    details = {"source": source_name, "category": failure.category}
    if failure.code:
        details["code"] = failure.code
    return AlertEvent(
        pipeline=pipeline,
        kind=_KINDS[failure.category],
        severity=failure.severity,
        title=f"{pipeline}: Oracle source {source_name} {_WHAT[failure.category]}{code}",
        body=failure.message,
        check_name=f"oracle:{source_name}",
        execution_id=execution_id,
        details=details,
    )
