"""Alert URLs as users hand them over: a JSON list from `meltano invoke flx` or a shell, comma-separated
URLs, and a `$VARIABLE` that was never set. The real `flx` and `meltano` commands, a real webhook."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.flx.meltano_project import BIN, MeltanoProject
from tests.flx.webhook import Webhook, webhook_server

pytestmark = pytest.mark.slow


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


def channel_line(output: str) -> str:
    (line,) = [
        line for line in output.splitlines() if line.startswith(("✓ alert channels", "✗ alert channels"))
    ]
    return line


def test_a_json_list_in_the_environment_is_read_as_a_list(project: MeltanoProject, hook: Webhook) -> None:
    project.env["FLX_ALERT_URLS"] = f'["{hook.url}/a", "{hook.url}/b"]'
    done = project.flx("check", "--send-test")
    line = channel_line(done.stdout)
    assert line.startswith(f"✓ alert channels: json://127.0.0.1:{hook.port}/hook/a?"), line
    assert f", json://127.0.0.1:{hook.port}/hook/b?" in line
    assert line.endswith(" (test message sent)")
    assert line.count("json://") == 2
    assert sorted(hook.paths) == ["/hook/a", "/hook/b"]


def test_comma_separated_urls_still_work(project: MeltanoProject, hook: Webhook) -> None:
    project.env["FLX_ALERT_URLS"] = f"{hook.url}/a, {hook.url}/b"
    line = channel_line(project.flx("check").stdout)
    assert line.startswith("✓ alert channels: ") and line.count("json://") == 2, line


def test_meltano_invoke_exports_the_list_as_json_and_flx_reads_two_channels_not_three(
    project: MeltanoProject, hook: Webhook
) -> None:
    project.configure(alert_urls=[f"{hook.url}/a", f"{hook.url}/b?x=1,2"])
    done = subprocess.run(
        [str(BIN / "meltano"), "invoke", "flx", "check"],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    line = channel_line(done.stdout)
    assert line.startswith("✓ alert channels: "), done.stdout + done.stderr
    assert line.count("json://") == 2, line


def test_a_malformed_json_list_is_one_line(project: MeltanoProject) -> None:
    project.env["FLX_ALERT_URLS"] = '["json://127.0.0.1:1/a",'
    done = project.flx("run", "ok-job")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "flx: FLX_ALERT_URLS looks like a JSON list but is not valid JSON: Expecting value"
    )


def test_an_unset_variable_in_alert_urls_is_named(project: MeltanoProject) -> None:
    project.configure(alert_urls=["$SLACK_ALERT_URL"])
    project.env.pop("SLACK_ALERT_URL", None)
    done = project.flx("run", "ok-job")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"flx: alert_urls in {project.root / 'meltano.yml'}: $SLACK_ALERT_URL is not set: "
        "export SLACK_ALERT_URL, or remove it from alert_urls"
    )
    assert "Using PostgreSQL" in done.stderr  # the only other line: where the history would have gone
    assert len(done.stderr.strip().splitlines()) == 2

    checked = project.flx("check")
    assert checked.returncode == 1
    assert channel_line(checked.stdout) == (
        "✗ alert channels: alert_urls #1: $SLACK_ALERT_URL is not set (export it, or remove the entry)"
    )

    # The history is still readable without the alerting secret.
    assert project.flx("history", "--json").returncode == 0


def test_a_url_apprise_does_not_know_says_where(project: MeltanoProject) -> None:
    project.configure(alert_urls=["slakc://T0/B0/abc"])
    done = project.flx("run", "ok-job")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"flx: alert_urls in {project.root / 'meltano.yml'} or FLX_ALERT_URLS: "
        "alert URL #1 (slakc://…) is not a URL apprise supports"
    )
    assert channel_line(project.flx("check").stdout) == (
        "✗ alert channels: alert_urls #1 (slakc://…) is not a URL apprise supports"
    )


def test_a_pipelines_own_alert_urls_hear_its_alerts_beside_the_common_ones(
    project: MeltanoProject, hook: Webhook
) -> None:
    project.configure(
        alert_urls=[f"{hook.url}/common"],
        pipelines={"fail-job": {"alert_urls": [f"{hook.url}/team"]}},
    )
    assert project.flx("run", "fail-job").returncode == 1
    assert project.flx("run", "hang-job", "--timeout", "2").returncode == 124
    by_path = {
        path: [str(body.get("title")) for p, body in zip(hook.paths, hook.received, strict=True) if p == path]
        for path in set(hook.paths)
    }
    assert by_path["/hook/team"] == ["[flx] fail-job failed (exit 1) after 1 attempt(s)"]
    assert by_path["/hook/common"] == [
        "[flx] fail-job failed (exit 1) after 1 attempt(s)",
        "[flx] hang-job timed out after 1 attempt(s)",
    ]
