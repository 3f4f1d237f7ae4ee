"""The real `tap-flx` executable: --about, --discover without a database, selection, stream maps, embedded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tap_flx.tap import CONTROL_TABLES, TapFlx
from tests.embedded_server import stop_embedded
from tests.tap.conftest import Synced, parse_output

TAP = Path(sys.executable).with_name("tap-flx")


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    return subprocess.run([str(TAP), *args], capture_output=True, text=True, timeout=timeout, env=environment)


def test_about_lists_the_settings_with_secrets_marked() -> None:
    proc = _run("--about", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    about = json.loads(proc.stdout)
    assert about["name"] == "tap-flx"
    settings = about["settings"]["properties"]
    for name in ("host", "port", "user", "password", "database", "sqlalchemy_url", "ssl_enable",
                 "ssl_mode", "ssl_certificate_authority", "ssl_client_certificate_enable",
                 "ssl_client_certificate", "ssl_client_private_key", "control_schema", "application_name",
                 "start_date", "meltano_database_uri", "stream_maps"):  # fmt: skip
        assert name in settings, name
    for secret in ("password", "sqlalchemy_url", "ssl_client_private_key", "meltano_database_uri"):
        assert settings[secret].get("secret") is True, secret
    assert settings["start_date"]["format"] == "date-time"
    assert {"catalog", "state", "discover", "about", "stream-maps"} <= set(about["capabilities"])


def test_discovery_needs_no_database(tmp_path: Path) -> None:
    """Streams come from the models: a config pointing nowhere still discovers (and connects to nothing)."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"host": "127.0.0.1", "port": 1, "meltano_database_uri": "sqlite:///nowhere.db"})
    )
    proc = _run("--config", str(config), "--discover")
    assert proc.returncode == 0, proc.stderr
    catalog = json.loads(proc.stdout)
    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert set(streams) == {*CONTROL_TABLES, "meltano_runs"}
    for entry in streams.values():
        assert entry["key_properties"] == ["id"]
        assert entry["replication_method"] == "INCREMENTAL"
        assert entry["replication_key"] == "updated_at"
    assert not (tmp_path / "nowhere.db").exists()


def test_cli_sync_with_catalog_selection(
    seeded: dict[str, int], tap_config: dict[str, Any], tmp_path: Path
) -> None:
    """Only the selected stream, and only its selected properties (plus key and bookmark), are written."""
    catalog = TapFlx(config=tap_config).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "executions"
            elif entry["tap_stream_id"] == "executions" and item["breadcrumb"][1] in ("log_tail", "hostname"):
                item["metadata"]["selected"] = False
    (tmp_path / "config.json").write_text(json.dumps(tap_config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    proc = _run("--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json"))
    assert proc.returncode == 0, proc.stderr
    synced = parse_output(proc.stdout)
    assert set(synced.records) == {"executions"}
    assert len(synced.records["executions"]) == seeded["executions"]
    record = synced.records["executions"][0]
    assert "log_tail" not in record and "hostname" not in record
    assert {"id", "updated_at", "status", "pipeline_id"} <= record.keys()
    assert "log_tail" not in synced.schemas["executions"]["schema"]["properties"]


def test_stream_maps(seeded: dict[str, int], sync: Callable[..., Synced]) -> None:
    synced = sync(
        stream_maps={
            "executions": {"status": "status.upper()", "log_tail": None},
            "execution_events": {"__filter__": "type == 'started'"},
            "plugins": None,
        }
    )
    executions = synced.records["executions"]
    assert executions and all(r["status"] == r["status"].upper() for r in executions)
    assert all("log_tail" not in r for r in executions)
    assert {r["type"] for r in synced.records["execution_events"]} == {"started"}
    assert "plugins" not in synced.records and "plugins" not in synced.schemas


@pytest.mark.slow
def test_nothing_configured_uses_the_embedded_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "config.json"
    config.write_text("{}")
    try:
        proc = _run("--config", str(config), env={"FLX_HOME": str(home)}, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Using the embedded PostgreSQL in" in proc.stderr
        synced = parse_output(proc.stdout)
        assert set(synced.schemas) == set(CONTROL_TABLES)
        assert not any(synced.records.values())  # a fresh control schema, created by the migrations
    finally:
        stop_embedded(home / "pgdata")
