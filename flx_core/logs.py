"""One JSON object a log line, for log shippers (Loki, Vector, Datadog), shared by flx and target-flx.

Chosen with `FLX_LOG_FORMAT=json` (or a plugin's own `<PLUGIN>_LOG_FORMAT`); the plain format stays the
default in a terminal.
"""

from __future__ import annotations

import datetime
import logging
import os

import orjson

# Attributes a log call may pass in `extra=` that belong in the JSON object.
FIELDS = ("stream", "table", "records", "seconds", "pipeline", "execution_id")


def json_wanted(prefix: str | None = None) -> bool:
    own = os.environ.get(f"{prefix}_LOG_FORMAT") if prefix else None
    return (own or os.environ.get("FLX_LOG_FORMAT") or "").lower() == "json"


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, and the flx execution and Meltano run from the environment."""

    def __init__(self, plugin: str) -> None:
        super().__init__()
        context = {
            "execution_id": os.environ.get("FLX_EXECUTION_ID"),
            "run_id": os.environ.get("MELTANO_RUN_ID"),
            "plugin": plugin,
        }
        self.context = {k: v for k, v in context.items() if v}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.context,
        }
        for key in FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()
