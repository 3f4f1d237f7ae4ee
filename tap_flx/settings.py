"""What tap-flx reads beyond the shared database settings (`flx_core.plugin_settings`)."""

from __future__ import annotations

from singer_sdk import typing as th

TAP_SETTINGS = th.PropertiesList(
    th.Property(
        "start_date",
        th.DateTimeType,
        description="Only rows updated at or after this instant on the first sync (no state yet).",
    ),
    th.Property(
        "meltano_database_uri",
        th.StringType,
        secret=True,
        description="Meltano's system database (sqlite:///…/.meltano/meltano.db or postgresql://…): "
        "adds the meltano_runs stream from its `runs` table.",
    ),
    th.Property(
        "meltano_runs_lookback_seconds",
        th.NumberType,
        default=300,
        description="meltano_runs re-reads runs this far before its bookmark: Meltano timestamps runs "
        "before committing them, so one may commit after a newer one was read.",
    ),
    th.Property(
        "cursor_batch_rows",
        th.IntegerType,
        default=5_000,
        description="Rows fetched per round trip from the server-side cursor: bounds memory.",
    ),
)
