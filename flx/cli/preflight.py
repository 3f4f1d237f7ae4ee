"""`flx check`: everything `flx run` and `flx serve` will need, tested before 3 a.m. rather than during it.

One line per thing checked, ✓ or ✗, and never a traceback: each check catches what it can meet and says
what is wrong and where. Checks that need something that failed (the database for validation tables) say
they were not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from flx.config import FlxSettings, PipelineSettings
from flx_core.settings import SettingsError


@dataclass(frozen=True)
class CheckLine:
    name: str
    ok: bool
    detail: str


def preflight(send_test: bool = False) -> list[CheckLine]:
    return list(_checks(send_test))


def _checks(send_test: bool) -> Iterator[CheckLine]:
    from flx.config import settings_with_problems

    loaded = _guard("settings", settings_with_problems)
    if isinstance(loaded, CheckLine):
        yield loaded
        return
    settings, problems = loaded
    for problem in problems:
        yield CheckLine("settings", False, problem)
    if not problems:
        where = settings.project_root / "meltano.yml" if settings.project_root else "no meltano.yml"
        environment = f", environment {settings.environment}" if settings.environment else ""
        yield CheckLine("settings", True, f"{where}{environment}, {len(settings.pipelines)} pipeline(s)")

    conn, line = _postgres(settings)
    try:  # the connection closes however far the caller reads
        yield line
        yield from _schedules(settings)
        yield from _validations(settings, conn)
        yield from _oracle(settings)
        yield from _alerts(settings, send_test)
        yield _meltano(settings)
        yield from _jobs(settings)
    finally:
        if conn is not None:
            conn.close()


def _guard(name: str, check: Callable[[], Any]) -> Any:
    """The check's result, or a ✗ line for whatever it raised."""
    try:
        return check()
    except SettingsError as exc:
        return CheckLine(name, False, str(exc).splitlines()[0])
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return CheckLine(name, False, f"unexpected {type(exc).__name__}: {first}")


def _postgres(settings: FlxSettings) -> tuple[Any, CheckLine]:
    """A psycopg connection (autocommit) to flx's database, or None, and the line saying how it went."""
    from flx.cli.errors import database_reason

    try:
        from flx_core.database import resolve

        resolved = resolve(settings.database)
        where = resolved.where() if settings.database.is_configured else _embedded_where()
    except SettingsError as exc:
        return None, CheckLine("postgresql", False, str(exc).splitlines()[0])
    schema = resolved.control_schema
    conn = None
    try:
        import psycopg

        from flx.cli.context import conninfo
        from flx_core.revision import HEAD

        conn = psycopg.connect(conninfo(resolved), autocommit=True)
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        revision = _revision(conn, schema)
        if revision != HEAD:
            from flx_core import migrate  # Alembic, only when the schema is missing or behind
            from flx_core.database import make_engine

            engine = make_engine(resolved, pool_size=0)
            try:
                migrate.ensure_schema(engine, schema)
            finally:
                engine.dispose()
            revision = _revision(conn, schema)
    except Exception as exc:
        if conn is not None:
            conn.close()
        reason, advice = database_reason(exc)
        return None, CheckLine("postgresql", False, f"{where}: {reason}; {advice}")
    state = "up to date" if revision == HEAD else f"at {revision}, this flx needs {HEAD}"
    return conn, CheckLine("postgresql", revision == HEAD, f"{where} (server {version}), {schema} {state}")


def _embedded_where() -> str:
    from flx_core.embedded import running_server

    server = running_server()
    if server is None:
        return "the embedded PostgreSQL"
    reach = f", {server.tcp_url}" if server.tcp_url else ", socket only"
    return f"the embedded PostgreSQL in {server.pgdata}{reach}"


def _revision(conn: Any, schema: str) -> str | None:
    """The control schema's Alembic revision, read without loading Alembic; None when there is none."""
    from psycopg import sql

    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".alembic_version',)).fetchone()[0]
    if exists is None:
        return None
    row = conn.execute(sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(schema)))
    value = row.fetchone()
    return str(value[0]) if value else None


def _schedules(settings: FlxSettings) -> Iterator[CheckLine]:
    for name, pipeline in sorted(settings.pipelines.items()):
        if not pipeline.schedule and pipeline.timezone == "UTC":
            continue
        from flx.schedule import parse_schedule  # croniter: only for projects with schedules

        try:
            schedule = parse_schedule(pipeline.schedule, pipeline.timezone)
            if schedule is None:
                from zoneinfo import ZoneInfo

                ZoneInfo(pipeline.timezone)  # checked by parse_schedule when there is a schedule
                yield CheckLine(f"schedule {name}", True, f"runs on demand only ({pipeline.timezone})")
                continue
        except Exception as exc:
            yield CheckLine(f"schedule {name}", False, str(exc).splitlines()[0])
            continue
        upcoming = schedule.next_after(datetime.now(UTC)).astimezone(schedule.zone)
        yield CheckLine(
            f"schedule {name}",
            True,
            f"{pipeline.schedule!r} in {pipeline.timezone}, next {upcoming:%Y-%m-%d %H:%M %Z}",
        )


def _validations(settings: FlxSettings, conn: Any) -> Iterator[CheckLine]:
    from flx.alerts.urls import unset_variables

    for name, pipeline in sorted(settings.pipelines.items()):
        if not pipeline.validations:
            continue
        label = f"validations {name}"
        problems = []
        for check in pipeline.validations:
            source = check.source or ""
            if source.startswith("oracle:") and source[7:] not in settings.oracle_sources:
                known = ", ".join(settings.oracle_sources) or "none is configured"
                problems.append(f"check {check.name!r}: no Oracle source {source[7:]!r} ({known})")
            for variable in unset_variables([source, check.where or ""]):
                problems.append(f"check {check.name!r}: ${variable} is not set")
        if problems:
            yield CheckLine(label, False, "; ".join(problems))
            continue
        if conn is None:
            yield CheckLine(label, False, f"{len(pipeline.validations)} check(s) not examined: no database")
            continue
        yield _guard(label, partial(_validation_tables, conn, pipeline, settings))


def _validation_tables(conn: Any, pipeline: PipelineSettings, settings: FlxSettings) -> CheckLine:
    from psycopg import sql

    label = f"validations {pipeline.name}"
    tables = sorted({check.table for check in pipeline.validations})
    schema = sql.Identifier(settings.database.control_schema)
    missing = [t for t in tables if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]
    succeeded = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {schema}.executions e JOIN {schema}.pipelines p "
            "ON p.id = e.pipeline_id WHERE p.name = %s AND e.status = 'succeeded')"
        ).format(schema=schema),
        (pipeline.name,),
    ).fetchone()[0]
    count = f"{len(pipeline.validations)} check(s) on {', '.join(tables)}"
    if not missing:
        return CheckLine(label, True, count)
    if not succeeded:
        note = f"{', '.join(missing)} not loaded yet (the first run creates it)"
        return CheckLine(label, True, f"{count}; {note}")
    verb = "does" if len(missing) == 1 else "do"
    return CheckLine(
        label,
        False,
        f"{', '.join(missing)} {verb} not exist, though {pipeline.name} has succeeded before: "
        "fix the check's `table`",
    )


def _oracle(settings: FlxSettings) -> Iterator[CheckLine]:
    for name, source in settings.oracle_sources.items():
        yield _guard(f"oracle {name}", partial(_oracle_source, source))


def _oracle_source(source: Any) -> CheckLine:
    from flx.oracle.manager import OracleConnectionManager

    manager = OracleConnectionManager(source)
    try:
        health = manager.health_check()
    finally:
        manager.close()
    if health.ok:
        return CheckLine(f"oracle {source.name}", True, f"connected in {health.latency_ms:.0f} ms")
    return CheckLine(f"oracle {source.name}", False, f"{health.category}: {health.message}")


def _alerts(settings: FlxSettings, send_test: bool) -> Iterator[CheckLine]:
    from flx.alerts.urls import unset_variables
    from flx.cli.context import alert_url_lists

    lists = [(where, urls) for where, urls in alert_url_lists(settings) if urls]
    if not lists:
        yield CheckLine("alert channels", True, "none configured: alerts go to the log only")
        return
    from flx.alerts.channels import Channels

    for where, urls in lists:
        described, problems = [], []
        for position, url in enumerate(urls, start=1):
            unset = unset_variables([url])
            if unset:
                problems.append(f"#{position}: ${unset[0]} is not set (export it, or remove the entry)")
                continue
            try:
                channel = Channels([url])
            except Exception as exc:
                problems.append(str(exc).replace("alert URL #1", f"#{position}"))
                continue
            described += channel.describe()
            if send_test:
                from apprise import NotifyType

                body = "A test message from `flx check --send-test`."
                sent = channel.send("flx check", body, NotifyType.INFO)
                if not sent:
                    problems.append(f"#{position} ({channel.describe()[0]}): did not accept a test message")
        name = "alert channels" if where == "alert_urls" else f"alert channels ({where})"
        if problems:
            yield CheckLine(name, False, f"{where} " + "; ".join(problems))
        else:
            sent_note = " (test message sent)" if send_test else ""
            yield CheckLine(name, True, ", ".join(described) + sent_note)


def _meltano(settings: FlxSettings) -> CheckLine:
    if settings.project_root is None:
        return CheckLine(
            "meltano project", False, f"no meltano.yml in {os.getcwd()} or above; run flx inside a project"
        )
    executable = meltano_executable(settings.meltano_executable)
    version = _installed_meltano(executable)
    ok = True
    if version is None:
        try:
            done = subprocess.run(
                [executable, "--version"], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "no answer in 60 s"
            return CheckLine("meltano project", False, f"cannot run {executable}: {reason}")
        version, ok = (done.stdout.strip().splitlines() or ["?"])[0], done.returncode == 0
    detail = f"{settings.project_root} ({version}, {len(settings.pipelines)} pipeline(s))"
    return CheckLine("meltano project", ok, detail)


def _installed_meltano(executable: str) -> str | None:
    """`meltano, version X` from the package metadata beside a meltano script, without starting it (a
    second or two); None when it is not that kind of install."""
    path = Path(executable)
    try:
        first = path.read_bytes()[:200].split(b"\n", 1)[0]
    except OSError:
        return None
    if not first.startswith(b"#!") or b"python" not in first:
        return None
    venv = path.resolve().parent.parent
    for metadata in sorted(venv.glob("lib/python*/site-packages/meltano-*.dist-info/METADATA")):
        for line in metadata.read_text(errors="replace").splitlines():
            if line.startswith("Version: "):
                return f"meltano, version {line.removeprefix('Version: ').strip()}"
    return None


def meltano_executable(configured: str) -> str:
    """The meltano flx runs: `meltano_executable` if it is a path or on PATH, else the one beside Python."""
    import sys

    found = shutil.which(configured)
    if found:
        return found
    beside = Path(sys.executable).with_name("meltano")
    return str(beside) if beside.exists() else configured


def _jobs(settings: FlxSettings) -> Iterator[CheckLine]:
    if settings.project_root is None:
        return
    from flx.config import project_document

    document = project_document(settings.project_root)
    plugins = _plugin_index(document)
    for job in document.get("jobs") or []:
        if isinstance(job, dict) and job.get("name"):
            yield _guard(f"job {job['name']}", partial(_job, job, plugins, settings.project_root))


def _plugin_index(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Plugin name → (plugin type, its definition); a mapper's mappings point at the mapper."""
    from flx.config import PLUGIN_TYPES

    index: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind in PLUGIN_TYPES:
        for plugin in (document.get("plugins") or {}).get(kind) or []:
            if isinstance(plugin, dict) and plugin.get("name"):
                index[str(plugin["name"])] = (kind, plugin)
                for mapping in plugin.get("mappings") or []:
                    if isinstance(mapping, dict) and mapping.get("name"):
                        index[str(mapping["name"])] = (kind, plugin)
    return index


def _job(job: dict[str, Any], plugins: dict[str, tuple[str, dict[str, Any]]], root: Path | None) -> CheckLine:
    import difflib

    assert root is not None
    tasks = job.get("tasks") or []
    if isinstance(tasks, str):
        tasks = [tasks]
    blocks: list[str] = []
    for task in tasks:
        blocks += task.split() if isinstance(task, str) else [str(part) for part in task]
    problems: list[str] = []
    used: list[str] = []
    for block in blocks:
        name = block.split(":", 1)[0]
        if name not in plugins:
            close = difflib.get_close_matches(name, list(plugins), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{name} is not a plugin in meltano.yml{hint}")
            continue
        if name in used:
            continue
        used.append(name)
        missing = _not_installed(*plugins[name], plugins, root)
        if missing:
            problems.append(f"{name} {missing}")
    label = f"job {job['name']}"
    if not blocks:
        return CheckLine(label, False, "no tasks")
    if problems:
        return CheckLine(label, False, "; ".join(problems))
    return CheckLine(label, True, f"{' '.join(blocks)} (plugins installed)")


def _not_installed(
    kind: str, plugin: dict[str, Any], plugins: dict[str, tuple[str, dict[str, Any]]], root: Path
) -> str | None:
    """Why the plugin cannot run as installed, or None: Meltano's venv layout under `.meltano`."""
    executable = plugin.get("executable")
    if executable and os.path.isabs(str(executable)):
        return None if os.access(str(executable), os.X_OK) else f"executable {executable} not found"
    directory = _plugin_dir_name(plugin, plugins)
    pip_url = plugin.get("pip_url") or _inherited(plugin, plugins).get("pip_url")
    if pip_url:
        system = Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or root / ".meltano")
        if not (system / kind / directory / "venv").is_dir():
            return "is not installed: run `meltano install`"
        return None
    command = str(executable or plugin.get("name"))
    if kind in ("mappers", "files") or shutil.which(command):
        return None
    return f"has no pip_url and {command} is not on PATH"


def _inherited(plugin: dict[str, Any], plugins: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    parent = plugin.get("inherit_from")
    return plugins[parent][1] if parent and parent in plugins else {}


def _plugin_dir_name(plugin: dict[str, Any], plugins: dict[str, tuple[str, dict[str, Any]]]) -> str:
    """Meltano's rule: an inheriting plugin shares its parent's venv unless it has a pip_url of its own."""
    parent = _inherited(plugin, plugins)
    if not parent:
        return str(plugin["name"])
    if not plugin.get("pip_url") or plugin.get("pip_url") == parent.get("pip_url"):
        return _plugin_dir_name(parent, plugins)
    return str(plugin["name"])
