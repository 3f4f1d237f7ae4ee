"""`flx ui` end to end: real `flx run`s fill a control schema, the real server shows it to a real browser.

Debian's chromium (headless, driven by Playwright at /usr/bin/chromium) loads every page: no console
errors, the runs are listed, filters narrow them, a run shows its events, streams, validations and log, the
charts hold the runs' points, secrets in a run's output are masked, actions are refused without the token
and work with it (run now, cancel). `/metrics` is parsed with prometheus-client's own parser and checked
against the database. `FLX_UI_SCREENSHOTS=DIR` keeps a screenshot of each page there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx_core.models import Execution, Pipeline, StreamLoad
from tests.flx.meltano_project import MeltanoProject, executions, make_project
from tests.flx.webhook import Webhook, webhook_server
from tests.ui.ui_server import UiServer, running_ui, ui_command

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "ui-test-token-" + uuid.uuid4().hex[:12]
LEAKED = ("TopSecret-pw-42", "Hunter2-pw-77", "Alert-pw-99")
LEAKY_TAP = """\
#!{python}
import json, sys
print(json.dumps({{"type": "SCHEMA", "stream": "leads", "key_properties": ["id"],
    "schema": {{"type": "object", "properties": {{"id": {{"type": "integer"}}}}}}}}))
print(json.dumps({{"type": "RECORD", "stream": "leads", "record": {{"id": 1}}}}))
sys.stdout.flush()
print("connecting to postgresql://loader:TopSecret-pw-42@db.example.com:5432/app", file=sys.stderr)
print("login refused (password=Hunter2-pw-77)", file=sys.stderr)
sys.exit(3)
"""


def _chromium_missing() -> bool:
    return not Path(CHROMIUM).exists() or shutil.which("chromium") is None


if _chromium_missing():
    pytest.skip(
        "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True
    )
playwright_api = pytest.importorskip("playwright.sync_api")


@dataclass
class History:
    project: MeltanoProject
    engine: Engine
    ok: list[Execution]
    leaky: Execution
    hook: Webhook


def _add_leaky_job(project: MeltanoProject, hook: Webhook) -> None:
    script = project.root / "tap_leaky.py"
    script.write_text(LEAKY_TAP.format(python=sys.executable))
    script.chmod(0o755)
    path = project.root / "meltano.yml"
    document = yaml.safe_load(path.read_text())
    document["plugins"]["extractors"].append(
        {"name": "tap-leaky", "namespace": "tap_leaky", "executable": str(script)}
    )
    document["jobs"].append({"name": "leaky-job", "tasks": ["tap-leaky target-flx"]})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    table = f"{project.schema}.items"
    project.configure(
        pipelines={
            "ok-job": {
                "description": "items from the ok tap",
                "schedule": "0 * * * *",
                "timezone": "Europe/Paris",
                "validations": [
                    {"name": "enough rows", "kind": "min_rows", "table": table, "min_rows": 5},
                    {"name": "ids unique", "kind": "unique", "table": table, "columns": ["id"]},
                ],
            },
            "leaky-job": {
                "alert_urls": [f"json://alertuser:Alert-pw-99@127.0.0.1:{hook.port}/hook"],
            },
        }
    )


@pytest.fixture(scope="module")
def hook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, database_url: URL, hook: Webhook) -> Iterator[History]:
    """Two successful runs of ok-job (with validations) and one failed run of leaky-job (with an alert)."""
    url = database_url.render_as_string(hide_password=False)
    project = make_project(tmp_path_factory.mktemp("ui") / "project", url, f"ui_{uuid.uuid4().hex[:8]}")
    _add_leaky_job(project, hook)
    engine = project.engine(database_url)
    for job, code in (("ok-job", 0), ("leaky-job", 1), ("ok-job", 0)):
        done = project.flx("run", job)
        assert done.returncode == code, done.stdout + done.stderr
    yield History(project, engine, executions(engine, "ok-job"), executions(engine, "leaky-job")[0], hook)
    engine.dispose()


@pytest.fixture(scope="module")
def ui(history: History) -> Iterator[UiServer]:
    env = {**history.project.env, "FLX_UI_TOKEN": TOKEN}
    with running_ui(history.project.root, env, "--actions") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Tab:
    """A browser page that records console errors and failed requests."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))

    def visit(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, ui: UiServer) -> Iterator[Tab]:
    opened = Tab(browser, ui.url)
    yield opened
    opened.close()


def _screenshot(tab: Tab, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FLX_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    tab.page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000
    return path


def test_binding_beyond_loopback_without_a_token_is_refused(history: History) -> None:
    env = {k: v for k, v in history.project.env.items() if k != "FLX_UI_TOKEN"}
    for args in (["--host", "0.0.0.0"], ["--host", "0.0.0.0", "--actions"]):
        refused = subprocess.run(
            [*ui_command(), "--port", "0", *args],
            cwd=history.project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "refusing to listen on 0.0.0.0 without a token" in refused.stderr


def test_every_page_loads_without_console_errors(
    tab: Tab, history: History, database_url: URL, tmp_path: Path
) -> None:
    pages = {
        "pipelines": "/",
        "runs": "/runs",
        "run": f"/runs/{history.ok[-1].id}",
        "run-failed": f"/runs/{history.leaky.id}",
        "charts": "/charts?pipeline=ok-job",
        "alerts": "/alerts",
    }
    for name, path in pages.items():
        response = tab.visit(path)
        assert response.status == 200, path
        assert tab.page.title().endswith("· flx")
        where = tab.page.locator("header .where").inner_text()
        assert f"/{database_url.database} schema {history.project.control}" in where  # no password there
        _screenshot(tab, name, tmp_path)
    assert tab.problems == []


def test_pipelines_page_shows_schedule_last_and_next_run(tab: Tab, history: History) -> None:
    tab.visit("/")
    row = tab.page.locator("tr", has=tab.page.locator("a.name", has_text="ok-job"))
    text = row.inner_text()
    assert "0 * * * *" in text and "Europe/Paris" in text
    assert "succeeded" in text and f"#{history.ok[-1].execution_number}" in text
    assert "100 %" in text  # both finished runs in the last 30 days succeeded
    assert "CET" in text or "CEST" in text  # the next run, in the pipeline's own zone
    leaky = tab.page.locator("tr", has=tab.page.locator("a.name", has_text="leaky-job")).inner_text()
    assert "failed" in leaky and "0 %" in leaky
    bars = tab.page.evaluate(
        "Array.from(document.querySelectorAll('canvas.spark'))"
        ".map(c => Chart.getChart(c).data.datasets[0].data.length)"
    )
    assert sorted(bars) == [1, 2]
    assert tab.problems == []


def test_run_list_shows_the_runs_and_filters_narrow_it(tab: Tab, history: History) -> None:
    tab.visit("/runs")
    listed = tab.page.locator("#runs tbody tr a.name").all_inner_texts()
    assert listed == ["ok-job #2", "leaky-job #1", "ok-job #1"]  # newest first
    assert tab.page.locator("#total").inner_text() == "3"

    tab.page.select_option("select[name=status]", "failures")
    tab.page.click("#filters button[type=submit]:has-text('Filter')")
    tab.page.wait_for_load_state("networkidle")
    assert "status=failures" in tab.page.url
    assert tab.page.locator("#runs tbody tr a.name").all_inner_texts() == ["leaky-job #1"]

    tab.page.select_option("select[name=status]", "")
    tab.page.select_option("select[name=pipeline]", "ok-job")
    tab.page.click("#filters button[type=submit]:has-text('Filter')")
    tab.page.wait_for_load_state("networkidle")
    assert tab.page.locator("#runs tbody tr a.name").all_inner_texts() == ["ok-job #2", "ok-job #1"]

    tomorrow = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 86400))
    tab.visit("/runs?" + urlencode({"from": tomorrow}))
    assert tab.page.locator("#total").inner_text() == "0"
    tab.visit("/runs?last=24h&status=succeeded")
    assert tab.page.locator("#total").inner_text() == "2"
    assert tab.problems == []


def test_run_page_shows_timeline_streams_validations_and_log(tab: Tab, history: History) -> None:
    run = history.ok[0]  # the first load inserts the 5 rows; the second finds them unchanged
    with Session(history.engine) as session:
        load = session.scalars(select(StreamLoad).where(StreamLoad.execution_id == run.id)).one()
    tab.visit("/runs")
    tab.page.click("text=ok-job #1")
    tab.page.wait_for_load_state("networkidle")
    assert tab.page.url.endswith(f"/runs/{run.id}")
    events = tab.page.locator("#timeline tbody tr").all_inner_texts()
    assert [e.split("\t")[3].strip() for e in events] == ["pending", "running", "succeeded"]
    streams = tab.page.locator("#streams tbody tr").first.inner_text().split("\t")
    assert streams[0] == "items"
    assert streams[1] == f"{history.project.schema}.items"
    written = [int(v.replace("\u202f", "")) for v in streams[4:8]]
    assert written == [load.rows_inserted, load.rows_updated, load.rows_deleted, load.rows_quarantined]
    assert written == [5, 0, 0, 0]
    checks = {
        row.split("\t")[0]: row.split("\t")[1:5]
        for row in tab.page.locator("#validations tbody tr").all_inner_texts()
    }
    assert checks == {
        "enough rows": ["min_rows", "passed", "5", ">= 5"],
        "ids unique": ["unique", "passed", "0", "0"],
    }
    shown = tab.page.locator("#log").inner_text().splitlines()
    assert shown[0].startswith("flx ▸ ok-job #1 (manual), attempt 1 of 1 on ")
    assert any("target-flx" in line and "5 records in" in line for line in shown)
    assert shown[-1] == "flx ▸ succeeded after 1 attempt(s)"
    tab.page.click("#log-download")
    assert tab.page.locator("body").inner_text().splitlines() == shown  # all of it: shorter than a page
    assert tab.problems == []


def test_failed_run_shows_its_error_and_alert_with_secrets_masked(
    tab: Tab, ui: UiServer, history: History
) -> None:
    tab.visit(f"/runs/{history.leaky.id}")
    body = tab.page.locator("main").inner_text()
    assert "failed" in body
    assert "postgresql://loader:•••@db.example.com" in body
    assert "password=•••" in body
    assert "login refused (password=•••)" in tab.page.locator("#log").inner_text()
    assert "leaky-job" in tab.page.locator("section:has(h2:has-text('Alerts'))").inner_text()
    for path in (
        "/",
        "/runs",
        f"/runs/{history.leaky.id}",
        f"/runs/{history.leaky.id}/log",
        "/alerts",
        "/charts?pipeline=leaky-job",
        "/metrics",
    ):
        status, page = ui.get(path)
        assert status == 200, path
        for secret in LEAKED:
            assert secret not in page, (secret, path)
    alerts = tab.visit("/alerts?status=firing")
    assert alerts.status == 200
    rows = tab.page.locator("table.alerts tbody tr").all_inner_texts()
    assert len(rows) == 1 and "leaky-job" in rows[0] and "firing" in rows[0]
    assert tab.problems == []


def test_charts_render_the_runs_as_data_points(tab: Tab, history: History) -> None:
    tab.visit("/charts?pipeline=ok-job&days=7")
    points = tab.page.evaluate(
        "['chart-durations', 'chart-rows', 'chart-failures'].map(id => "
        "Chart.getChart(document.getElementById(id)).data.datasets.map(d => d.data))"
    )
    durations, rows, failures = points
    assert [len(series) for series in durations] == [2]  # one series per status: two succeeded runs
    assert sorted(y for _x, y in durations[0]) == sorted(float(e.duration_seconds or 0) for e in history.ok)
    assert rows == [[5, 0]]  # stream items: 5 rows inserted by the first run, none changed by the second
    assert sum(sum(series) for series in failures) == 1  # leaky-job's failure, today
    drawn = tab.page.evaluate(
        "Chart.getChart(document.getElementById('chart-durations')).getDatasetMeta(0).data.length"
    )
    assert drawn == 2
    tab.page.select_option("select[name=pipeline]", "leaky-job")
    tab.page.click("button:has-text('Show')")
    tab.page.wait_for_load_state("networkidle")
    assert "pipeline=leaky-job" in tab.page.url
    assert tab.problems == []


def test_metrics_match_the_runs(ui: UiServer, history: History) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = ui.request("GET", "/metrics", headers={"Accept": "text/plain"})
    assert status == 200 and headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("flx_control_schema_up") == 1
    assert value("flx_executions_total", pipeline="ok-job", status="succeeded") == 2
    assert value("flx_executions_total", pipeline="ok-job", status="failed") == 0
    assert value("flx_executions_total", pipeline="leaky-job", status="failed") == 1
    assert value("flx_executions_in_progress", pipeline="ok-job", status="running") == 0
    durations = [float(e.duration_seconds or 0) for e in history.ok]
    assert value("flx_execution_duration_seconds_count", pipeline="ok-job", status="succeeded") == 2
    assert value(
        "flx_execution_duration_seconds_sum", pipeline="ok-job", status="succeeded"
    ) == pytest.approx(sum(durations))
    under_a_minute = sum(d <= 60 for d in durations)
    assert value(
        "flx_execution_duration_seconds_bucket", pipeline="ok-job", status="succeeded", le="60.0"
    ) == (under_a_minute)
    with Session(history.engine) as session:
        inserted, updated = session.execute(
            select(func.sum(StreamLoad.rows_inserted), func.sum(StreamLoad.rows_updated))
            .join(Execution, Execution.id == StreamLoad.execution_id)
            .join(Pipeline, Pipeline.id == Execution.pipeline_id)
            .where(Pipeline.name == "ok-job")
        ).one()
    assert value("flx_rows_loaded_total", pipeline="ok-job", stream="items", operation="inserted") == inserted
    assert value("flx_rows_loaded_total", pipeline="ok-job", stream="items", operation="updated") == updated
    assert (inserted, updated) == (5, 0)
    since = value("flx_pipeline_seconds_since_last_success", pipeline="ok-job")
    ended = history.ok[-1].ended_at
    assert ended is not None
    assert since == pytest.approx(time.time() - ended.timestamp(), abs=30)
    assert ("flx_pipeline_seconds_since_last_success", frozenset({("pipeline", "leaky-job")})) not in samples
    firing = sum(
        v
        for (name, labels), v in samples.items()
        if name == "flx_alerts_firing" and ("pipeline", "leaky-job") in labels
    )
    assert firing == 1
    assert all("execution" not in key for (_name, labels) in samples for key, _v in labels)


def test_actions_are_refused_without_the_token(tab: Tab, ui: UiServer, history: History) -> None:
    before = len(executions(history.engine, "ok-job"))
    status, _headers, body = ui.request("POST", "/pipelines/ok-job/run", body="")
    assert status == 403 and "Token required" in body
    status, _headers, body = ui.request("POST", f"/runs/{history.ok[-1].id}/cancel", body="")
    assert status == 403
    status, _headers, _body = ui.request(
        "POST", "/pipelines/ok-job/run", body="", headers={"Authorization": "Bearer wrong-token-123456"}
    )
    assert status == 403
    # A forged cross-site form: the right cookie would not be sent (SameSite=Strict), nor the Origin match.
    status, _headers, _body = ui.request(
        "POST", "/pipelines/ok-job/run", body="", headers={"Origin": "http://evil.example"}
    )
    assert status == 403
    tab.visit("/")
    tab.page.locator("tr", has=tab.page.locator("a.name", has_text="ok-job")).locator("button").click()
    tab.page.wait_for_load_state("networkidle")
    assert "Token required" in tab.page.locator("main").inner_text()
    assert len(executions(history.engine, "ok-job")) == before
    tab.problems = [p for p in tab.problems if "403" not in p]
    assert tab.problems == []


def test_beyond_loopback_every_page_needs_the_token(history: History) -> None:
    env = {**history.project.env, "FLX_UI_TOKEN": TOKEN}
    with running_ui(history.project.root, env, "--host", "0.0.0.0") as public:
        status, headers, _body = public.request("GET", "/runs")
        assert status == 303 and headers["location"].startswith("/login")
        status, headers, _body = public.request("GET", "/metrics", headers={"Accept": "text/plain"})
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, _headers, body = public.request("GET", "/runs", headers=bearer)
        assert status == 200 and "leaky-job #1" in body
        status, _headers, body = public.request("GET", "/metrics", headers=bearer)
        assert status == 200 and "flx_executions_total" in body
        status, headers, _body = public.request("GET", f"/runs?token={TOKEN}")
        assert (
            status == 303
            and "flx_ui_session=" in headers["set-cookie"]
            and TOKEN not in headers["set-cookie"]
        )
        status, _headers, body = public.request("POST", "/pipelines/ok-job/run", body="", headers=bearer)
        assert status == 404 and "Actions are off" in body  # no --actions


def test_run_now_and_cancel_with_the_token(tab: Tab, ui: UiServer, history: History) -> None:
    tab.visit("/login")
    tab.page.fill("input[name=token]", TOKEN)
    tab.page.click("button:has-text('Log in')")
    tab.page.wait_for_load_state("networkidle")
    assert "log out" in tab.page.locator("header").inner_text()

    tab.page.locator("tr", has=tab.page.locator("a.name", has_text="ok-job")).locator("button").click()
    tab.page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+\?notice=started$"), timeout=30_000)
    assert "this run was started from flx ui" in tab.page.locator(".notice").inner_text()
    # The page follows the run live until it ends, then shows the outcome.
    tab.page.wait_for_selector(".facts .badge.s-succeeded", timeout=120_000)
    started = executions(history.engine, "ok-job")[-1]
    assert (started.status, started.trigger, started.execution_number) == ("succeeded", "ui", 3)

    slow = history.project.flx_background("run", "slow-job")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = executions(history.engine, "slow-job")
            if found and found[-1].status == "running":
                break
            time.sleep(0.3)
        else:
            raise AssertionError("slow-job never started running")
        tab.visit(f"/runs/{found[-1].id}")
        assert tab.page.locator("[data-live-url]").count() == 1
        tab.page.click("button:has-text('Cancel')")
        tab.page.wait_for_url(re.compile(r"\?notice=cancel-sent$"))
        assert slow.wait(timeout=60) == 130
    finally:
        if slow.poll() is None:
            slow.kill()
    assert executions(history.engine, "slow-job")[-1].status == "cancelled"
    tab.page.wait_for_selector(".facts .badge.s-cancelled", timeout=30_000)
    assert tab.problems == []
