"""Settings of one Oracle source, as written under `oracle_sources.<name>` in the flx plugin config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr


class OracleSourceSettings(BaseModel):
    """Either `dsn`, or `host` + `service_name` (+ `port`); never a default user or password.

    `tcp_connect_timeout` only bounds the TCP connect; `connect_timeout` bounds the whole wait for a
    usable session (a server that accepts and then says nothing would otherwise hold a run forever).
    `protocol` defaults to tcps when a wallet is given, tcp otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dsn: str | None = None
    host: str | None = None
    port: int = 1521
    service_name: str | None = None
    protocol: Literal["tcp", "tcps"] | None = None
    user: str | None = None
    password: SecretStr | None = None
    wallet_location: str | None = None
    wallet_password: SecretStr | None = None
    pool_min: int = 1
    pool_max: int = 4
    pool_increment: int = 1
    ping_interval: int = 60
    tcp_connect_timeout: float = 10.0
    connect_timeout: float = 30.0
    call_timeout_ms: int = 300_000
