"""What a validation check is, as written under `pipelines.<name>.validations` in the flx plugin config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

CheckKind = Literal["row_count", "not_null", "unique", "freshness", "min_rows", "accepted_values"]


class CheckSpec(BaseModel):
    """One check against a loaded PostgreSQL table (`table` is `schema.table`).

    - row_count: `source` is `oracle:<source name>` or a SQLAlchemy URL; `source_table` or `source_query`;
      passes when |source - target| <= max(`tolerance_rows`, `tolerance_pct` % of source).
    - not_null / unique: `columns`.
    - freshness: `column` (a timestamp) and `max_age_seconds`.
    - min_rows: `min_rows`.
    - accepted_values: `column` and `values`.
    - `where`: an optional SQL filter on the target table, for every kind.
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
