"""Mistakes and unreachable dependencies, as a user meets them: one line (what, where, what to do) and a
documented exit code from the real `flx` command; FLX_DEBUG=1 adds the traceback. `flx check` reports each
thing it examines on a ✓/✗ line and never crashes."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import URL

from tests.flx.meltano_project import MeltanoProject
from tests.flx.webhook import closed_port

pytestmark = pytest.mark.slow


def only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_an_unreachable_port_is_one_line_for_history_and_run_and_a_cross_in_check(
    project: MeltanoProject,
) -> None:
    port = closed_port()
    where = f"postgresql://postgres@127.0.0.1:{port}/test"
    project.env["FLX_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{port}/test"
    listed = project.flx("history")
    assert listed.returncode == 69, listed.stderr
    assert only_line(listed.stderr) == (
        f"flx: cannot use PostgreSQL at {where} (FLX_DATABASE_URL): Connection refused; "
        "start the server, or fix the host and port settings"
    )

    run = project.flx("run", "ok-job")
    assert run.returncode == 69
    assert run.stderr.strip().splitlines()[-1] == only_line(listed.stderr)
    assert "Traceback" not in run.stderr

    checked = project.flx("check")
    assert checked.returncode == 1
    assert "Traceback" not in checked.stdout + checked.stderr
    assert (
        f"✗ postgresql: {where}: Connection refused; start the server, or fix the host and port settings"
        in checked.stdout.splitlines()
    )
    assert any(line.startswith("✓ meltano project: ") for line in checked.stdout.splitlines())


def test_a_missing_database_is_one_line_and_a_cross(project: MeltanoProject, database_url: URL) -> None:
    name = f"flx_nosuch_{uuid.uuid4().hex[:8]}"
    url = database_url.set(database=name)
    project.env["FLX_DATABASE_URL"] = url.render_as_string(hide_password=False)
    where = f"postgresql://{url.username}@{url.host}:{url.port}/{name}"
    listed = project.flx("history")
    assert listed.returncode == 69
    assert only_line(listed.stderr) == (
        f'flx: cannot use PostgreSQL at {where} (FLX_DATABASE_URL): database "{name}" does not exist; '
        "create it, or fix the `database` setting"
    )
    checked = project.flx("check")
    assert checked.returncode == 1
    assert (
        f'✗ postgresql: {where}: database "{name}" does not exist; create it, or fix the `database` setting'
        in checked.stdout.splitlines()
    )


def test_flx_debug_shows_the_traceback_above_the_line(project: MeltanoProject) -> None:
    project.env["FLX_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    project.env["FLX_DEBUG"] = "1"
    done = project.flx("history")
    assert done.returncode == 69
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("flx: cannot use PostgreSQL at ")


def test_a_bad_cron_and_a_bad_time_zone_are_one_line_each(project: MeltanoProject) -> None:
    meltano_yml = project.root / "meltano.yml"
    project.configure(pipelines={"ok-job": {"schedule": "0 25 * * *"}})
    served = project.flx("serve")
    assert served.returncode == 2, served.stdout + served.stderr
    assert only_line(served.stderr) == (
        f"flx serve: pipeline 'ok-job' in {meltano_yml}: invalid cron expression '0 25 * * *': "
        "bad hour field '25'"
    )

    project.configure(pipelines={"ok-job": {"schedule": "@daily", "timezone": "Europe/Lisbn"}})
    listed = project.flx("schedule", "list")
    assert listed.returncode == 2
    assert only_line(listed.stderr) == (
        f"flx schedule list: pipeline 'ok-job' in {meltano_yml}: unknown time zone 'Europe/Lisbn' "
        "(expected an IANA name such as 'Europe/Lisbon')"
    )
    checked = project.flx("check")
    assert checked.returncode == 1
    assert (
        "✗ schedule ok-job: unknown time zone 'Europe/Lisbn' (expected an IANA name such as 'Europe/Lisbon')"
        in checked.stdout.splitlines()
    )


def test_usage_mistakes_are_one_line_with_where_to_look(project: MeltanoProject) -> None:
    bad_level = project.flx("--log-level", "nonsense", "history")
    assert bad_level.returncode == 2
    assert only_line(bad_level.stderr) == (
        "flx: Invalid value for '--log-level': 'nonsense' is not one of 'debug', 'info', 'warning', 'error'. "
        "(see `flx -h`)"
    )
    bad_option = project.flx("run", "--nosuch", "ok-job")
    assert bad_option.returncode == 2
    assert only_line(bad_option.stderr) == (
        "flx run: No such option '--nosuch'. (see `flx run -h`; meltano's own options go after `--`: "
        "flx run JOB -- --option)"
    )
    unknown = project.flx("show", "ok-job#7")
    assert unknown.returncode == 2
    # (A fresh control schema is created first, and says so.)
    assert unknown.stderr.strip().splitlines()[-1] == (
        "flx show: no execution matches 'ok-job#7' (give an id, pipeline#number or a pipeline's name)"
    )


def test_check_examines_schedules_validations_jobs_and_their_plugins(project: MeltanoProject) -> None:
    document = (project.root / "meltano.yml").read_text()
    document = document.replace("tasks:\n  - tap-slow target-flx", "tasks:\n  - tap-slwo target-flx")
    (project.root / "meltano.yml").write_text(document)
    project.configure(
        pipelines={
            "ok-job": {
                "schedule": "*/5 * * * *",
                "timezone": "Europe/Lisbon",
                "validations": [
                    {"name": "rows", "kind": "min_rows", "table": f"{project.schema}.items", "min_rows": 1},
                    {
                        "name": "counts",
                        "kind": "row_count",
                        "table": f"{project.schema}.items",
                        "source": "oracle:erp",
                        "source_table": "ERP.ITEMS",
                    },
                ],
            }
        }
    )
    checked = project.flx("check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert "Traceback" not in checked.stdout + checked.stderr
    assert any(line.startswith("✓ schedule ok-job: '*/5 * * * *' in Europe/Lisbon, next ") for line in lines)
    assert "✗ validations ok-job: check 'counts': no Oracle source 'erp' (none is configured)" in lines
    assert "✗ job slow-job: tap-slwo is not a plugin in meltano.yml (did you mean 'tap-slow'?)" in lines, (
        lines
    )
    assert "✓ job ok-job: tap-ok target-flx (plugins installed)" in lines

    project.configure(
        pipelines={
            "ok-job": {
                "validations": [
                    {"name": "rows", "kind": "min_rows", "table": f"{project.schema}.items", "min_rows": 1},
                ]
            }
        }
    )
    before = [line for line in project.flx("check").stdout.splitlines() if line.startswith("✓ validations")]
    assert before == [
        f"✓ validations ok-job: 1 check(s) on {project.schema}.items; {project.schema}.items not loaded yet "
        "(the first run creates it)"
    ]
    assert project.flx("run", "ok-job").returncode == 0
    after = [line for line in project.flx("check").stdout.splitlines() if "validations" in line]
    assert after == [f"✓ validations ok-job: 1 check(s) on {project.schema}.items"]

    project.configure(
        pipelines={
            "ok-job": {
                "validations": [
                    {"name": "rows", "kind": "min_rows", "table": f"{project.schema}.itemz", "min_rows": 1},
                ]
            }
        }
    )
    typo = [line for line in project.flx("check").stdout.splitlines() if "validations" in line]
    assert typo == [
        f"✗ validations ok-job: {project.schema}.itemz does not exist, though ok-job has succeeded before: "
        "fix the check's `table`"
    ]
