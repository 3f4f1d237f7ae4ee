"""Reading what ran, as a user does in an 80-column terminal: `flx history`, `flx show`, a pipeline name
mistyped, `--version` and `-h`; one "Using the embedded PostgreSQL" line per run; no ResourceWarning."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from importlib.metadata import version

import pytest
import yaml

from tests.flx.meltano_project import BIN, MeltanoProject

pytestmark = pytest.mark.slow


def test_history_and_show_fit_80_columns_one_line_per_row(project: MeltanoProject) -> None:
    assert project.flx("run", "ok-job").returncode == 0
    assert project.flx("run", "fail-job").returncode == 1
    project.env["COLUMNS"] = "80"
    listed = project.flx("history")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines), listed.stdout
    assert lines[1].split() == ["execution", "status", "try", "exit", "started", "took", "error"]
    failed, succeeded = lines[3], lines[4]
    assert failed.startswith("fail-job #1") and " failed " in failed
    assert failed.rstrip().endswith("…"), "the error is cut with an ellipsis, not wrapped"
    assert " tap-fail source re" in failed, "the log line's timestamp is left out"
    assert succeeded.startswith("ok-job #1") and " succeeded " in succeeded
    assert len(lines) == 5

    shown = project.flx("show", "ok-job#1")
    assert shown.returncode == 0, shown.stderr
    assert all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout
    (running,) = [line for line in shown.stdout.splitlines() if " running " in line]
    assert running.rstrip().endswith("…") and "run_id=" in running

    project.env["COLUMNS"] = "200"
    wide = project.flx("history").stdout.splitlines()
    assert wide[1].split() == ["execution", "status", "try", "exit", "started", "took", "trigger", "error"]
    assert "source refused the connection: ORA-12541 no listener" in wide[3]


def test_a_mistyped_pipeline_gets_a_hint(project: MeltanoProject) -> None:
    assert project.flx("run", "ok-job").returncode == 0
    typo = project.flx("history", "--pipeline", "ok-jb")
    assert typo.returncode == 2
    assert typo.stderr.strip() == (
        "flx history: no pipeline named 'ok-jb': did you mean 'ok-job'? the pipelines with history are ok-job"
    )
    nope = project.flx("history", "--pipeline", "nope")
    assert nope.returncode == 2
    assert (
        nope.stderr.strip() == "flx history: no pipeline named 'nope': the pipelines with history are ok-job"
    )
    never = project.flx("history", "--pipeline", "slow-job")
    assert never.returncode == 0
    assert never.stderr.strip() == "slow-job: no executions yet"
    assert never.stdout == ""


def test_version_and_short_help(project: MeltanoProject) -> None:
    shown = project.flx("--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"flx {version('flx')}"
    for args in (["-h"], ["run", "-h"], ["history", "-h"], ["db", "-h"], ["serve", "-h"]):
        helped = project.flx(*args)
        assert helped.returncode == 0, (args, helped.stderr)
        assert helped.stdout.startswith("Usage: flx"), args
    assert "--full-refresh" in project.flx("run", "-h").stdout
    assert "--grace" in project.flx("serve", "-h").stdout


def test_reading_commands_leave_no_resource_warning(project: MeltanoProject) -> None:
    assert project.flx("run", "ok-job").returncode == 0
    project.env["PYTHONWARNINGS"] = "always::ResourceWarning"
    for args in (["history"], ["show", "ok-job#1"], ["check"], ["history", "--json"]):
        done = project.flx(*args)
        assert "ResourceWarning" not in done.stdout + done.stderr, (args, done.stderr)


def test_the_embedded_server_is_announced_once_per_run(project: MeltanoProject) -> None:
    path = project.root / "meltano.yml"
    document = yaml.safe_load(path.read_text())
    target = document["plugins"]["loaders"][0]["config"]
    target.pop("sqlalchemy_url")
    target.pop("control_schema")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    env = {key: value for key, value in project.env.items() if not key.startswith("FLX_")}
    pgdata = project.root / ".flx" / "pgdata"
    try:
        done = subprocess.run(
            [str(BIN / "flx"), "run", "ok-job"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        output = done.stdout + done.stderr
        assert output.count("Using the embedded PostgreSQL") == 1, output
        assert f"Using the embedded PostgreSQL in {pgdata} (database 'flx')" in output
        psql = subprocess.run(
            [str(BIN / "flx"), "db", "psql", "-At", "-c", f'SELECT count(*) FROM "{project.schema}".items'],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert psql.stdout.strip() == "5", psql.stdout + psql.stderr
    finally:  # flx started it: flx stops it (pgserver's get_server would start it again to clean up)
        subprocess.run(
            [str(BIN / "flx"), "db", "stop", "--force"], cwd=project.root, env=env, timeout=120, check=False
        )


def test_serve_says_when_each_pipeline_runs_next(project: MeltanoProject) -> None:
    project.configure(pipelines={"ok-job": {"schedule": "0 3 * * *", "timezone": "Europe/Lisbon"}})
    serving = project.flx_background("serve", "--grace", "5")
    try:
        assert serving.stdout is not None
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not line.startswith("flx serve: scheduling"):
            line = serving.stdout.readline()
        assert re.fullmatch(
            r"flx serve: scheduling ok-job \(next \d{4}-\d\d-\d\d 03:00 (WET|WEST)\)\n", line
        ), line
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=60)
