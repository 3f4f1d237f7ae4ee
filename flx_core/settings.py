"""Database settings shared by target-flx, tap-flx and flx.

The names are MeltanoLabs target-postgres' own, so a `meltano.yml` written for it keeps working when the
plugin name changes. Passwords live in `SecretStr` so that no repr, log line or error can show them.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:  # SQLAlchemy is imported only where a URL or an engine is made: target-flx needs neither
    from sqlalchemy.engine import URL

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the setting, never its secret value."""


class DatabaseSettings(BaseModel):
    """Where the data and the control schema live."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Each plugin's settings schema is generated from these fields (`flx_core.setting_schema`); a
    # `SecretStr` is a secret setting.
    host: str | None = Field(
        default=None,
        description="PostgreSQL host. Leave host and sqlalchemy_url unset "
        "to use the embedded PostgreSQL (data in .flx/pgdata of the Meltano project).",
    )
    port: int = Field(default=5432, description="PostgreSQL port.")
    user: str | None = Field(default=None, description="User name.")
    password: SecretStr | None = Field(default=None, description="Password.")
    database: str | None = Field(default=None, description="Database name.")
    sqlalchemy_url: SecretStr | None = Field(
        default=None,
        description="postgresql:// or postgresql+<driver>:// URL; overrides host, port, user, "
        "password and database.",
    )
    ssl_enable: bool = Field(default=False, description="Connect with TLS.")
    ssl_mode: SslMode = Field(default="verify-full", description="libpq sslmode when ssl_enable is true.")
    ssl_certificate_authority: str | None = Field(
        default=None, description="CA certificate: PEM text or a file path."
    )
    ssl_client_certificate_enable: bool = Field(
        default=False, description="Authenticate with a client certificate."
    )
    ssl_client_certificate: str | None = Field(
        default=None, description="Client certificate: PEM text or path."
    )
    ssl_client_private_key: SecretStr | None = Field(
        default=None, description="Client private key: PEM text or path."
    )
    control_schema: str = Field(
        default="flx", description="Schema of flx's history tables (executions, stream_loads, …)."
    )
    # each plugin documents its own name as the default (`flx_core.plugin_settings`)
    application_name: str = Field(default="flx", description="Shown in pg_stat_activity.")

    @field_validator("control_schema")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"control_schema must be a plain identifier, got {value!r}")
        return value

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DatabaseSettings:
        """Build from a plugin config dict, ignoring the plugin's other settings."""
        fields = {k: v for k, v in config.items() if k in cls.model_fields and v is not None}
        try:
            return cls(**fields)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise SettingsError(str(exc).splitlines()[0] + ": " + _first_error(exc)) from None

    @property
    def is_configured(self) -> bool:
        """False when nothing points at a server, which means: use the embedded one."""
        return bool(self.host or self.sqlalchemy_url)

    def endpoint(self) -> Endpoint:
        """Where to connect, with libpq's parameters (SSL included), without SQLAlchemy when `host` is
        given (a `sqlalchemy_url` is read by SQLAlchemy's own parser)."""
        if self.sqlalchemy_url is not None:
            endpoint = _parse_url(self.sqlalchemy_url.get_secret_value())
        else:
            if not self.host:
                raise SettingsError(
                    "set either `host` or `sqlalchemy_url` (or neither, for the embedded server)"
                )
            endpoint = Endpoint(
                user=self.user or "postgres",
                password=self.password.get_secret_value() if self.password else None,
                host=self.host,
                port=self.port,
                database=self.database or "postgres",
            )
        query = dict(endpoint.query)
        query.setdefault("application_name", self.application_name)
        if self.ssl_enable:
            query["sslmode"] = self.ssl_mode
            if self.ssl_certificate_authority:
                query["sslrootcert"] = _as_file(self.ssl_certificate_authority, "ca.crt")
            if self.ssl_client_certificate_enable:
                if not (self.ssl_client_certificate and self.ssl_client_private_key):
                    raise SettingsError(
                        "ssl_client_certificate_enable needs ssl_client_certificate "
                        "and ssl_client_private_key"
                    )
                query["sslcert"] = _as_file(self.ssl_client_certificate, "client.crt")
                key = _as_file(self.ssl_client_private_key.get_secret_value(), "client.key")
                _check_private_key(key)
                query["sslkey"] = key
        return Endpoint(
            endpoint.user, endpoint.password, endpoint.host, endpoint.port, endpoint.database, query
        )

    def url(self) -> URL:
        """The SQLAlchemy URL (psycopg 3 driver) for this configuration."""
        from sqlalchemy.engine import URL

        e = self.endpoint()
        query = dict(e.query)
        host = e.host
        if host and host.startswith("/"):  # a socket directory travels in the query, as libpq takes it
            query["host"], host = host, None
        return URL.create(
            "postgresql+psycopg",
            username=e.user,
            password=e.password,
            host=host,
            port=e.port,
            database=e.database,
            query=query,
        )

    def where(self) -> str:
        """A log-safe one-line description of the server: password hidden."""
        e = self.endpoint()
        return f"postgresql://{e.user or ''}@{e.host}:{e.port or 5432}/{e.database}"

    def asyncpg_kwargs(self) -> dict[str, Any]:
        """`asyncpg.connect` keyword arguments equal to `url()`, SSL included."""
        e = self.endpoint()
        kwargs: dict[str, Any] = {
            "user": e.user,
            "password": e.password,
            "database": e.database,
            "host": e.host,
            "port": e.port or 5432,
            "server_settings": {"application_name": str(e.query.get("application_name", "flx"))},
        }
        sslmode = e.query.get("sslmode")
        if isinstance(sslmode, str):
            kwargs.update(_asyncpg_ssl(e.query, sslmode))
        return kwargs


@dataclass(frozen=True)
class Endpoint:
    """A server to connect to: libpq's parameters. `host` may be a socket directory."""

    user: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: dict[str, str] = field(default_factory=dict)


def _parse_url(raw: str) -> Endpoint:
    from sqlalchemy.engine import make_url

    try:
        url = make_url(raw)
    except Exception:
        raise SettingsError("sqlalchemy_url is not a valid database URL") from None
    if url.get_backend_name() != "postgresql":
        raise SettingsError(f"sqlalchemy_url must be a postgresql URL, got {url.get_backend_name()!r}")
    query = {k: v for k, v in url.query.items() if isinstance(v, str)}
    host = query.pop("host", None) or url.host
    return Endpoint(url.username, url.password, host, url.port, url.database, query)


def describe(url: URL) -> str:
    """A log-safe one-line description of a URL: password hidden."""
    host = url.query.get("host") or url.host
    return f"postgresql://{url.username or ''}@{host}:{url.port or 5432}/{url.database}"


def libpq_conninfo(url: URL) -> str:
    """A libpq conninfo string for psycopg, from a SQLAlchemy URL (socket-directory hosts included)."""
    from psycopg.conninfo import make_conninfo

    host = url.query.get("host") or url.host
    params = {k: v for k, v in url.query.items() if isinstance(v, str) and k != "host"}
    return make_conninfo(
        host=str(host) if host else None,
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        **params,
    )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(part) for part in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}"
    return str(exc)


def _as_file(value: str, name: str) -> str:
    """Settings may hold a PEM text or a path (as in MeltanoLabs target-postgres); libpq wants a path."""
    if "-----BEGIN" not in value:
        return str(Path(value).expanduser())
    directory = Path(tempfile.mkdtemp(prefix="flx-ssl-"))
    path = directory / name
    path.write_text(value)
    os.chmod(path, 0o600)
    return str(path)


_SSL_FILES = ("sslrootcert", "sslcert", "sslkey")


def _asyncpg_ssl(params: Mapping[str, Any], sslmode: str) -> dict[str, Any]:
    """asyncpg's SSL arguments meaning what libpq's `sslmode` (and the files beside it) mean.

    Given as a DSN holding only `sslmode` and the file parameters, so asyncpg applies libpq's rules
    itself: `disable` never TLS; `allow` plain first, TLS if the server insists; `prefer` TLS if the
    server has it, else plain; `require` TLS, the server's certificate checked against the CA when one is
    given (or ~/.postgresql/root.crt exists); `verify-ca` TLS and the CA checked; `verify-full` that and
    the host name. (An SSLContext instead would make TLS mandatory whatever the mode.)"""
    if sslmode == "disable":
        return {"ssl": False}
    query = {"sslmode": sslmode}
    for name in _SSL_FILES:
        if isinstance(value := params.get(name), str):
            query[name] = value
    return {"dsn": "postgresql://?" + urlencode(query)}


def _check_private_key(path: str) -> None:
    """libpq's rule for a client key file (so asyncpg and libpq connections accept the same files): not
    readable by group or others, except a root-owned file readable by its group (0640)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SettingsError(f"ssl_client_private_key: cannot read {path!r} ({exc.strerror})") from None
    mode = stat.S_IMODE(info.st_mode)
    allowed = 0o037 if info.st_uid == 0 else 0o077
    if stat.S_ISREG(info.st_mode) and mode & allowed:
        raise SettingsError(
            f"ssl_client_private_key: {path!r} has group or world access (mode {mode:o}); libpq refuses "
            "such a key: chmod 600 it (or 640, owned by root)"
        )
