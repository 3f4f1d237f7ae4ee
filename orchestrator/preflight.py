"""`flx check`: everything a run depends on, tested before 3 a.m. rather than during it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from flx_core import migrate
from orchestrator.alerts.manager import AlertManager
from orchestrator.config import FlxSettings
from orchestrator.container import FlxContainer, OracleSources
from orchestrator.runner import Runner


@dataclass(frozen=True)
class CheckLine:
    name: str
    ok: bool
    detail: str


def preflight(container: FlxContainer) -> list[CheckLine]:
    settings = container.resolve(FlxSettings)
    lines = [_postgres(container.resolve(Engine), settings)]
    for name, manager in container.resolve(OracleSources).items():
        health = manager.health_check()
        detail = (
            f"connected in {health.latency_ms:.0f} ms"
            if health.ok
            else f"{health.category}: {health.message}"
        )
        lines.append(CheckLine(f"oracle {name}", health.ok, detail))
    lines.append(_meltano(container.resolve(Runner), settings))
    alerts = container.resolve(AlertManager)
    channels = alerts.channels
    lines.append(
        CheckLine(
            "alert channels",
            True,
            ", ".join(channels) if channels else "none configured: alerts go to the log only",
        )
    )
    return lines


def _postgres(engine: Engine, settings: FlxSettings) -> CheckLine:
    schema = settings.database.control_schema
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        revision = migrate.current_revision(engine, schema)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        return CheckLine("postgresql", False, (str(cause).splitlines() or [type(exc).__name__])[0])
    head = migrate.head_revision()
    state = "up to date" if revision == head else f"at {revision}, head is {head}"
    return CheckLine(
        "postgresql",
        revision == head,
        f"{engine.url.render_as_string()} (server {version}), {schema} {state}",
    )


def _meltano(runner: Runner, settings: FlxSettings) -> CheckLine:
    if settings.project_root is None:
        return CheckLine("meltano project", False, "no meltano.yml here or above; run flx inside a project")
    executable = runner.meltano_executable()
    try:
        done = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        return CheckLine("meltano project", False, f"cannot run {executable}: {exc.strerror}")
    version = (done.stdout.strip().splitlines() or ["?"])[0]
    detail = f"{settings.project_root} ({version}, {len(settings.pipelines)} pipeline(s))"
    return CheckLine("meltano project", done.returncode == 0, detail)
