"""The `flx ui` web application: Starlette routes rendering Jinja2 templates from the control schema.

Pages read the database in Starlette's thread pool (SQLAlchemy is synchronous here); every value a template
prints passes through the `Redactor` (Jinja's `finalize`), so a password in a log line, an error or an alert
message is masked wherever it shows up.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import orjson
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, SecretStr
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from flx.config import FlxSettings
from flx.metrics import registry_for
from flx.ui import actions, charts, queries
from flx.ui.auth import COOKIE, Access
from flx.ui.format import FILTERS
from flx.ui.redact import Redactor, url_secrets

HERE = Path(__file__).parent
PAGE_SIZE = 50
SECRETS_REFRESH_SECONDS = 60.0
RUN_NOW_WAIT_SECONDS = 15.0
CHART_DAYS = (7, 30, 90, 365)
NOTICES = {
    "started": "Started: this run was started from flx ui.",
    "starting": "Started flx run; its execution is not recorded yet: it shows up here in a moment.",
    "cancel-sent": "Cancel requested: its runner stops the job at its next heartbeat, and records it.",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@dataclass
class UiConfig:
    engine: Engine
    settings: FlxSettings | None = None
    actions: bool = False
    token: str | None = None
    public: bool = False  # bound beyond loopback
    database: str = ""  # where the control schema is, password hidden
    control_schema: str = "flx"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def setting_secrets(value: Any) -> set[str]:
    """Every secret in the settings: SecretStr values (sensitive settings), alert URLs, source URLs."""
    found: set[str] = set()
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        found |= url_secrets(secret, tokens=False) if "://" in secret else {secret}
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            item = getattr(value, name)
            if name == "alert_urls":
                found |= {secret for url in item for secret in url_secrets(str(url))}
            elif name == "source" and isinstance(item, str):  # a check's source: oracle:NAME or a URL
                found |= url_secrets(item, tokens=False)
            else:
                found |= setting_secrets(item)
    elif isinstance(value, dict):
        for item in value.values():
            found |= setting_secrets(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found |= setting_secrets(item)
    return found


class Ui:
    """The application's state: engine, settings, access rules, templates, the redactor."""

    def __init__(self, config: UiConfig) -> None:
        self.config = config
        self.engine = config.engine
        self.access = Access(config.token, config.public)
        self.redact = Redactor(setting_secrets(config.settings) if config.settings else ())
        password = self.engine.url.password
        if password:
            self.redact.add([str(password)])
        self._secrets_read = 0.0
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            finalize=self._finalize,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.filters.update(FILTERS)
        environment.policies["json.dumps_function"] = lambda value, **_: orjson.dumps(value).decode()
        environment.globals.update(
            colours=charts.STATUS_COLOURS, statuses=queries.STATUSES, database=config.database
        )
        self.templates = Jinja2Templates(env=environment)
        self.registry = registry_for(lambda: self.engine)

    def _finalize(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, Markup | int | float):
            return value
        return self.redact(str(value))

    def _refresh_secrets(self) -> None:
        """Alert and source URLs recorded with pipelines by any machine sharing the database."""
        if time.monotonic() - self._secrets_read < SECRETS_REFRESH_SECONDS:
            return
        with self.engine.connect() as conn:
            urls = queries.recorded_alert_urls(conn)
        self.redact.add(secret for url, tokens in urls for secret in url_secrets(url, tokens))
        self._secrets_read = time.monotonic()

    def read(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(connection)` (in the thread pool's thread), secrets refreshed first."""
        self._refresh_secrets()
        with self.engine.connect() as conn:
            return work(conn)

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        context.setdefault("page", "")
        context.update(
            request=request,
            actions=self.config.actions,
            authenticated=self.access.authenticated(request),
            token_set=self.config.token is not None,
            notice=notice,
            now=self.config.now(),
        )
        response = self.templates.TemplateResponse(request, template, context, status_code=status_code)
        return response

    def problem(self, request: Request, status_code: int, title: str, message: str) -> Response:
        login_hint = status_code == 403 and not self.access.authenticated(request)
        return self.render(
            request, "problem.html", status_code, title=title, message=message, login_hint=login_hint
        )

    # pages

    async def pipelines(self, request: Request) -> Response:
        now = self.config.now()
        found: list[queries.PipelineSummary] = await run_in_threadpool(
            self.read, lambda conn: queries.pipelines(conn, now)
        )
        summaries = self._with_settings(found, now)
        sparks = {s.name: charts.sparkline(s.recent) for s in summaries if s.recent}
        return self.render(request, "pipelines.html", pipelines=summaries, sparks=sparks, page="pipelines")

    def _with_settings(
        self, found: list[queries.PipelineSummary], now: datetime
    ) -> list[queries.PipelineSummary]:
        """The pipelines with history plus those only configured; schedules as this project sets them now."""
        from flx.schedule import parse_schedule

        by_name = {s.name: s for s in found}
        settings = self.config.settings
        if settings is not None:
            for name, pipeline in settings.pipelines.items():
                summary = by_name.setdefault(name, queries.PipelineSummary(name=name))
                summary.schedule = pipeline.schedule
                summary.timezone = pipeline.timezone
                summary.description = pipeline.description or summary.description
        for summary in by_name.values():
            try:
                schedule = parse_schedule(summary.schedule, summary.timezone or "UTC")
            except ValueError as exc:
                summary.schedule_error = str(exc)
                continue
            if schedule is not None:
                summary.next_run = schedule.next_after(now)
        return [by_name[name] for name in sorted(by_name)]

    async def runs(self, request: Request) -> Response:
        params = request.query_params
        now = self.config.now()
        problems: list[str] = []
        status = params.get("status") or None
        if status and status not in queries.STATUSES and status not in queries.STATUS_GROUPS:
            problems.append(f"unknown status {status!r}")
            status = None
        since, until = _time(params.get("from"), problems), _time(params.get("to"), problems)
        window = params.get("last")
        if window in _WINDOWS:
            since, until = now - _WINDOWS[window], None
        filters = queries.RunFilter(params.get("pipeline") or None, status, since, until)
        before = queries.Cursor.decode(params["before"]) if params.get("before") else None
        after = queries.Cursor.decode(params["after"]) if params.get("after") else None

        def work(conn: Any) -> tuple[queries.RunsPage, list[str]]:
            return queries.runs(conn, filters, before, after, PAGE_SIZE), queries.pipeline_names(conn)

        page, names = await run_in_threadpool(self.read, work)
        if page.unknown_pipeline:
            problems.append(f"no pipeline named {filters.pipeline!r} has run")
        kept = {k: v for k, v in params.items() if k in ("pipeline", "status", "from", "to", "last") and v}
        links = {
            "older": "?" + urlencode({**kept, "before": page.older.encode()}) if page.older else None,
            "newer": "?" + urlencode({**kept, "after": page.newer.encode()}) if page.newer else None,
            "newest": "?" + urlencode(kept) if (before or after) else None,
        }
        return self.render(
            request,
            "runs.html",
            page="runs",
            runs=page,
            names=names,
            filters=filters,
            form=dict(params),
            problems=problems,
            links=links,
            windows=list(_WINDOWS),
            groups=list(queries.STATUS_GROUPS),
            active=any(r.status in queries.ACTIVE for r in page.rows),
        )

    async def run(self, request: Request) -> Response:
        execution_id: uuid.UUID = request.path_params["execution_id"]
        now = self.config.now()
        detail: queries.RunDetail | None = await run_in_threadpool(
            self.read, lambda conn: queries.run_detail(conn, execution_id, now)
        )
        if detail is None:
            return self.problem(
                request, 404, "No such run", f"No execution {execution_id} in the control schema."
            )
        template = "run_live.html" if request.query_params.get("part") == "live" else "run.html"
        response = self.render(request, template, page="runs", detail=detail, run=detail.run)
        response.headers["X-Flx-Active"] = "1" if detail.is_active else "0"
        return response

    async def charts(self, request: Request) -> Response:
        params = request.query_params
        now = self.config.now()
        days = int(params["days"]) if params.get("days", "").isdigit() else 30
        days = days if days in CHART_DAYS else 30
        since = now - timedelta(days=days)
        wanted = params.get("pipeline") or None

        def work(conn: Any) -> dict[str, Any]:
            names = queries.pipeline_names(conn)
            name = wanted if wanted in names else _newest(conn) or (names[0] if names else None)
            found: dict[str, Any] = {"names": names, "pipeline": name, "problem": None, "truncated": False}
            if wanted and wanted not in names:
                found["problem"] = f"no pipeline named {wanted!r} has run"
            pipeline = queries.pipeline_id(conn, name) if name else None
            if pipeline is not None and name is not None:
                points = queries.durations(conn, pipeline, since)
                found["durations"] = charts.durations(points, name, self.redact, since, now)
                found["truncated"] = len(points) >= queries.DURATION_POINTS
                per_stream = queries.rows_per_stream(conn, pipeline)
                found["rows"] = charts.stream_rows(per_stream, name, self.redact)
            found["failures"] = charts.failures(queries.failures_per_day(conn, since, now), self.redact)
            return found

        found = await run_in_threadpool(self.read, work)
        return self.render(request, "charts.html", page="charts", days=days, choices=CHART_DAYS, **found)

    async def alerts(self, request: Request) -> Response:
        status = request.query_params.get("status")
        status = status if status in ("firing", "resolved") else None

        def work(conn: Any) -> tuple[list[queries.AlertRow], dict[str, int]]:
            return queries.alerts(conn, status), queries.alert_counts(conn)

        rows, counts = await run_in_threadpool(self.read, work)
        return self.render(request, "alerts.html", page="alerts", alerts=rows, counts=counts, status=status)

    async def metrics(self, request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def favicon(self, request: Request) -> Response:
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    # logging in

    async def login(self, request: Request) -> Response:
        target = _local(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(request, "login.html", page="login", next=target, failed=False)
        form = await _form(request)
        target = _local(form.get("next")) or target
        if not self.access.token_matches(form.get("token")):
            return self.render(request, "login.html", 401, page="login", next=target, failed=True)
        response = RedirectResponse(target or "/", status_code=303)
        self.set_session(request, response)
        return response

    def set_session(self, request: Request, response: Response) -> None:
        response.set_cookie(
            COOKIE,
            self.access.session,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # actions

    def _refuse(self, request: Request) -> Response | None:
        if not self.config.actions:
            return self.problem(
                request, 404, "Actions are off", "This flx ui shows history only: start it with --actions."
            )
        if not self.access.may_act(request):
            return self.problem(
                request,
                403,
                "Token required",
                "Actions need the token flx ui printed when it started (or --token / FLX_UI_TOKEN): log in "
                "first.",
            )
        return None

    async def run_now(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        name: str = request.path_params["name"]
        since = await run_in_threadpool(self.read, lambda conn: conn.scalar(select(func.now())))
        try:
            started = actions.run_now(self.config.settings, name)
        except actions.ActionRefused as exc:
            return self.problem(request, 409, "Cannot run now", str(exc))
        deadline = time.monotonic() + RUN_NOW_WAIT_SECONDS
        while time.monotonic() < deadline:
            found = await run_in_threadpool(
                self.read, lambda conn: queries.newest_run_since(conn, name, since)
            )
            if found is not None:
                return RedirectResponse(f"/runs/{found}?notice=started", status_code=303)
            if started.process.returncode is not None:
                output = started.output.read_text(errors="replace")[-4000:]
                return self.problem(
                    request, 500, "flx run ended before recording a run", output or "(no output)"
                )
            await asyncio.sleep(0.2)
        query = urlencode({"pipeline": name, "notice": "starting"})
        return RedirectResponse(f"/runs?{query}", status_code=303)

    async def cancel(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        execution_id: uuid.UUID = request.path_params["execution_id"]
        by = f"flx ui on {socket.gethostname()} ({request.client.host if request.client else 'unknown'})"
        try:
            schema = self.config.control_schema
            await run_in_threadpool(self.read, lambda conn: actions.cancel(conn, execution_id, by, schema))
        except actions.ActionRefused as exc:
            return self.problem(request, 409, "Cannot cancel", str(exc))
        return RedirectResponse(f"/runs/{execution_id}?notice=cancel-sent", status_code=303)

    async def full_log(self, request: Request) -> Response:
        """The complete log as plain text, secrets hidden like on the pages."""
        execution_id: uuid.UUID = request.path_params["execution_id"]
        found = await run_in_threadpool(self.read, lambda conn: queries.run_log(conn, execution_id, None))
        body = self.redact("\n".join(found.lines) + "\n") if found.lines else ""
        return Response(body, media_type="text/plain; charset=utf-8")


_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def _time(value: str | None, problems: list[str]) -> datetime | None:
    """A date or date-time from a filter field, read as UTC unless it names its offset."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"not a date or time: {value!r} (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _newest(conn: Any) -> str | None:
    """The pipeline that ran last, for the charts page's default."""
    return conn.scalar(
        select(queries.P.c.name)
        .select_from(queries.E.join(queries.P, queries.P.c.id == queries.E.c.pipeline_id))
        .order_by(queries.E.c.created_at.desc())
        .limit(1)
    )


def _local(target: str | None) -> str | None:
    """A path on this server to go back to after logging in; nothing else (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:65536]
    return {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}


class Guard(BaseHTTPMiddleware):
    """Host check, the token for pages beyond loopback, `?token=` logins, security headers."""

    def __init__(self, app: Any, ui: Ui) -> None:
        super().__init__(app)
        self.ui = ui

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        access = self.ui.access
        if not access.host_allowed(request):
            return PlainTextResponse("flx ui: this Host is not a loopback address\n", status_code=400)
        path = request.url.path
        open_path = path.startswith("/static/") or path in ("/favicon.ico", "/login")
        given = request.query_params.get("token")
        if given is not None and request.method == "GET":
            if not access.token_matches(given):
                response = self.ui.problem(request, 401, "Wrong token", "That is not this flx ui's token.")
                return _secure(response)
            kept = {k: v for k, v in request.query_params.multi_items() if k != "token"}
            response = RedirectResponse(path + ("?" + urlencode(kept) if kept else ""), status_code=303)
            self.ui.set_session(request, response)
            return _secure(response)
        if not open_path and not access.may_view(request):
            if path == "/metrics" or "text/html" not in request.headers.get("accept", ""):
                return _secure(
                    PlainTextResponse(
                        "flx ui: token required (Authorization: Bearer TOKEN)\n",
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                )
            return _secure(RedirectResponse("/login?" + urlencode({"next": path}), status_code=303))
        return _secure(await call_next(request))


def _secure(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.media_type == "text/html" or "text/html" in response.headers.get("content-type", ""):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app(config: UiConfig) -> Starlette:
    ui = Ui(config)
    routes = [
        Route("/", ui.pipelines, name="pipelines"),
        Route("/runs", ui.runs, name="runs"),
        Route("/runs/{execution_id:uuid}", ui.run, name="run"),
        Route("/runs/{execution_id:uuid}/cancel", ui.cancel, methods=["POST"], name="cancel"),
        Route("/runs/{execution_id:uuid}/log", ui.full_log, name="log"),
        Route("/pipelines/{name:path}/run", ui.run_now, methods=["POST"], name="run_now"),
        Route("/charts", ui.charts, name="charts"),
        Route("/alerts", ui.alerts, name="alerts"),
        Route("/metrics", ui.metrics, name="metrics"),
        Route("/login", ui.login, methods=["GET", "POST"], name="login"),
        Route("/logout", ui.logout, methods=["POST"], name="logout"),
        Route("/favicon.ico", ui.favicon),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, ui=ui)])
    app.state.ui = ui
    return app
