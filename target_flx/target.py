"""The singer-sdk Target class: settings, CLI, `--about`; the load itself is in run.py.

singer-sdk's per-record path (a dict per record, jsonschema validation, per-record metadata) is the
bottleneck the anchors measure, so target-flx plugs in its own message reader: lines are routed here and
decoded a batch at a time into typed rows. Everything else (config, `--about`, CLI) is the SDK's.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from types import FrameType
from typing import IO, Any, ClassVar

from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TargetCapabilities
from singer_sdk.io_base import GenericSingerReader
from singer_sdk.target_base import Target

from flx_core.plugin_settings import plugin_config_jsonschema
from flx_core.settings import SettingsError
from target_flx.cancel import Cancelled, cancel, stop_after_the_load
from target_flx.errors import TargetError, debugging
from target_flx.run import LoadRun
from target_flx.setting_names import check_names
from target_flx.settings import LoadSettings

log = logging.getLogger("target_flx")


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
    config_jsonschema = plugin_config_jsonschema("target-flx", LoadSettings)
    default_sink_class = None  # type: ignore[assignment]  # records never reach singer-sdk sinks

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message_reader = _FlxReader(self)
        self.current_run: LoadRun | None = None

    def process_endofpipe(self) -> None:
        """LoadRun finished everything when the input ended."""

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        cancel(signum, frame)

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """One line and a non-zero exit for expected failures; the traceback only when debugging."""
        try:
            super().invoke(*args, **kwargs)
            stop_after_the_load()
        except (TargetError, SettingsError) as exc:
            if debugging():
                raise
            sys.stderr.write(f"target-flx: error: {exc}\n")
            sys.exit(143 if isinstance(exc, Cancelled) else 1)
