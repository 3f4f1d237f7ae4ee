"""The result of one check, as returned to the runner and stored in `flx.validation_results`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flx.validation.spec import CheckSpec

CheckStatus = Literal["passed", "failed", "error"]


@dataclass(frozen=True)
class Measurement:
    """What a check function measured; the runner adds the spec and turns exceptions into errors."""

    passed: bool
    observed: str | None
    expected: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckOutcome:
    spec: CheckSpec
    status: CheckStatus
    observed: str | None
    expected: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"
