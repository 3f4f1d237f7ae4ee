"""The JSON Schema of `flx_core.settings.DatabaseSettings` for the plugins' `--about` and config validation.

One definition for target-flx, tap-flx and the flx utility, so the three plugins document the same names
the same way; only the default `application_name` differs (each shows up under its own name in
pg_stat_activity).
"""

from __future__ import annotations

from singer_sdk import typing as th


def database_settings_schema(application_name: str) -> th.PropertiesList:
    """The JSON Schema of `DatabaseSettings`, as a singer-sdk properties list."""
    return th.PropertiesList(
        th.Property(
            "host",
            th.StringType,
            description="PostgreSQL host. Leave host and sqlalchemy_url unset "
            "to use the embedded PostgreSQL (data in .flx/pgdata of the Meltano project).",
        ),
        th.Property("port", th.IntegerType, default=5432, description="PostgreSQL port."),
        th.Property("user", th.StringType, description="User name."),
        th.Property("password", th.StringType, secret=True, description="Password."),
        th.Property("database", th.StringType, description="Database name."),
        th.Property(
            "sqlalchemy_url",
            th.StringType,
            secret=True,
            description="postgresql:// or postgresql+<driver>:// URL; overrides host, port, user, "
            "password and database.",
        ),
        th.Property("ssl_enable", th.BooleanType, default=False, description="Connect with TLS."),
        th.Property(
            "ssl_mode",
            th.StringType,
            default="verify-full",
            allowed_values=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
            description="libpq sslmode when ssl_enable is true.",
        ),
        th.Property(
            "ssl_certificate_authority",
            th.StringType,
            description="CA certificate: PEM text or a file path.",
        ),
        th.Property(
            "ssl_client_certificate_enable",
            th.BooleanType,
            default=False,
            description="Authenticate with a client certificate.",
        ),
        th.Property(
            "ssl_client_certificate", th.StringType, description="Client certificate: PEM text or path."
        ),
        th.Property(
            "ssl_client_private_key",
            th.StringType,
            secret=True,
            description="Client private key: PEM text or path.",
        ),
        th.Property(
            "control_schema",
            th.StringType,
            default="flx",
            description="Schema of flx's history tables (executions, stream_loads, …).",
        ),
        th.Property(
            "application_name",
            th.StringType,
            default=application_name,
            description="Shown in pg_stat_activity.",
        ),
    )
