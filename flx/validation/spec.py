"""What a validation check is, as written under `pipelines.<name>.validations` in the flx plugin config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

CheckKind = Literal["row_count", "not_null", "unique", "freshness", "min_rows", "accepted_values"]


class CheckSpec(BaseModel):
    """One check against a loaded PostgreSQL table (`table` is `schema.table`).

    - row_count: `source` is `oracle:<source name>` or a SQLAlchemy URL; `source_table` or `source_query`;
      passes when |source - target| <= max(`tolerance_rows`, `tolerance_pct` % of source).
    - not_null / unique: `columns` (or a single `column`). `unique` counts duplicate key groups; NULL keys
      group together, as in GROUP BY.
    - freshness: `column` (a timestamp) and `max_age_seconds`.
    - min_rows: `min_rows`.
    - accepted_values: `column` and `values` (compared as text; NULLs are left to `not_null`).
    - `where`: an optional SQL filter on the target table, for every kind.

    Missing settings are rejected when the config is read, not when the check first runs at 3 a.m.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: CheckKind
    table: str
    columns: tuple[str, ...] = ()
    column: str | None = None
    source: str | None = None
    source_table: str | None = None
    source_query: str | None = None
    tolerance_rows: int = 0
    tolerance_pct: float = 0.0
    max_age_seconds: int | None = None
    min_rows: int | None = None
    values: tuple[str, ...] = ()
    where: str | None = None
    severity: Literal["warning", "error", "critical"] = "error"

    @property
    def key_columns(self) -> tuple[str, ...]:
        """`columns`, or the single `column` when that is what the owner wrote."""
        if self.columns:
            return self.columns
        return (self.column,) if self.column else ()

    @model_validator(mode="after")
    def _complete(self) -> CheckSpec:
        problems = list(self._missing())
        if problems:
            raise ValueError(f"check {self.name!r} ({self.kind}): " + "; ".join(problems))
        return self

    def _missing(self) -> list[str]:
        problems: list[str] = []
        if not self.table.strip():
            problems.append("`table` is empty")
        if self.tolerance_rows < 0 or self.tolerance_pct < 0:
            problems.append("tolerances cannot be negative")
        if self.kind == "row_count":
            if not self.source:
                problems.append("`source` is required (oracle:<name> or a database URL)")
            if bool(self.source_table) == bool(self.source_query):
                problems.append("set exactly one of `source_table` and `source_query`")
        elif self.kind in ("not_null", "unique"):
            if not self.key_columns:
                problems.append("`columns` is required")
        elif self.kind == "freshness":
            if not self.column:
                problems.append("`column` is required")
            if self.max_age_seconds is None or self.max_age_seconds <= 0:
                problems.append("`max_age_seconds` must be a positive number")
        elif self.kind == "min_rows":
            if self.min_rows is None or self.min_rows < 0:
                problems.append("`min_rows` must be zero or more")
        elif self.kind == "accepted_values":
            if not self.column:
                problems.append("`column` is required")
            if not self.values:
                problems.append("`values` is required")
        return problems
