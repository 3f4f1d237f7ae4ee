"""flx settings: the `flx` utility plugin's config in `meltano.yml`, plus `FLX_*` environment variables.

We read `meltano.yml` ourselves rather than rely on Meltano handing nested settings to a utility as env vars:
`flx run` must work from a plain shell and from a scheduler, and it needs the project's jobs and schedules
too, which Meltano does not pass to plugins. `$VAR` / `${VAR}` in values are expanded as Meltano does, so
secrets stay in the environment or `.env`, never in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flx_core.settings import DatabaseSettings, SettingsError
from orchestrator.alerts.urls import merge_alert_urls
from orchestrator.db_settings import database_env
from orchestrator.oracle.settings import OracleSourceSettings
from orchestrator.validation.spec import CheckSpec

PLUGIN_NAME = "flx"
M = TypeVar("M", bound=BaseModel)


class PipelineSettings(BaseModel):
    """What flx adds to a Meltano job: how to retry, how long to wait, what to check, whom to tell."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    blocks: tuple[str, ...] = ()
    description: str | None = None
    schedule: str | None = None
    timezone: str = "UTC"
    catchup: str = "latest"
    retries: int = Field(default=0, ge=0)
    retry_delay_seconds: float = Field(default=30.0, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_concurrent_executions: int = Field(default=1, ge=1)
    validations: tuple[CheckSpec, ...] = ()
    alert_urls: tuple[str, ...] = ()

    @property
    def meltano_args(self) -> tuple[str, ...]:
        """`meltano run` arguments: the explicit blocks, else the job of the same name."""
        return self.blocks or (self.name,)


class FlxSettings(BaseModel):
    """Everything `flx` needs; built once at start-up and shared through the container."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    project_root: Path | None = None
    meltano_executable: str = "meltano"
    environment: str | None = None
    pipelines: dict[str, PipelineSettings] = {}
    oracle_sources: dict[str, OracleSourceSettings] = {}
    alert_urls: tuple[str, ...] = ()
    alert_repeat_interval_seconds: float = 4 * 3600
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0)
    stale_after_seconds: float = Field(default=60.0, gt=0)
    kill_grace_seconds: float = Field(default=10.0, ge=0)

    def pipeline(self, args: tuple[str, ...]) -> PipelineSettings:
        """The pipeline `flx run ARGS` means: a configured pipeline or job, else ad-hoc blocks."""
        if len(args) == 1 and args[0] in self.pipelines:
            return self.pipelines[args[0]]
        return PipelineSettings(name=" ".join(args), blocks=args)


@dataclass
class _Project:
    root: Path | None
    document: dict[str, Any] = field(default_factory=dict)


def find_project(start: Path | None = None) -> Path | None:
    """The Meltano project root: `MELTANO_PROJECT_ROOT`, else the nearest folder upwards with meltano.yml."""
    if root := os.environ.get("MELTANO_PROJECT_ROOT"):
        return Path(root)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "meltano.yml").is_file():
            return folder
    return None


def load_settings(project_root: Path | None = None, environ: Mapping[str, str] | None = None) -> FlxSettings:
    """Settings from the project's meltano.yml (flx plugin + the active environment) and `FLX_*` env vars."""
    env = dict(os.environ if environ is None else environ)
    project = _read_project(project_root if project_root is not None else find_project())
    environment = env.get("MELTANO_ENVIRONMENT") or project.document.get("default_environment")
    config = _expand(_plugin_config(project.document, environment), env)

    jobs = {job["name"]: job for job in project.document.get("jobs") or [] if "name" in job}
    schedules = {s.get("job") or s.get("name"): s for s in project.document.get("schedules") or []}
    pipelines: dict[str, PipelineSettings] = {}
    for name in {*jobs, *(config.get("pipelines") or {})}:
        raw = dict((config.get("pipelines") or {}).get(name) or {})
        schedule = schedules.get(name) or {}
        raw.setdefault("schedule", schedule.get("interval"))
        if name not in jobs and not raw.get("blocks"):
            raise SettingsError(f"pipeline {name!r}: not a Meltano job, so it needs `blocks`")
        if isinstance(raw.get("blocks"), str):
            raw["blocks"] = raw["blocks"].split()
        pipelines[name] = _model(PipelineSettings, {"name": name, **raw}, f"pipelines.{name}")

    database = DatabaseSettings.from_config(
        {
            **{k: v for k, v in config.items() if k in DatabaseSettings.model_fields},
            **database_env(env),
        }
    )
    oracle = {
        name: _model(OracleSourceSettings, {"name": name, **(raw or {})}, f"oracle_sources.{name}")
        for name, raw in (config.get("oracle_sources") or {}).items()
    }
    options = {
        key: config[key]
        for key in (
            "meltano_executable",
            "alert_repeat_interval_seconds",
            "heartbeat_interval_seconds",
            "stale_after_seconds",
            "kill_grace_seconds",
        )
        if config.get(key) is not None
    }
    return _model(
        FlxSettings,
        {
            "database": database,
            "project_root": project.root,
            "environment": environment,
            "pipelines": pipelines,
            "oracle_sources": oracle,
            "alert_urls": tuple(merge_alert_urls(config.get("alert_urls") or [], env)),
            **options,
        },
        PLUGIN_NAME,
    )


def _read_project(root: Path | None) -> _Project:
    if root is None:
        return _Project(None)
    path = root / "meltano.yml"
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return _Project(root)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML ({exc})") from None
    return _Project(root, document)


def _plugin_config(document: Mapping[str, Any], environment: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for plugin in (document.get("plugins") or {}).get("utilities") or []:
        if plugin.get("name") == PLUGIN_NAME:
            config.update(plugin.get("config") or {})
    for env in document.get("environments") or []:
        if env.get("name") != environment:
            continue
        for plugin in ((env.get("config") or {}).get("plugins") or {}).get("utilities") or []:
            if plugin.get("name") == PLUGIN_NAME:
                config.update(plugin.get("config") or {})
    return config


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _expand(value: Any, env: Mapping[str, str]) -> Any:
    """`$VAR` and `${VAR}` from the environment, recursively; unknown variables stay as written."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: env.get(m[1] or m[2], m[0]), value)
    if isinstance(value, dict):
        return {k: _expand(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    return value


def _model(cls: type[M], data: Mapping[str, Any], where: str) -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"flx settings {where}{'.' + loc if loc else ''}: {first['msg']}") from None
