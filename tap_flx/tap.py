"""The singer-sdk Tap class: settings, discovery and CLI; the reading is in control.py and meltano_runs.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from singer_sdk import Stream, Tap

from flx_core.models import Base
from flx_core.plugin_settings import plugin_config_jsonschema
from tap_flx.control import ControlTableStream
from tap_flx.meltano_runs import MeltanoRunsStream
from tap_flx.settings import TapSettings
from tap_flx.source import ControlDatabase
from tap_flx.writer import BufferedMsgSpecWriter

# the control tables, parents before children (the SDK sorts streams by name anyway)
CONTROL_TABLES = (
    "pipelines",
    "pipeline_steps",
    "plugins",
    "executions",
    "execution_events",
    "stream_loads",
    "validation_results",
    "alerts",
    "quarantine",
)


class TapFlx(Tap):
    """flx's execution history, and optionally Meltano's runs, as incremental Singer streams."""

    name = "tap-flx"
    package_name = "flx"
    message_writer_class = BufferedMsgSpecWriter
    config_jsonschema = plugin_config_jsonschema("tap-flx", TapSettings)

    def __init__(self, **kwargs: Any) -> None:
        self.database: ControlDatabase | None = None
        super().__init__(**kwargs)

    def discover_streams(self) -> Sequence[Stream]:
        """From the models, not from the database: discovery works before the schema exists."""
        if self.database is None:
            self.database = ControlDatabase(dict(self.config))
        tables = Base.metadata.tables
        streams: list[Stream] = [
            ControlTableStream(self, tables[f"flx.{name}"], self.database) for name in CONTROL_TABLES
        ]
        if uri := self.config.get("meltano_database_uri"):
            streams.append(MeltanoRunsStream(self, str(uri)))
        return streams
