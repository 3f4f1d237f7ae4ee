"""Log lines for people (singer-sdk's console format) or for log shippers (one JSON object a line).

`FLX_LOG_FORMAT=json` (or `TARGET_FLX_LOG_FORMAT=json`) gives Loki, Vector or Datadog what they parse:
time, level, logger, message, and the flx execution and Meltano run the load belongs to.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys

import orjson

CONSOLE_FORMAT = "{asctime:23s} | {levelname:8s} | {name:30s} | {message}"  # singer-sdk's


def json_wanted() -> bool:
    value = os.environ.get("TARGET_FLX_LOG_FORMAT") or os.environ.get("FLX_LOG_FORMAT") or ""
    return value.lower() == "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the run's identity from the environment flx and Meltano set."""

    def __init__(self) -> None:
        super().__init__()
        self.context = {
            key: value
            for key, value in (
                ("execution_id", os.environ.get("FLX_EXECUTION_ID")),
                ("run_id", os.environ.get("MELTANO_RUN_ID")),
                ("plugin", "target-flx"),
            )
            if value
        }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.context,
        }
        for key in ("stream", "table", "records", "seconds"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_wanted() else logging.Formatter(CONSOLE_FORMAT, style="{"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        root.setLevel(level.upper())
    except ValueError:
        root.setLevel(logging.INFO)
