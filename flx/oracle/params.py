"""From OracleSourceSettings to python-oracledb pool parameters, refusing settings that cannot work.

Checks happen here, at construction, so a missing password is reported when flx starts rather than as a
confusing DPY-4001 in the middle of a night run.
"""

from __future__ import annotations

import oracledb

from flx.oracle.errors import OracleConfigError
from flx.oracle.settings import OracleSourceSettings


def check_settings(settings: OracleSourceSettings) -> None:
    where = f"oracle source {settings.name!r}"
    if not settings.dsn:
        missing = [key for key in ("host", "service_name") if not getattr(settings, key)]
        if missing:
            raise OracleConfigError(
                f"{where}: set `dsn`, or `host` and `service_name` (missing: {', '.join(missing)})"
            )
    if not settings.wallet_location:
        missing = [key for key in ("user", "password") if not getattr(settings, key)]
        if missing:
            names = ", ".join(f"`{m}`" for m in missing)
            raise OracleConfigError(f"{where}: missing {names} (and no wallet)")
    if settings.pool_min < 0 or settings.pool_max < max(1, settings.pool_min) or settings.pool_increment < 0:
        raise OracleConfigError(f"{where}: pool sizes need 0 <= pool_min <= pool_max, pool_max >= 1")
    if settings.call_timeout_ms < 0:
        raise OracleConfigError(f"{where}: call_timeout_ms must be >= 0")


def pool_params(settings: OracleSourceSettings) -> oracledb.PoolParams:
    """Everything but the `dsn` string, which `create_pool`/`connect` take separately when given."""
    check_settings(settings)
    kwargs: dict[str, object] = {
        "min": settings.pool_min,
        "max": settings.pool_max,
        "increment": settings.pool_increment,
        "ping_interval": settings.ping_interval,
        # TIMEDWAIT: an exhausted or unreachable pool answers DPY-4005 instead of blocking the run
        "getmode": oracledb.PoolGetMode.TIMEDWAIT,
        "wait_timeout": int(settings.connect_timeout * 1000),
        "tcp_connect_timeout": settings.tcp_connect_timeout,
        "user": settings.user,
        "password": settings.password.get_secret_value() if settings.password else None,
        "program": "flx",
    }
    if not settings.dsn:
        kwargs |= {
            "host": settings.host,
            "port": settings.port,
            "service_name": settings.service_name,
            "protocol": settings.protocol or ("tcps" if settings.wallet_location else "tcp"),
        }
    if settings.wallet_location:
        # the wallet directory of an Autonomous Database also holds its tnsnames.ora, for dsn aliases
        kwargs |= {"wallet_location": settings.wallet_location, "config_dir": settings.wallet_location}
        if settings.wallet_password:
            kwargs["wallet_password"] = settings.wallet_password.get_secret_value()
    return oracledb.PoolParams(**{k: v for k, v in kwargs.items() if v is not None})


def describe_target(settings: OracleSourceSettings) -> str:
    """Where the source points, for logs and reprs: host/port/service or the dsn, never credentials."""
    if settings.dsn:
        return settings.dsn.rsplit("@", 1)[-1]  # an easy-connect dsn may start with user/password@
    return f"{settings.host}:{settings.port}/{settings.service_name}"
