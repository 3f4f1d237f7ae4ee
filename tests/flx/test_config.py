"""flx settings from a real meltano.yml: jobs, schedules, the flx plugin, environments, env vars."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from flx.config import find_project, load_settings
from flx.execution.runner import MAX_RETRY_DELAY_SECONDS, retry_delay
from flx_core.settings import SettingsError

MELTANO_YML = {
    "version": 1,
    "default_environment": "dev",
    "environments": [
        {"name": "dev"},
        {
            "name": "prod",
            "config": {
                "plugins": {
                    "utilities": [{"name": "flx", "config": {"alert_urls": ["json://alerts.example/prod"]}}]
                }
            },
        },
    ],
    "plugins": {
        "utilities": [
            {
                "name": "flx",
                "config": {
                    "host": "db.example",
                    "password": "$PG_PASSWORD",
                    "heartbeat_interval_seconds": 2,
                    "oracle_sources": {"erp": {"dsn": "erp-db/ORCL", "user": "etl", "password": "${ORA_PW}"}},
                    "pipelines": {
                        "daily": {
                            "retries": 3,
                            "timeout_seconds": 600,
                            "timezone": "Europe/Lisbon",
                            "validations": [
                                {"name": "rows", "kind": "min_rows", "table": "raw.orders", "min_rows": 1}
                            ],
                        },
                        "adhoc": {"blocks": "tap-a target-b dbt:run"},
                    },
                },
            }
        ]
    },
    "jobs": [{"name": "daily", "tasks": ["tap-a target-b"]}, {"name": "plain", "tasks": ["tap-c target-b"]}],
    "schedules": [{"name": "daily-schedule", "job": "daily", "interval": "0 2 * * *"}],
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(MELTANO_YML))
    (tmp_path / "sub").mkdir()
    return tmp_path


def test_jobs_schedules_and_flx_settings_become_pipelines(project: Path) -> None:
    settings = load_settings(project, {"PG_PASSWORD": "pw-secret", "ORA_PW": "ora-secret"})
    assert set(settings.pipelines) == {"daily", "plain", "adhoc"}
    daily = settings.pipelines["daily"]
    assert (daily.retries, daily.timeout_seconds, daily.schedule, daily.timezone) == (
        3,
        600,
        "0 2 * * *",
        "Europe/Lisbon",
    )
    assert daily.meltano_args == ("daily",)
    assert daily.validations[0].kind == "min_rows"
    assert settings.pipelines["plain"].retries == 0
    assert settings.pipelines["adhoc"].meltano_args == ("tap-a", "target-b", "dbt:run")
    assert settings.heartbeat_interval_seconds == 2
    # $VAR and ${VAR} come from the environment, as Meltano expands them.
    assert settings.database.password is not None
    assert settings.database.password.get_secret_value() == "pw-secret"
    oracle = settings.oracle_sources["erp"]
    assert oracle.password is not None and oracle.password.get_secret_value() == "ora-secret"
    assert "ora-secret" not in repr(settings) and "pw-secret" not in repr(settings)


def test_unknown_args_are_ad_hoc_blocks(project: Path) -> None:
    settings = load_settings(project, {})
    pipeline = settings.pipeline(("tap-x", "target-y"))
    assert pipeline.name == "tap-x target-y"
    assert pipeline.meltano_args == ("tap-x", "target-y")
    assert settings.pipeline(("daily",)).retries == 3


def test_environment_overrides_and_env_vars(project: Path) -> None:
    settings = load_settings(
        project,
        {
            "MELTANO_ENVIRONMENT": "prod",
            "FLX_ALERT_URLS": "json://hooks.example/a, json://hooks.example/b",
            "FLX_DATABASE_URL": "postgresql://u:p@override.example/db",
        },
    )
    assert settings.alert_urls == (
        "json://alerts.example/prod",
        "json://hooks.example/a",
        "json://hooks.example/b",
    )
    assert settings.database.url().host == "override.example"
    assert settings.environment == "prod"


def test_bad_settings_name_the_place(project: Path) -> None:
    document = yaml.safe_load((project / "meltano.yml").read_text())
    document["plugins"]["utilities"][0]["config"]["pipelines"]["daily"]["retries"] = -1
    (project / "meltano.yml").write_text(yaml.safe_dump(document))
    with pytest.raises(SettingsError, match=r"pipelines\.daily\.retries"):
        load_settings(project, {})

    document["plugins"]["utilities"][0]["config"]["pipelines"] = {"nojob": {"retries": 1}}
    (project / "meltano.yml").write_text(yaml.safe_dump(document))
    with pytest.raises(SettingsError, match=r"nojob.*not a Meltano job"):
        load_settings(project, {})


def test_project_is_found_from_a_subfolder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MELTANO_PROJECT_ROOT", raising=False)
    assert find_project(project / "sub") == project
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(project / "sub"))
    assert find_project(project) == project / "sub"


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [[retry_delay(10, attempt, rng) for _ in range(200)] for attempt in (1, 2, 3)]
    for attempt, samples in enumerate(delays, start=1):
        base = 10 * 2 ** (attempt - 1)
        assert min(samples) >= 0.5 * base and max(samples) <= 1.5 * base
        assert max(samples) - min(samples) > 0.5 * base, "jitter spreads retries"
    assert retry_delay(10, 40, rng) <= 1.5 * MAX_RETRY_DELAY_SECONDS
