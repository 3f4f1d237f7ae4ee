"""`flx --log-format json` (FLX_LOG_FORMAT=json): flx's log lines and the plugins' are JSON objects."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.orchestrator.meltano_project import make_project

pytestmark = pytest.mark.slow


def test_a_run_logs_one_json_object_a_line(tmp_path: Path, database_url: URL) -> None:
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    project = make_project(tmp_path / "project", database_url.render_as_string(hide_password=False), schema)
    done = project.flx("--log-format", "json", "run", "ok-job")
    assert done.returncode == 0, done.stderr
    logged = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert logged, done.stderr
    entries = [json.loads(line) for line in logged]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any(e["plugin"] == "flx" and e["logger"].startswith("orchestrator") for e in entries)
