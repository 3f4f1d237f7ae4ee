"""The embedded PostgreSQL as other tools see it: `flx db url` gives a loopback URL psql accepts, the port
stays across restarts, and `flx db stop` stops it (not under a connected session unless forced)."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from flx_core.embedded import embedded_bin_dir
from flx_core.revision import HEAD
from tests.embedded_server import stop_embedded
from tests.flx.meltano_project import BIN, MeltanoProject, make_project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path, database_url: URL) -> Iterator[MeltanoProject]:
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    made = make_project(tmp_path / "project", database_url.render_as_string(hide_password=False), schema)
    yield made
    pgdata = made.root / ".flx" / "pgdata"
    if (pgdata / "PG_VERSION").exists():
        stop_embedded(pgdata)


def embedded(project: MeltanoProject, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in project.env.items() if not key.startswith("FLX_")}
    return subprocess.run(
        [str(BIN / "flx"), *args], cwd=project.root, env=env, capture_output=True, text=True, timeout=180
    )


def psql() -> str:
    return shutil.which("psql") or str(Path(embedded_bin_dir()) / "psql")


def test_db_url_is_a_loopback_url_psql_accepts_and_stop_stops_the_server(project: MeltanoProject) -> None:
    pgdata = project.root / ".flx" / "pgdata"
    shown = embedded(project, "db", "url")
    assert shown.returncode == 0, shown.stderr
    url = shown.stdout.strip()
    match = re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:(\d+)/flx", url)
    assert match, url
    port = int(match[1])
    assert (project.root / ".flx" / "port").read_text().strip() == str(port)
    asked = subprocess.run([psql(), url, "-Atc", "SELECT current_database()"], capture_output=True, text=True)
    assert asked.stdout.strip() == "flx", asked.stderr

    # A session is open (a BI tool, a psql): stopping needs --force.
    holder = subprocess.Popen([psql(), url, "-c", "SELECT pg_sleep(30)"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            refused = embedded(project, "db", "stop")
            if refused.returncode != 0:
                break
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.strip() == (
            f"flx db stop: 1 session(s) are connected to the embedded PostgreSQL in {pgdata} "
            "(a run, psql, a BI tool?): end them, or stop it anyway with --force"
        )
        stopped = embedded(project, "db", "stop", "--force")
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith(f"stopped the embedded PostgreSQL in {pgdata} (pid ")
    finally:
        holder.wait(timeout=60)
    assert not (pgdata / "postmaster.pid").exists()
    again = embedded(project, "db", "stop")
    assert again.returncode == 0
    assert again.stdout.strip() == f"the embedded PostgreSQL in {pgdata} is not running"

    # The next command starts it again, on the same port.
    assert embedded(project, "db", "url").stdout.strip() == url


def test_a_configured_database_has_nothing_to_stop_and_its_url_hides_the_password(
    project: MeltanoProject, database_url: URL
) -> None:
    project.env["FLX_DATABASE_URL"] = database_url.set(password="s3cret").render_as_string(
        hide_password=False
    )
    stop = project.flx("db", "stop")
    assert stop.returncode == 2
    where = f"postgresql://{database_url.username}@{database_url.host}:{database_url.port}/{database_url.database}"
    assert stop.stderr.strip() == (
        f"flx db stop: flx uses the PostgreSQL at {where}, not an embedded one: there is nothing to stop"
    )
    shown = project.flx("db", "url")
    assert shown.returncode == 0
    assert "s3cret" not in shown.stdout and shown.stdout.startswith(f"postgresql://{database_url.username}@")


def test_db_upgrade_and_downgrade_move_the_control_schema_and_say_where_it_is(
    project: MeltanoProject,
) -> None:
    """On the project's own control schema (its `FLX_CONTROL_SCHEMA`), through the configured database."""
    first = project.flx("db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert f"control schema {project.control} at revision {HEAD}" in first.stdout
    down = project.flx("db", "downgrade", "--revision", "0003")
    assert down.returncode == 0, down.stderr
    assert f"control schema {project.control} at revision 0003" in down.stdout
    current = project.flx("db", "current").stdout
    assert f"control schema {project.control}: 0003 (head {HEAD}, behind: run `flx db upgrade`)" in current
    gone = project.flx("db", "downgrade")
    assert gone.returncode == 0, gone.stderr
    assert f"control schema {project.control} at revision None" in gone.stdout
    again = project.flx("db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert f"at revision {HEAD}" in again.stdout
