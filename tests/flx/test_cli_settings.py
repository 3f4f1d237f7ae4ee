"""What `flx` does with settings it does not know and with a project it cannot find, as a user meets it:
the real `flx` command in a real Meltano project, the real PostgreSQL, the embedded one where it matters."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import URL

from tests.embedded_server import stop_embedded
from tests.flx.meltano_project import BIN, MeltanoProject

pytestmark = pytest.mark.slow


def edit(project: MeltanoProject, **settings: Any) -> None:
    """Set flx plugin settings in meltano.yml as a user would write them (None removes one)."""
    path = project.root / "meltano.yml"
    document = yaml.safe_load(path.read_text())
    flx = next(p for p in document["plugins"]["utilities"] if p["name"] == "flx")
    for key, value in settings.items():
        if value is None:
            flx["config"].pop(key, None)
        else:
            flx["config"][key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def flx(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "flx"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def embedded_env(project: MeltanoProject) -> dict[str, str]:
    """The project's environment with no database configured anywhere: the embedded server's case."""
    env = {key: value for key, value in project.env.items() if not key.startswith("FLX_")}
    env.pop("MELTANO_PROJECT_ROOT", None)
    return env


@pytest.fixture
def embedded(project: MeltanoProject) -> Iterator[Path]:
    pgdata = project.root / ".flx" / "pgdata"
    yield pgdata
    stop_embedded(pgdata)


def test_an_unknown_top_level_setting_is_refused_with_the_nearest_name(project: MeltanoProject) -> None:
    edit(project, hots="127.0.0.1")
    done = project.flx("history")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"flx: {project.root / 'meltano.yml'}: unknown setting 'hots' in plugins.utilities.flx.config: "
        "did you mean 'host'?"
    )
    assert done.stdout == ""


def test_an_unknown_pipeline_setting_is_refused_with_the_nearest_name(project: MeltanoProject) -> None:
    edit(project, pipelines={"ok-job": {"alert_url": ["json://127.0.0.1:1/x"]}})
    done = project.flx("run", "ok-job")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"flx: {project.root / 'meltano.yml'}: unknown setting 'alert_url' in pipelines.ok-job: "
        "did you mean 'alert_urls'?"
    )


def test_a_name_nothing_resembles_lists_the_settings(project: MeltanoProject) -> None:
    edit(project, zzz=1)
    done = project.flx("history")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert line.startswith(
        f"flx: {project.root / 'meltano.yml'}: unknown setting 'zzz' in plugins.utilities.flx.config: "
        "not a flx setting (the settings here are host, port, "
    ), line
    assert "\n" not in line


def test_check_shows_every_unknown_setting_as_a_cross(project: MeltanoProject) -> None:
    edit(project, hots="127.0.0.1", alert_url="json://127.0.0.1:1/x", pipelines={"ok-job": {"retry": 2}})
    done = project.flx("check")
    assert done.returncode == 1, done.stdout + done.stderr
    meltano_yml = project.root / "meltano.yml"
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        f"✗ settings: {meltano_yml}: unknown setting 'hots' in plugins.utilities.flx.config: "
        "did you mean 'host'?",
        f"✗ settings: {meltano_yml}: unknown setting 'alert_url' in plugins.utilities.flx.config: "
        "did you mean 'alert_urls'?",
        f"✗ settings: {meltano_yml}: unknown setting 'retry' in pipelines.ok-job: did you mean 'retries'?",
    ]
    # The rest is still checked, from the settings without the unknown names.
    assert any(line.startswith("✓ postgresql: ") for line in lines), lines
    assert any(line.startswith("✓ job ok-job: ") for line in lines), lines


def test_meltano_extras_are_left_to_meltano(project: MeltanoProject) -> None:
    edit(project, _custom_extra="anything")
    done = project.flx("history", "--json")
    assert done.returncode == 0, done.stderr


def test_connection_settings_without_a_server_are_refused_not_sent_to_the_embedded_one(
    project: MeltanoProject,
) -> None:
    edit(project, user="etl", port=6543)
    done = flx(project.root, embedded_env(project), "history")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        "flx: port, user are set but neither host nor sqlalchemy_url: set host (or sqlalchemy_url) to use "
        "that server, or remove port, user to use the embedded PostgreSQL"
    )
    assert not (project.root / ".flx").exists()


def test_the_embedded_server_lives_in_the_project_root_found_from_a_subfolder_and_is_announced_once(
    project: MeltanoProject, embedded: Path
) -> None:
    sub = project.root / "transform" / "models"
    sub.mkdir(parents=True)
    done = flx(sub, embedded_env(project), "history")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (embedded / "PG_VERSION").exists()
    assert not (sub / ".flx").exists() and not (project.root / "transform" / ".flx").exists()
    announced = [line for line in done.stderr.splitlines() if "Using the embedded PostgreSQL" in line]
    assert len(announced) == 1, done.stderr
    assert announced[0].endswith(f"Using the embedded PostgreSQL in {embedded} (database 'flx')")

    # Anywhere else, with FLX_HOME pointing at it, the same server.
    elsewhere = project.root.parent / "elsewhere"
    elsewhere.mkdir()
    env = {**embedded_env(project), "FLX_HOME": str(embedded.parent)}
    again = flx(elsewhere, env, "history", "--json")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "[]"
    assert not (elsewhere / ".flx").exists()


def test_outside_any_project_flx_refuses_instead_of_making_a_database(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLX_", "MELTANO_"))}
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["history"], ["show", "x#1"], ["db", "current"], ["check"]):
        done = flx(empty, env, *command)
        expected = (
            f"no meltano.yml in {empty} or any folder above it, and no database configured: run this "
            "inside a Meltano project, configure a database (host or sqlalchemy_url, FLX_DATABASE_URL for "
            "flx), or set FLX_HOME to keep an embedded PostgreSQL there"
        )
        if command == ["check"]:
            assert done.returncode == 1, (done.stdout, done.stderr)
            assert f"✗ postgresql: {expected}" in done.stdout.splitlines()
            assert f"✗ meltano project: no meltano.yml in {empty} or above; run flx inside a project" in (
                done.stdout.splitlines()
            )
        else:
            assert done.returncode == 2, (command, done.stdout, done.stderr)
            assert done.stderr.strip() == f"flx: {expected}", command
    run = flx(empty, env, "run", "some-job")
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"flx run: no meltano.yml in {empty} or any folder above it: run it inside a Meltano project "
        "(or set MELTANO_PROJECT_ROOT)"
    )
    assert list(empty.iterdir()) == []


def test_outside_a_project_a_configured_database_is_read_but_nothing_is_run(
    tmp_path: Path, database_url: URL
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLX_", "MELTANO_"))}
    env["FLX_DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    env["FLX_CONTROL_SCHEMA"] = f"ctl_{uuid.uuid4().hex[:8]}"
    empty = tmp_path / "empty"
    empty.mkdir()
    listed = flx(empty, env, "history", "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"
    run = flx(empty, env, "run", "some-job")
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"flx run: no meltano.yml in {empty} or any folder above it: run it inside a Meltano project "
        "(or set MELTANO_PROJECT_ROOT)"
    )
    assert list(empty.iterdir()) == []
