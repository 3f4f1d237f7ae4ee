"""Log lines for people (singer-sdk's console format) or for log shippers (one JSON object a line:
`FLX_LOG_FORMAT=json` or `TARGET_FLX_LOG_FORMAT=json`, see flx_core/logs.py)."""

from __future__ import annotations

import logging
import sys

from flx_core import logs

CONSOLE_FORMAT = "{asctime:23s} | {levelname:8s} | {name:30s} | {message}"  # singer-sdk's


def json_wanted() -> bool:
    return logs.json_wanted("TARGET_FLX")


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_wanted():
        handler.setFormatter(logs.JsonFormatter("target-flx"))
    else:
        handler.setFormatter(logging.Formatter(CONSOLE_FORMAT, style="{"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        root.setLevel(level.upper())
    except ValueError:
        root.setLevel(logging.INFO)
