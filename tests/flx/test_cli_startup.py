"""`flx history`, `flx show` and `flx check` start quickly because they import only what they need: measured
on the real command with Python's own import timing (a wall-clock bound would flake on a busy machine)."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
from sqlalchemy.engine import URL

from tests.flx.meltano_project import BIN, MeltanoProject, make_project

pytestmark = pytest.mark.slow

# What running, scheduling, migrating, alerting and Oracle need, and reading history does not.
HEAVY = (
    "alembic",
    "apprise",
    "procrastinate",
    "oracledb",
    "croniter",
    "punq",
    "sqlalchemy.orm",
    "flx_core.models",
    "flx.execution.runner",
    "flx.container",
    "singer_sdk",
    "meltano",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, database_url: URL) -> MeltanoProject:
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    made = make_project(
        tmp_path_factory.mktemp("startup") / "project",
        database_url.render_as_string(hide_password=False),
        schema,
    )
    done = made.flx("run", "ok-job")  # a schema at head and one execution to show
    assert done.returncode == 0, done.stdout + done.stderr
    return made


def imported(project: MeltanoProject, *args: str) -> set[str]:
    """The modules `flx ARGS` imports, from Python's -X importtime report."""
    done = subprocess.run(
        [str(BIN / "flx"), *args],
        cwd=project.root,
        env={**project.env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr, re.MULTILINE))
    assert "flx.cli.main" in names
    return names


@pytest.mark.parametrize(
    "args", [["history"], ["history", "--json"], ["show", "ok-job#1"], ["check"], ["logs", "ok-job"]]
)
def test_reading_commands_import_only_what_they_need(project: MeltanoProject, args: list[str]) -> None:
    names = imported(project, *args)
    loaded = sorted(name for name in names if name.startswith(HEAVY))
    assert loaded == [], f"flx {' '.join(args)} imported {loaded}"
    if args == ["history", "--json"]:
        assert not any(name.startswith("rich") for name in names), "JSON output needs no rich"


def test_version_imports_almost_nothing(project: MeltanoProject) -> None:
    names = imported(project, "--version")
    assert not any(name.startswith(("sqlalchemy", "psycopg", "pydantic", "rich", "yaml")) for name in names)


def test_the_control_schema_check_is_one_query_not_alembic(project: MeltanoProject) -> None:
    names = imported(project, "history")
    assert "flx_core.revision" in names and "alembic" not in names


def test_with_host_settings_reading_needs_no_sqlalchemy(project: MeltanoProject, database_url: URL) -> None:
    """Settings by `host`, `user`, `database` are read without SQLAlchemy (a URL needs its parser)."""
    env = {key: value for key, value in project.env.items() if key != "FLX_DATABASE_URL"}
    env |= {
        "FLX_HOST": str(database_url.host),
        "FLX_PORT": str(database_url.port or 5432),
        "FLX_USER": str(database_url.username),
        "FLX_DATABASE": str(database_url.database),
    }
    if database_url.password:
        env["FLX_PASSWORD"] = str(database_url.password)
    for args in (["history"], ["show", "ok-job#1"], ["check"]):
        done = subprocess.run(
            [str(BIN / "flx"), *args],
            cwd=project.root,
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "ok-job" in done.stdout
        names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr, re.MULTILINE))
        assert not any(name.startswith("sqlalchemy") for name in names), args
