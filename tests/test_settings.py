"""Database settings: MeltanoLabs names, URL forms, SSL, and secrets that never leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from flx.db_settings import database_settings
from flx_core.settings import DatabaseSettings, SettingsError, describe, libpq_conninfo


def test_host_settings_build_a_url() -> None:
    s = DatabaseSettings.from_config(
        {
            "host": "db.example",
            "port": 6543,
            "user": "u",
            "password": "p@ss/w:rd",
            "database": "wh",
            "unrelated_setting": 1,
        }
    )
    url = s.url()
    assert (url.host, url.port, url.username, url.password, url.database) == (
        "db.example",
        6543,
        "u",
        "p@ss/w:rd",
        "wh",
    )
    assert url.drivername == "postgresql+psycopg"
    assert s.is_configured


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:secret@h:5/d",
        "postgresql+psycopg2://u:secret@h:5/d",
        "postgresql+asyncpg://u:secret@h:5/d",
    ],
)
def test_sqlalchemy_url_forms(raw: str) -> None:
    url = DatabaseSettings(sqlalchemy_url=raw).url()  # type: ignore[arg-type]
    assert url.drivername == "postgresql+psycopg" and url.password == "secret" and url.database == "d"


def test_not_postgres_is_refused() -> None:
    with pytest.raises(SettingsError, match="postgresql"):
        DatabaseSettings(sqlalchemy_url="mysql://u:p@h/d").url()  # type: ignore[arg-type]


def test_nothing_configured_means_embedded() -> None:
    assert not DatabaseSettings().is_configured


def test_secrets_never_in_repr_describe_or_errors() -> None:
    s = DatabaseSettings.from_config(
        {"host": "h", "user": "u", "password": "hunter2", "ssl_client_private_key": "KEYDATA"}
    )
    assert "hunter2" not in repr(s) and "KEYDATA" not in repr(s)
    assert "hunter2" not in describe(s.url())
    with pytest.raises(SettingsError) as info:
        DatabaseSettings.from_config({"sqlalchemy_url": "not a url with hunter2"}).url()
    assert "hunter2" not in str(info.value)


def test_ssl_settings_reach_libpq_and_asyncpg(tmp_path: object) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    s = DatabaseSettings.from_config(
        {"host": "h", "ssl_enable": True, "ssl_mode": "require", "ssl_certificate_authority": pem}
    )
    url = s.url()
    assert url.query["sslmode"] == "require"
    ca_path = url.query["sslrootcert"]
    assert isinstance(ca_path, str) and Path(ca_path).read_text() == pem
    assert "sslmode=require" in libpq_conninfo(url)


def test_bad_control_schema_is_refused() -> None:
    with pytest.raises(SettingsError, match="control_schema"):
        DatabaseSettings.from_config({"control_schema": 'x"; drop table y; --'})


def test_flx_reads_environment() -> None:
    s = database_settings(
        {
            "FLX_DATABASE_URL": "postgresql://a:b@c/d",
            "FLX_CONTROL_SCHEMA": "ops",
            "FLX_APPLICATION_NAME": "nightly",
        }
    )
    assert s.url().host == "c" and s.control_schema == "ops" and s.application_name == "nightly"
    assert database_settings({"FLX_HOST": "h2", "FLX_PORT": "7"}).url().port == 7
