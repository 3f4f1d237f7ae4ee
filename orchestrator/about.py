"""`flx about`: the utility's settings in the same JSON shape as a singer-sdk plugin's `--about`.

The Meltano lock file of the `flx` utility is generated from this, like the tap's and target's from theirs,
so what `meltano config flx list` shows and what `flx` reads can't drift apart.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from singer_sdk import typing as th

from flx_core.plugin_settings import database_settings_schema

FLX_SETTINGS = th.PropertiesList(
    *database_settings_schema("flx").wrapped.values(),
    th.Property(
        "meltano_executable",
        th.StringType,
        default="meltano",
        description="The meltano command flx runs jobs with (a name on PATH or a path).",
    ),
    th.Property(
        "alert_urls",
        th.ArrayType(th.StringType),
        secret=True,
        description="apprise URLs (slack://, msteams://, mailto://, json://…) alerts go to; "
        "FLX_ALERT_URLS (comma-separated) adds more.",
    ),
    th.Property(
        "alert_repeat_interval_seconds",
        th.NumberType,
        default=14_400,
        description="A still-failing pipeline is re-announced after this long; status changes always are.",
    ),
    th.Property(
        "heartbeat_interval_seconds",
        th.NumberType,
        default=5,
        description="How often a running execution proves it is alive.",
    ),
    th.Property(
        "stale_after_seconds",
        th.NumberType,
        default=60,
        description="An execution without heartbeat for this long is marked failed by the next flx start.",
    ),
    th.Property(
        "kill_grace_seconds",
        th.NumberType,
        default=10,
        description="After SIGTERM on timeout or cancel, SIGKILL the job's process group after this long.",
    ),
    th.Property(
        "log_retention_days",
        th.NumberType,
        default=30,
        description="Each run's complete log (flx logs, flx ui) is kept this many days; 0 keeps it forever.",
    ),
    th.Property(
        "oracle_sources",
        th.ObjectType(additional_properties=True),
        description="Named Oracle sources for row-count validations: {name: {dsn | host, port, "
        "service_name; user, password; wallet_location, wallet_password; pool_min, pool_max, …}}.",
    ),
    th.Property(
        "pipelines",
        th.ObjectType(additional_properties=True),
        description="Per Meltano job (or named blocks): retries, retry_delay_seconds, timeout_seconds, "
        "max_concurrent_executions, timezone, validations, alert_urls.",
    ),
)


def about() -> dict[str, Any]:
    try:
        flx_version = version("flx")
    except PackageNotFoundError:  # running from a source tree
        flx_version = "0.0.0"
    return {
        "name": "flx",
        "description": "Runs Meltano jobs with retries, timeouts, no overlap, history, validations, alerts.",
        "version": flx_version,
        "capabilities": [],
        "settings": FLX_SETTINGS.to_dict(),
    }
