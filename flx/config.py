"""flx settings: the `flx` utility plugin's config in `meltano.yml`, plus `FLX_*` environment variables.

We read `meltano.yml` ourselves rather than rely on Meltano handing nested settings to a utility as env vars:
`flx run` must work from a plain shell and from a scheduler, and it needs the project's jobs and schedules
too, which Meltano does not pass to plugins. `$VAR` / `${VAR}` in values are expanded as Meltano does, so
secrets stay in the environment or `.env`, never in the file.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flx.alerts.defaults import REPEAT_INTERVAL_SECONDS
from flx.alerts.urls import merge_alert_urls
from flx.db_settings import database_env
from flx.oracle.settings import OracleSourceSettings
from flx.project_plugins import PLUGIN_TYPES, PluginInfo, job_blocks, plugin_infos
from flx.validation.spec import CheckSpec
from flx_core.embedded import project_root
from flx_core.settings import DatabaseSettings, SettingsError

PLUGIN_NAME = "flx"
M = TypeVar("M", bound=BaseModel)

# The flx plugin's own settings besides the database ones (`flx.scripts.about` documents each).


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
    # `meltano run` options of one run (`flx run --full-refresh JOB`): not configuration, so never stored
    # with the pipeline.
    run_options: tuple[str, ...] = Field(default=(), exclude=True)

    @property
    def meltano_args(self) -> tuple[str, ...]:
        """`meltano run` arguments: this run's options, then the explicit blocks, else the job of the name."""
        return (*self.run_options, *(self.blocks or (self.name,)))


class FlxSettings(BaseModel):
    """Everything `flx` needs; built once at start-up and shared through the container."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The fields with a description are the flx plugin's own settings: `flx_core.setting_schema` makes its
    # `about` (and so the lock file and the README table) from them. The others are worked out at start-up.
    database: DatabaseSettings = DatabaseSettings()
    project_root: Path | None = None
    meltano_executable: str = Field(
        default="meltano",
        description="The meltano command flx runs jobs with (a name on PATH or a path).",
    )
    environment: str | None = None
    # What meltano.yml defines, for telling a typo from a job: job names, and plugin names by type.
    jobs: tuple[str, ...] = ()
    plugins: dict[str, tuple[str, ...]] = {}
    # What is recorded with each run (`flx.pipeline_steps`, `flx.plugins`): each job's blocks, the plugins.
    job_blocks: dict[str, tuple[str, ...]] = {}
    plugin_details: tuple[PluginInfo, ...] = ()
    alert_urls: tuple[str, ...] = Field(
        default=(),
        description="apprise URLs (slack://, msteams://, mailto://, json://…) alerts go to; "
        "FLX_ALERT_URLS (comma-separated) adds more.",
        json_schema_extra={"secret": True},
    )
    alert_repeat_interval_seconds: float = Field(
        default=REPEAT_INTERVAL_SECONDS,
        description="A still-failing pipeline is re-announced after this long; status changes always are.",
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often a running execution proves it is alive."
    )
    stale_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="An execution without heartbeat for this long is marked failed by the next flx start.",
    )
    kill_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="After SIGTERM on timeout or cancel, SIGKILL the job's process group after this long.",
    )
    log_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Each run's complete log (flx logs, flx ui) is kept this many days; 0 keeps it forever.",
    )
    oracle_sources: dict[str, OracleSourceSettings] = Field(
        default={},
        description="Named Oracle sources for row-count validations: {name: {dsn | host, port, "
        "service_name; user, password; wallet_location, wallet_password; pool_min, pool_max, …}}.",
    )
    pipelines: dict[str, PipelineSettings] = Field(
        default={},
        description="Per Meltano job (or named blocks): retries, retry_delay_seconds, timeout_seconds, "
        "max_concurrent_executions, timezone, validations, alert_urls.",
    )

    def blocks_of(self, pipeline: PipelineSettings) -> tuple[str, ...]:
        """The blocks a pipeline runs: its own `blocks`, else its job's tasks."""
        return pipeline.blocks or self.job_blocks.get(pipeline.name, ())

    def pipeline(self, args: tuple[str, ...]) -> PipelineSettings:
        """The pipeline `flx run ARGS` means: a configured pipeline or job, else ad-hoc blocks."""
        if len(args) == 1 and args[0] in self.pipelines:
            return self.pipelines[args[0]]
        return PipelineSettings(name=" ".join(args), blocks=args)

    def unknown_blocks(self, args: tuple[str, ...]) -> list[str]:
        """The arguments of `flx run ARGS` that are neither a pipeline, a job nor a plugin of the project."""
        if len(args) == 1 and args[0] in self.pipelines:
            return []
        names = {*self.pipelines, *self.jobs, *(n for names in self.plugins.values() for n in names)}
        return [arg for arg in args if arg.split(":", 1)[0] not in names and arg not in names]


# The flx plugin's own settings (besides the database ones): the documented fields of `FlxSettings`.
OWN_SETTINGS = tuple(name for name, field in FlxSettings.model_fields.items() if field.description)
# Those read as they are written; the others are built from their parts (lists, sources, pipelines).
_SCALAR_SETTINGS = tuple(
    name for name in OWN_SETTINGS if name not in ("alert_urls", "oracle_sources", "pipelines")
)


@dataclass
class _Project:
    root: Path | None
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return str(self.root / "meltano.yml") if self.root else "meltano.yml"


def find_project(start: Path | None = None) -> Path | None:
    """The Meltano project root: `MELTANO_PROJECT_ROOT`, else the nearest folder upwards with meltano.yml."""
    return project_root(start)


def load_settings(
    project_root: Path | None = None, environ: Mapping[str, str] | None = None, *, strict: bool = True
) -> FlxSettings:
    """Settings from the project's meltano.yml (flx plugin + the active environment) and `FLX_*` env vars.

    An unknown setting name is an error; with `strict=False` it is left out instead (`flx check` lists
    them all with `settings_with_problems`).
    """
    settings, problems = settings_with_problems(project_root, environ)
    if strict and problems:
        raise SettingsError(problems[0])
    return settings


def project_document(root: Path) -> dict[str, Any]:
    """meltano.yml with its `include_paths` merged in."""
    return _read_project(root).document


def settings_with_problems(
    project_root: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[FlxSettings, list[str]]:
    """The settings without the unknown names, and one line for each unknown name."""
    env = dict(os.environ if environ is None else environ)
    project = _read_project(project_root if project_root is not None else find_project())
    environment = env.get("MELTANO_ENVIRONMENT") or project.document.get("default_environment")
    written = _plugin_config(project.document, environment)
    problems = [f"{project.file}: {problem}" for problem in unknown_settings(written)]
    known = known_settings()
    config = _expand(
        {key: value for key, value, _where in written if key in known and not key.startswith("_")}, env
    )

    jobs = {job["name"]: job for job in _entries(project.document, "jobs") if "name" in job}
    pipelines = _pipelines(project, config, jobs, problems)

    database = DatabaseSettings.from_config(
        {
            **{k: v for k, v in config.items() if k in DatabaseSettings.model_fields},
            **database_env(env),
        }
    )
    oracle = _oracle_sources(project, config, problems)
    options = {key: config[key] for key in _SCALAR_SETTINGS if config.get(key) is not None}
    settings = _model(
        FlxSettings,
        {
            "database": database,
            "project_root": project.root,
            "environment": environment,
            "pipelines": pipelines,
            "jobs": tuple(jobs),
            "plugins": _plugins(project.document),
            "job_blocks": {name: job_blocks(job) for name, job in jobs.items()},
            "plugin_details": plugin_infos(project.document),
            "oracle_sources": oracle,
            "alert_urls": tuple(merge_alert_urls(config.get("alert_urls") or [], env)),
            **options,
        },
        PLUGIN_NAME,
        project.file,
    )
    return settings, problems


def _pipelines(
    project: _Project, config: Mapping[str, Any], jobs: Mapping[str, Any], problems: list[str]
) -> dict[str, PipelineSettings]:
    """Every job and every configured pipeline, with its schedule; unknown names go to `problems`."""
    schedules = {s.get("job") or s.get("name"): s for s in _entries(project.document, "schedules")}
    configured = _mapping(config, "pipelines", project.file)
    pipelines: dict[str, PipelineSettings] = {}
    for name in {*jobs, *configured}:
        raw = dict(_mapping(configured, name, project.file, "pipelines."))
        schedule = schedules.get(name) or {}
        raw.setdefault("schedule", schedule.get("interval"))
        if name not in jobs and not raw.get("blocks"):
            close = _close(name, sorted(jobs))
            raise SettingsError(
                f"{project.file}: pipeline {name!r} is not a Meltano job, so it needs `blocks`"
                + (f" (or did you mean job {close!r}?)" if close else "")
            )
        if isinstance(raw.get("blocks"), str):
            raw["blocks"] = raw["blocks"].split()
        problems += _drop_unknown(raw, PipelineSettings, f"pipelines.{name}", project.file)
        if isinstance(raw.get("validations"), list):
            for position, check in enumerate(raw["validations"]):
                if isinstance(check, dict):
                    where = f"pipelines.{name}.validations[{position}]"
                    problems += _drop_unknown(check, CheckSpec, where, project.file, named=False)
        pipelines[name] = _model(PipelineSettings, {"name": name, **raw}, f"pipelines.{name}", project.file)
    return pipelines


def _oracle_sources(
    project: _Project, config: Mapping[str, Any], problems: list[str]
) -> dict[str, OracleSourceSettings]:
    oracle = {}
    for name in _mapping(config, "oracle_sources", project.file):
        source = dict(_mapping(config["oracle_sources"], name, project.file, "oracle_sources."))
        problems += _drop_unknown(source, OracleSourceSettings, f"oracle_sources.{name}", project.file)
        oracle[name] = _model(
            OracleSourceSettings, {"name": name, **source}, f"oracle_sources.{name}", project.file
        )
    return oracle


def _drop_unknown(
    raw: dict[str, Any], cls: type[BaseModel], where: str, file: str, named: bool = True
) -> list[str]:
    """Remove the keys `cls` does not know from `raw`; one line for each. A `named` model takes its name
    from the key it is written under, so `name` is not one of its settings."""
    reserved = ("name", "run_options") if named else ("run_options",)
    known = [name for name in cls.model_fields if name not in reserved]
    problems = []
    for key in [key for key in raw if key not in known]:
        del raw[key]
        problems.append(f"{file}: unknown setting {key!r} in {where}{_suggest(str(key), known)}")
    return problems


def known_settings() -> tuple[str, ...]:
    """Every top-level setting name of the flx plugin."""
    return (*DatabaseSettings.model_fields, *OWN_SETTINGS)


def unknown_settings(written: list[tuple[str, Any, str]]) -> list[str]:
    """One line per top-level key that is not a flx setting, with the nearest name when there is one.

    Keys starting with `_` are Meltano's plugin extras and left to Meltano.
    """
    known = known_settings()
    problems = []
    for key, _value, where in written:
        if key.startswith("_") or key in known:
            continue
        problems.append(f"unknown setting {key!r} in {where}{_suggest(key, known)}")
    return problems


def _close(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(name: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = _close(name, candidates)
    if close:
        return f": did you mean {close!r}?"
    return f": not a flx setting (the settings here are {', '.join(candidates)})"


def _mapping(config: Mapping[str, Any], key: str, file: str, prefix: str = "") -> Mapping[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(
            f"{file}: flx settings {prefix}{key}: expected a mapping of names to settings, "
            f"got {type(value).__name__}"
        )
    return value


def _entries(document: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    return [entry for entry in document.get(key) or [] if isinstance(entry, dict)]


def _plugins(document: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Plugin names by type; a mapper's mappings are blocks of their own, so they are listed with it."""
    found: dict[str, tuple[str, ...]] = {}
    for kind in PLUGIN_TYPES:
        names: list[str] = []
        for plugin in (document.get("plugins") or {}).get(kind) or []:
            if isinstance(plugin, dict) and plugin.get("name"):
                names.append(str(plugin["name"]))
                names += [str(m["name"]) for m in plugin.get("mappings") or [] if isinstance(m, dict)]
        if names:
            found[kind] = tuple(names)
    return found


def _read_project(root: Path | None) -> _Project:
    if root is None:
        return _Project(None)
    path = root / "meltano.yml"
    try:
        document = _yaml(path)
    except FileNotFoundError:
        return _Project(root)
    for pattern in document.get("include_paths") or []:
        for included in sorted(root.glob(str(pattern))):
            _merge_included(document, _yaml(included))
    return _Project(root, document)


def _yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()
        raise SettingsError(f"{path}: not valid YAML ({' '.join(first[:1] + first[-1:])})") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a YAML mapping at the top, got {type(document).__name__}")
    return document


def _merge_included(document: dict[str, Any], included: Mapping[str, Any]) -> None:
    """Meltano's `include_paths`: jobs, schedules and plugins of the included files join the project's."""
    for key in ("jobs", "schedules", "environments"):
        if included.get(key):
            document[key] = [*(document.get(key) or []), *included[key]]
    for kind, plugins in (included.get("plugins") or {}).items():
        if plugins:
            merged = document.setdefault("plugins", {})
            merged[kind] = [*(merged.get(kind) or []), *plugins]


def _plugin_config(document: Mapping[str, Any], environment: str | None) -> list[tuple[str, Any, str]]:
    """The flx plugin's config as (key, value, where it is written); the environment's entries come last."""
    config: list[tuple[str, Any, str]] = []
    for plugin in (document.get("plugins") or {}).get("utilities") or []:
        if plugin.get("name") == PLUGIN_NAME:
            where = f"plugins.utilities.{PLUGIN_NAME}.config"
            config.extend((key, value, where) for key, value in (plugin.get("config") or {}).items())
    for env in document.get("environments") or []:
        if env.get("name") != environment:
            continue
        for plugin in ((env.get("config") or {}).get("plugins") or {}).get("utilities") or []:
            if plugin.get("name") == PLUGIN_NAME:
                where = f"environments.{environment}.config.plugins.utilities.{PLUGIN_NAME}.config"
                config.extend((key, value, where) for key, value in (plugin.get("config") or {}).items())
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


def _model(cls: type[M], data: Mapping[str, Any], where: str, file: str = "meltano.yml") -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        place = f"{where}{'.' + loc if loc else ''}"
        if first["type"] == "extra_forbidden":
            known = _fields_at(cls, first["loc"][:-1])
            name = str(first["loc"][-1])
            raise SettingsError(f"{file}: unknown flx setting {place}{_suggest(name, known)}") from None
        raise SettingsError(f"{file}: flx settings {place}: {first['msg']}") from None


def _fields_at(cls: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model that `loc` (a pydantic error location) points into."""
    model: Any = cls
    for part in loc:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        info = model.model_fields.get(part)
        if info is None:
            break
        model = _inner_model(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [name for name in model.model_fields if name != "run_options"]
    return []


def _inner_model(annotation: Any) -> Any:
    """The model inside `tuple[Model, ...]`, `dict[str, Model]`, `Model | None`; else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
    return annotation
