"""The UI's parts without a browser: secret masking, who may do what, run-list paging over a real control
schema, the Prometheus collector and its stand-alone server."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert
from sqlalchemy.engine import URL
from starlette.requests import HTTPConnection

from flx.cli.ui import ui
from flx.execution.logstore import LogWriter
from flx.metrics import FlxCollector, start_metrics_server
from flx.ui import queries
from flx.ui.auth import Access, is_loopback
from flx.ui.format import duration, size
from flx.ui.redact import MASK, Redactor, url_secrets
from flx_core.database import make_engine
from flx_core.migrate import ensure_schema
from flx_core.models import Alert, Execution, Pipeline, StreamLoad
from flx_core.settings import DatabaseSettings


def test_redactor_masks_known_secrets_url_passwords_and_assignments() -> None:
    redact = Redactor(url_secrets("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ") | {"s3cr3t-value"})
    assert redact("sent to slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ") == f"sent to {MASK}"
    assert redact("token TIiajkdnlazkcOXrIdevi7FQ leaked") == f"token {MASK} leaked"
    assert redact("value s3cr3t-value") == f"value {MASK}"
    assert redact("postgresql://loader:pw-9@db:5432/app") == f"postgresql://loader:{MASK}@db:5432/app"
    assert redact("login failed (password=hunter2)") == f"login failed (password={MASK})"
    assert redact('{"api_key": "abc123"}') == f'{{"api_key": {MASK}}}'
    assert redact("no secret here: 5 rows, max_tokens 3") == "no secret here: 5 rows, max_tokens 3"
    # A host name in an alert URL is not taken for a token.
    assert "hooks.example.com" not in url_secrets("json://hooks.example.com:8080/path")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _connection(headers: dict[str, str]) -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw, "path": "/", "query_string": b""})


def test_access_rules() -> None:
    token = "a-long-enough-token"
    local = Access(token, public=False)
    assert local.host_allowed(_connection({"host": "127.0.0.1:8765"}))
    assert local.host_allowed(_connection({"host": "[::1]:8765"}))
    assert local.host_allowed(_connection({"host": "localhost"}))
    assert not local.host_allowed(_connection({"host": "attacker.example:8765"}))  # DNS rebinding
    assert local.may_view(_connection({}))
    assert not local.may_act(_connection({}))
    assert local.may_act(_connection({"authorization": f"Bearer {token}"}))
    assert not local.may_act(_connection({"authorization": "Bearer nope"}))
    cookie = f"flx_ui_session={local.session}"
    assert token not in local.session
    same_site = {"cookie": cookie, "host": "127.0.0.1:8765", "origin": "http://127.0.0.1:8765"}
    assert local.may_act(_connection(same_site))
    assert not local.may_act(_connection({**same_site, "origin": "http://evil.example"}))
    assert not local.may_act(_connection({"cookie": cookie, "host": "127.0.0.1:8765"}))
    public = Access(token, public=True)
    assert public.host_allowed(_connection({"host": "flx.example.com"}))
    assert not public.may_view(_connection({}))
    assert public.may_view(_connection({"cookie": cookie}))
    assert not Access(None, public=False).may_act(_connection({"authorization": "Bearer "}))


def test_ui_refuses_to_listen_beyond_loopback_without_a_token_or_with_a_short_one() -> None:
    runner = CliRunner()
    refused = runner.invoke(ui, ["--host", "0.0.0.0"], env={"FLX_UI_TOKEN": ""})
    assert refused.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without a token" in str(refused.output)
    short = runner.invoke(ui, ["--token", "short"])
    assert short.exit_code == 2 and "at least 12 characters" in str(short.output)


def test_formats() -> None:
    assert [duration(s) for s in (None, 3.21, 42, 75, 3725, 200_000)] == [
        "\u2013",
        "3.2 s",
        "42 s",
        "1 min 15 s",
        "1 h 02 min",
        "2 d 7 h",
    ]
    assert [size(n) for n in (0, 512, 2048, 5 * 1024**3)] == ["0 B", "512 B", "2.0 KiB", "5.0 GiB"]


@pytest.fixture
def control(database_url: URL, fresh_schema_name: str) -> Iterator[Engine]:
    """An empty control schema of its own, with two pipelines' history written through the models."""
    settings = DatabaseSettings(
        sqlalchemy_url=database_url.render_as_string(hide_password=False),  # type: ignore[arg-type]
        control_schema=fresh_schema_name,
    )
    engine = make_engine(settings)
    ensure_schema(engine, fresh_schema_name)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = {
            name: conn.execute(insert(Pipeline).values(name=name).returning(Pipeline.id)).scalar_one()
            for name in ("alpha", "beta")
        }
        rows = []
        for n in range(1, 121):
            pipeline = "alpha" if n % 3 else "beta"
            at = now - timedelta(minutes=121 - n)
            status = "failed" if n % 10 == 0 else "succeeded"
            rows.append(
                {
                    "pipeline_id": ids[pipeline],
                    "execution_number": n,
                    "status": status,
                    "created_at": at,
                    "started_at": at,
                    "ended_at": at + timedelta(seconds=n),
                    "duration_seconds": Decimal(n),
                }
            )
        conn.execute(insert(Execution), rows)
        last = conn.execute(
            insert(Execution)
            .values(pipeline_id=ids["alpha"], execution_number=500, status="running", created_at=now)
            .returning(Execution.id)
        ).scalar_one()
        conn.execute(
            insert(StreamLoad).values(
                execution_id=last, stream="items", schema_name="raw", table_name="items", rows_inserted=7
            )
        )
        conn.execute(
            insert(Alert).values(
                fingerprint="beta:failed", pipeline_id=ids["beta"], severity="error", status="firing"
            )
        )
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{fresh_schema_name}" CASCADE')
    engine.dispose()


def test_run_list_pages_newest_first_without_gaps_or_repeats(control: Engine) -> None:
    seen: list[uuid.UUID] = []
    pages = []
    with control.connect() as conn:
        page = queries.runs(conn, queries.RunFilter(), None, None, limit=50)
        while True:
            pages.append(page)
            seen += [r.id for r in page.rows]
            if page.older is None:
                break
            page = queries.runs(conn, queries.RunFilter(), page.older, None, limit=50)
        assert [len(p.rows) for p in pages] == [50, 50, 21]
        assert pages[0].total == 121 and pages[0].newer is None
        assert len(set(seen)) == 121
        created = [r.created_at for p in pages for r in p.rows]
        assert created == sorted(created, reverse=True)
        # Back up from the last page: the page before it again.
        last = pages[-1]
        assert last.newer is not None
        back = queries.runs(conn, queries.RunFilter(), None, last.newer, limit=50)
        assert [r.id for r in back.rows] == [r.id for r in pages[1].rows]
        failures = queries.runs(conn, queries.RunFilter(status="failures"), None, None)
        assert failures.total == 12 and {r.status for r in failures.rows} == {"failed"}
        beta = queries.runs(conn, queries.RunFilter(pipeline="beta"), None, None)
        assert beta.total == 40 and {r.pipeline for r in beta.rows} == {"beta"}
        unknown = queries.runs(conn, queries.RunFilter(pipeline="gamma"), None, None)
        assert unknown.unknown_pipeline and unknown.rows == []


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_collector_reads_the_control_schema(control: Engine) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlxCollector(lambda: control, cache_seconds=0))
    samples = _samples(generate_latest(registry).decode())

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("flx_control_schema_up") == 1
    assert value("flx_executions_total", pipeline="alpha", status="succeeded") == 72
    assert value("flx_executions_total", pipeline="alpha", status="failed") == 8
    assert value("flx_executions_total", pipeline="beta", status="failed") == 4
    assert value("flx_executions_in_progress", pipeline="alpha", status="running") == 1
    assert value("flx_execution_duration_seconds_count", pipeline="beta", status="succeeded") == 36
    assert (
        value("flx_execution_duration_seconds_bucket", pipeline="alpha", status="succeeded", le="60.0") == 36
    )
    assert value("flx_rows_loaded_total", pipeline="alpha", stream="items", operation="inserted") == 7
    assert value("flx_alerts_firing", pipeline="beta", severity="error") == 1
    assert value("flx_alerts_firing", pipeline="alpha", severity="error") == 0
    assert 0 <= value("flx_pipeline_seconds_since_last_success", pipeline="alpha") < 300


def test_collector_reports_an_unreachable_database_as_down() -> None:
    settings = DatabaseSettings(sqlalchemy_url="postgresql+psycopg://nobody@127.0.0.1:1/none")  # type: ignore[arg-type]
    collector = FlxCollector(lambda: make_engine(settings, pool_size=0), cache_seconds=0)
    names = {family.name: family for family in collector.collect()}
    assert names["flx_control_schema_up"].samples[0].value == 0
    assert "flx_executions" not in names


def test_start_metrics_server_serves_the_collector(control: Engine) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = start_metrics_server(port, lambda: control, addr="127.0.0.1")
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        client.request("GET", "/metrics")
        response = client.getresponse()
        body = response.read().decode()
        assert response.status == 200
        assert (
            _samples(body)[("flx_executions_total", frozenset({("pipeline", "beta"), ("status", "failed")}))]
            == 4
        )
    finally:
        stop()


def test_the_run_log_is_read_from_the_log_store(control: Engine) -> None:
    with control.connect() as conn:
        running = queries.runs(conn, queries.RunFilter(status="running"), None, None).rows[0]
        detail = queries.run_detail(conn, running.id, datetime.now(UTC))
        assert detail is not None and detail.log.lines == []  # nothing stored: the page says so
    writer = LogWriter(control, running.id)
    for n in range(queries.LOG_LINES + 10):
        writer.line(f"line {n}")
    writer.start_attempt(2, "second attempt")
    writer.line("last line")
    writer.close()
    with control.connect() as conn:
        detail = queries.run_detail(conn, running.id, datetime.now(UTC))
        everything = queries.run_log(conn, running.id, None)
    assert detail is not None and detail.log.truncated
    assert len(detail.log.lines) == queries.LOG_LINES
    assert detail.log.lines[-2:] == ["flx ▸ second attempt", "last line"]
    assert everything.lines[0] == "line 0" and len(everything.lines) == queries.LOG_LINES + 12


def test_the_listening_socket_is_tcp_so_responses_are_not_delayed() -> None:
    import socket

    from flx.cli.ui import _listen

    listener = _listen("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY on accepted sockets whose protocol is TCP; with proto 0 it would not,
        # and each keep-alive response would wait for the client's delayed ACK.
        assert listener.proto == socket.IPPROTO_TCP
    finally:
        listener.close()
