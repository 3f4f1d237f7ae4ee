"""What the runner tells the alert manager; the manager decides whether and where to send it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AlertKind = Literal["failure", "timeout", "validation", "stuck", "connectivity", "authentication"]
Severity = Literal["info", "warning", "error", "critical"]


@dataclass(frozen=True)
class AlertEvent:
    """One problem. Same `fingerprint` (pipeline + kind + check) = the same ongoing problem, deduplicated."""

    pipeline: str
    kind: AlertKind
    severity: Severity
    title: str
    body: str
    check_name: str | None = None
    execution_id: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return ":".join((self.pipeline, self.kind, self.check_name or "-"))
