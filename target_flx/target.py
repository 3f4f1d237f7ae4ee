"""The singer-sdk Target class: settings, CLI, `--about`; the load itself is in run.py.

singer-sdk's per-record path (a dict per record, jsonschema validation, per-record metadata) is the
bottleneck the anchors measure, so target-flx plugs in its own message reader: lines are routed here and
decoded a batch at a time into typed rows. Everything else (config, `--about`, CLI) is the SDK's.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections import Counter
from types import FrameType
from typing import IO, Any, ClassVar

from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TargetCapabilities
from singer_sdk.io_base import GenericSingerReader
from singer_sdk.target_base import Target

from flx_core.plugin_settings import database_settings_schema
from flx_core.settings import SettingsError
from target_flx.errors import TargetError, debugging
from target_flx.run import Cancelled, LoadRun
from target_flx.setting_names import check_names

log = logging.getLogger("target_flx")

DATABASE_SETTINGS = database_settings_schema("target-flx")

LOAD_SETTINGS = th.PropertiesList(
    th.Property(
        "default_target_schema",
        th.StringType,
        description="Schema to load into. Default: from `schema-table` stream names, else public.",
    ),
    th.Property(
        "load_method",
        th.StringType,
        allowed_values=["append-only", "upsert", "overwrite"],
        description="Default: upsert for streams with key properties, append-only for the others. "
        "overwrite loads a new table and swaps it in at the end.",
    ),
    th.Property("batch_size_rows", th.IntegerType, default=10_000, description="Rows per COPY batch."),
    th.Property(
        "batch_size_bytes",
        th.IntegerType,
        default=8 * 1024 * 1024,
        description="Input bytes per COPY batch: bounds memory whatever the record size.",
    ),
    th.Property(
        "validate_records",
        th.BooleanType,
        default=True,
        description="Reject values that do not match the schema (types, nullability, bounds).",
    ),
    th.Property(
        "add_record_metadata",
        th.BooleanType,
        default=True,
        description="Add the _sdc_* metadata columns, as singer-sdk targets do.",
    ),
    th.Property(
        "activate_version",
        th.BooleanType,
        default=True,
        description="Process ACTIVATE_VERSION messages (alias: process_activate_version_messages).",
    ),
    th.Property(
        "hard_delete",
        th.BooleanType,
        default=False,
        description="On ACTIVATE_VERSION delete old rows instead of setting _sdc_deleted_at.",
    ),
    th.Property(
        "interpret_content_encoding",
        th.BooleanType,
        default=False,
        description="Load strings with contentEncoding base16 or base64 into bytea columns "
        "(as MeltanoLabs target-postgres does for base16).",
    ),
    th.Property(
        "sanitize_null_text_characters",
        th.BooleanType,
        default=False,
        description="Remove NUL (U+0000) characters, which PostgreSQL text cannot hold, instead of failing.",
    ),
    th.Property(
        "on_invalid_record",
        th.StringType,
        default="fail",
        allowed_values=["fail", "quarantine"],
        description="fail: stop at the first invalid record. quarantine: keep it in the control "
        "schema's quarantine table and go on.",
    ),
    th.Property(
        "state_flush_seconds",
        th.NumberType,
        default=30,
        description="Commit buffered records at least this often once a STATE is waiting.",
    ),
    th.Property(
        "max_parallelism",
        th.IntegerType,
        default=4,
        description="Connections used to load streams concurrently.",
    ),
    th.Property(
        "connection_retry_seconds",
        th.NumberType,
        default=60,
        description="After losing the connection to PostgreSQL (restart, failover), keep retrying the "
        "batch on a new connection for this long before failing the run. 0: fail at once.",
    ),
    th.Property(
        "lock_timeout_seconds",
        th.NumberType,
        description="Fail a batch that waits longer than this for a table lock held by another session. "
        "Default: wait (a line is logged every 10 seconds of waiting).",
    ),
)


class _FlxReader(GenericSingerReader[str]):
    """Hands the whole input to a LoadRun instead of dispatching one message dict at a time."""

    def __init__(self, target: TargetFlx) -> None:
        super().__init__()
        self.target = target

    @property
    def default_input(self) -> IO[str]:
        return sys.stdin

    def deserialize_json(self, line: str) -> dict[str, Any]:  # pragma: no cover - LoadRun decodes
        raise NotImplementedError

    def process_lines(self, file_input: IO[str] | None, callbacks: Any) -> Counter[str]:
        check_names(self.target.config, self.target.config_jsonschema["properties"])
        run = LoadRun(dict(self.target.config), self.target.mapper)
        self.target.current_run = run
        try:
            return run.process(file_input or sys.stdin)
        finally:
            self.target.current_run = None


class TargetFlx(Target):
    """Singer → PostgreSQL through pipelined asyncpg binary COPY."""

    name = "target-flx"
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        *Target.capabilities,
        PluginCapabilities.ACTIVATE_VERSION,
        TargetCapabilities.HARD_DELETE,
        TargetCapabilities.TARGET_SCHEMA,
    ]
    package_name = "flx"
    config_jsonschema = th.PropertiesList(
        *DATABASE_SETTINGS.wrapped.values(), *LOAD_SETTINGS.wrapped.values()
    ).to_dict()
    default_sink_class = None  # type: ignore[assignment]  # records never reach singer-sdk sinks

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message_reader = _FlxReader(self)
        self.current_run: LoadRun | None = None

    def process_endofpipe(self) -> None:
        """LoadRun finished everything when the input ended."""

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        raise Cancelled(f"received signal {signal.Signals(signum).name}: committed what was received")

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """One line and a non-zero exit for expected failures; the traceback only when debugging."""
        try:
            super().invoke(*args, **kwargs)
        except (TargetError, SettingsError) as exc:
            if debugging():
                raise
            sys.stderr.write(f"target-flx: error: {exc}\n")
            sys.exit(143 if isinstance(exc, Cancelled) else 1)
