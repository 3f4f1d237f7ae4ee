"""What tap-flx reads beyond the shared database settings (`flx_core.settings.DatabaseSettings`).

The model declares each setting once; the tap's `config_jsonschema` (and so `--about`, the lock file and
the README table) is generated from it by `flx_core.setting_schema`. The streams read `self.config`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TapSettings(BaseModel):
    """tap-flx's own settings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    start_date: datetime | None = Field(
        default=None,
        description="Only rows updated at or after this instant on the first sync (no state yet).",
    )
    meltano_database_uri: SecretStr | None = Field(
        default=None,
        description="Meltano's system database (sqlite:///…/.meltano/meltano.db or postgresql://…): "
        "adds the meltano_runs stream from its `runs` table.",
    )
    meltano_runs_lookback_seconds: float = Field(
        default=300.0,
        description="meltano_runs re-reads runs this far before its bookmark: Meltano timestamps runs "
        "before committing them, so one may commit after a newer one was read.",
    )
    cursor_batch_rows: int = Field(
        default=5_000,
        description="Rows fetched per round trip from the server-side cursor: bounds memory.",
    )
