"""An execution's statuses, without the database layer: the reading commands use them and start fast."""

from __future__ import annotations

import enum


class ExecutionStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FAILED_VALIDATION = "failed_validation"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        return self.value not in ACTIVE


# A run that is not over yet: a runner holds it (or, once its lease lapses, recovery ends it).
ACTIVE: tuple[str, ...] = (
    ExecutionStatus.PENDING.value,
    ExecutionStatus.RUNNING.value,
    ExecutionStatus.RETRYING.value,
)
