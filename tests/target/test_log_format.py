"""FLX_LOG_FORMAT=json: every line target-flx writes to stderr is one JSON object a log shipper can read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.target.singer_io import record, schema_msg, singer, state

PROPS = {"id": {"type": "integer"}}


def test_json_logs_are_one_object_a_line_with_the_run_identity(cli: Callable[..., Any]) -> None:
    env = {"FLX_LOG_FORMAT": "json", "FLX_EXECUTION_ID": "0b7c2f4e-0000-4000-8000-000000000001"}
    result = cli(singer(schema_msg("j", PROPS), record("j", {"id": 1}), state(1)), env=env)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert entries and all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert all(e["execution_id"] == env["FLX_EXECUTION_ID"] for e in entries)
    (loaded,) = [e for e in entries if e.get("stream") == "j"]
    assert loaded["records"] == 1 and loaded["level"] == "info"


def test_a_json_run_reports_its_error_as_a_json_line(cli: Callable[..., Any]) -> None:
    result = cli(singer(schema_msg("j", PROPS), record("j", {"id": "x"})), env={"FLX_LOG_FORMAT": "json"})
    assert result.returncode == 1
    last = json.loads(result.stderr.strip().splitlines()[-1])
    assert last["level"] == "error" and last["message"].startswith("target-flx: error: stream 'j', line 2")
