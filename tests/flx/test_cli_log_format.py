"""`flx --log-format json` (FLX_LOG_FORMAT=json): flx's log lines and the plugins' are JSON objects."""

from __future__ import annotations

import json

import pytest

from tests.flx.meltano_project import MeltanoProject

pytestmark = pytest.mark.slow


def test_a_run_logs_one_json_object_a_line(project: MeltanoProject) -> None:
    done = project.flx("--log-format", "json", "run", "ok-job")
    assert done.returncode == 0, done.stderr
    logged = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert logged, done.stderr
    entries = [json.loads(line) for line in logged]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any(e["plugin"] == "flx" and e["logger"].startswith("flx.") for e in entries)
