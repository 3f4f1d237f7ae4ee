"""The punq container wired from real settings, a child container override, and `flx check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import punq
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from flx.alerts.manager import AlertManager
from flx.config import load_settings
from flx.container import OracleSources, build_container
from flx.execution.runner import Runner
from flx.oracle.manager import OracleConnectionManager
from flx.validation.runner import ValidationRunner
from tests.flx.webhook import closed_port, webhook_server

BIN = Path(sys.executable).parent


def write_project(root: Path, oracle_port: int) -> Path:
    document = {
        "default_environment": "dev",
        "environments": [{"name": "dev"}],
        "plugins": {
            "utilities": [
                {
                    "name": "flx",
                    "config": {
                        "oracle_sources": {
                            "erp": {
                                "host": "127.0.0.1",
                                "port": oracle_port,
                                "service_name": "ERP",
                                "user": "etl",
                                "password": "$ERP_PASSWORD",
                                "tcp_connect_timeout": 2,
                            }
                        }
                    },
                }
            ]
        },
        "jobs": [{"name": "nightly", "tasks": ["tap-a target-b"]}],
    }
    (root / "meltano.yml").write_text(yaml.safe_dump(document))
    return root


def test_container_wires_real_pieces_and_children_override(tmp_path: Path, database_url: URL) -> None:
    url = database_url.render_as_string(hide_password=False)
    root = write_project(tmp_path, closed_port())
    settings = load_settings(root, {"FLX_DATABASE_URL": url, "ERP_PASSWORD": "s3cret"})
    with build_container(settings) as container:
        runner = container.resolve(Runner)
        assert runner is container.resolve(Runner), "the runner is a singleton"
        engine = container.resolve(Engine)
        assert runner.engine is engine and runner.validations is container.resolve(ValidationRunner)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('flx.executions')")).scalar() is not None
        sources = container.resolve(OracleSources)
        assert list(sources) == ["erp"]
        assert isinstance(sources["erp"], OracleConnectionManager)

        with webhook_server() as hook:
            child = container.child()
            child.register(AlertManager, instance=AlertManager(engine, [hook.url]))
            child.register(Runner, scope=punq.Scope.singleton)
            overridden = child.resolve(Runner)
            assert overridden is not runner
            assert overridden.alerts.channels == AlertManager(engine, [hook.url]).channels
            assert runner.alerts.channels == []
            assert child.resolve(Engine) is engine, "what the child does not override it inherits"
    # close() released the pool: a disposed engine has no checked-in connections left.
    assert engine.pool.checkedin() == 0


def test_flx_check_reports_each_dependency_on_one_line(tmp_path: Path, database_url: URL) -> None:
    root = write_project(tmp_path, closed_port())
    env = {
        **os.environ,
        "FLX_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "ERP_PASSWORD": "s3cret",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("MELTANO_PROJECT_ROOT", None)
    done = subprocess.run(
        [str(BIN / "flx"), "check"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the Oracle source is down
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert lines["✓ postgresql"].endswith("flx up to date")
    assert "✗ oracle erp" in lines and "connectivity" in lines["✗ oracle erp"]
    assert "✓ meltano project" in lines and "1 pipeline(s)" in lines["✓ meltano project"]
    assert "✓ alert channels" in lines
    assert "s3cret" not in done.stdout + done.stderr
