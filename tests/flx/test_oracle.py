"""OracleConnectionManager without an Oracle server: real driver failures against local sockets."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import oracledb
import pytest
from oracledb import errors as driver_errors
from pydantic import SecretStr

from flx.oracle.alerting import alert_for
from flx.oracle.errors import OracleConfigError, classify
from flx.oracle.identifiers import oracle_table
from flx.oracle.manager import OracleConnectionManager
from flx.oracle.settings import OracleSourceSettings
from flx.sql_names import IdentifierError
from tests.flx.webhook import closed_port

PASSWORD = "tiger-s3cr3t-pw"


def settings(**overrides: object) -> OracleSourceSettings:
    fields: dict[str, object] = {
        "name": "erp",
        "host": "127.0.0.1",
        "port": closed_port(),
        "service_name": "ORCLPDB1",
        "user": "scott",
        "password": PASSWORD,
        "tcp_connect_timeout": 2.0,
        "connect_timeout": 5.0,
    }
    fields.update(overrides)
    return OracleSourceSettings.model_validate(fields)


@pytest.fixture
def down() -> Iterator[OracleConnectionManager]:
    with OracleConnectionManager(settings()) as manager:
        yield manager


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that accepts and never says a word: the login handshake waits forever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in held:
        conn.close()


@pytest.fixture
def slamming_port() -> Iterator[int]:
    """A listener that closes every connection at once, like a dying database host."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


# --- health check and real driver failures -----------------------------------------------------------


def test_health_check_on_closed_port(down: OracleConnectionManager) -> None:
    started = time.monotonic()
    result = down.health_check()
    assert time.monotonic() - started < down.settings.tcp_connect_timeout
    assert result.ok is False
    assert (result.category, result.code) == ("connectivity", "DPY-6005")
    assert "\n" not in result.message and "refused" in result.message.lower()
    assert PASSWORD not in result.message
    assert result.failure is not None and result.failure.severity == "error"


def test_health_check_gives_up_on_a_silent_server(silent_port: int) -> None:
    manager = OracleConnectionManager(settings(port=silent_port, connect_timeout=1.0))
    started = time.monotonic()
    result = manager.health_check()
    assert time.monotonic() - started < 3
    assert (result.ok, result.category) == (False, "timeout")
    assert "1s" in result.message


def test_connection_slammed_shut_is_connectivity(slamming_port: int) -> None:
    result = OracleConnectionManager(settings(port=slamming_port)).health_check()
    assert (result.ok, result.category, result.code) == (False, "connectivity", "DPY-6005")
    assert "DPY-4011" in result.message


def test_count_rows_on_closed_port_raises_a_classifiable_error(down: OracleConnectionManager) -> None:
    with pytest.raises(oracledb.OperationalError) as info:
        down.count_rows(table="SALES.ORDERS")
    failure = classify(info.value)
    assert (failure.category, failure.code, failure.recoverable, failure.severity) == (
        "connectivity",
        "DPY-6005",
        True,
        "error",
    )
    assert PASSWORD not in str(info.value)
    started = time.monotonic()
    down.close()
    assert time.monotonic() - started < 5


def test_count_rows_needs_exactly_one_of_table_and_query(down: OracleConnectionManager) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        down.count_rows()
    with pytest.raises(ValueError, match="exactly one"):
        down.count_rows(table="A.B", query="SELECT 1 FROM dual")
    with pytest.raises(IdentifierError):
        down.count_rows(table="sales.orders; DROP TABLE x")


# --- classification ----------------------------------------------------------------------------------


def _driver_error(message: str, code: int = 0) -> Exception:
    """What the driver raises for a server error: its own `_Error`, in its own exception class."""
    error = driver_errors._Error(message, code=code)
    return error.exc_type(error)


@pytest.mark.parametrize(
    ("message", "code", "category", "severity", "full_code"),
    [
        (
            "ORA-01017: invalid credential or not authorized; logon denied",
            1017,
            "authentication",
            "critical",
            None,
        ),
        ("ORA-28000: The account is locked.", 28000, "authentication", "critical", None),
        ("ORA-28001: the password has expired", 28001, "authentication", "critical", None),
        (
            "ORA-12541: Cannot connect. No listener at host 10.0.0.1 port 1521.",
            12541,
            "connectivity",
            "error",
            None,
        ),
        (
            "ORA-12514: Cannot connect to database. Service X is not registered",
            12514,
            "connectivity",
            "error",
            None,
        ),
        ("ORA-03113: end-of-file on communication channel", 3113, "connectivity", "error", "DPY-4011"),
        ("ORA-03136: inbound connection timed out", 3136, "timeout", "warning", None),
        ("ORA-00942: table or view does not exist", 942, "other", "error", None),
    ],
)
def test_classify_server_errors(
    message: str, code: int, category: str, severity: str, full_code: str | None
) -> None:
    failure = classify(_driver_error(message, code))
    assert (failure.category, failure.severity) == (category, severity)
    assert failure.code == (full_code or message.split(":")[0])
    assert "\n" not in failure.message and "Help:" not in failure.message


def test_classify_driver_side_errors() -> None:
    timeout = driver_errors._create_exception(driver_errors.ERR_CALL_TIMEOUT_EXCEEDED, timeout=300000)
    failure = classify(timeout)
    assert (failure.category, failure.code, failure.severity, failure.recoverable) == (
        "timeout",
        "DPY-4024",
        "warning",
        True,
    )
    closed = classify(driver_errors._create_exception(driver_errors.ERR_CONNECTION_CLOSED))
    assert (closed.category, closed.code, closed.recoverable) == ("connectivity", "DPY-4011", True)
    pool = classify(driver_errors._create_exception(driver_errors.ERR_POOL_NO_CONNECTION_AVAILABLE))
    assert (pool.category, pool.code) == ("timeout", "DPY-4005")


def test_classify_plain_python_errors() -> None:
    assert classify(TimeoutError("slow")).category == "timeout"
    assert classify(ConnectionRefusedError(111, "Connection refused")).category == "connectivity"
    other = classify(ValueError("bad\nthing"))
    assert (other.category, other.code, other.recoverable, other.message) == (
        "other",
        None,
        False,
        "ValueError: bad / thing",
    )


# --- parameters and settings -------------------------------------------------------------------------


def test_params_from_host_port_service() -> None:
    manager = OracleConnectionManager(
        settings(port=1522, pool_min=2, pool_max=6, pool_increment=2, ping_interval=30, connect_timeout=12)
    )
    params = manager.params
    assert manager.dsn is None
    assert (params.host, params.port, params.service_name, params.protocol) == (
        "127.0.0.1",
        1522,
        "ORCLPDB1",
        "tcp",
    )
    assert params.user == "scott" and params.tcp_connect_timeout == 2.0
    assert (params.min, params.max, params.increment, params.ping_interval) == (2, 6, 2, 30)
    assert params.getmode == oracledb.PoolGetMode.TIMEDWAIT and params.wait_timeout == 12_000
    assert "(SERVICE_NAME=ORCLPDB1)" in params.get_connect_string()


def test_params_from_dsn_and_wallet(tmp_path: object) -> None:
    dsn = (
        "(DESCRIPTION=(ADDRESS=(PROTOCOL=tcps)(HOST=adb.example.com)(PORT=1522))"
        "(CONNECT_DATA=(SERVICE_NAME=x)))"
    )
    manager = OracleConnectionManager(
        OracleSourceSettings(
            name="adb", dsn=dsn, wallet_location=str(tmp_path), wallet_password=SecretStr("w4llet-pw")
        )
    )
    assert manager.dsn == dsn
    assert manager.params.wallet_location == str(tmp_path)
    assert manager.params.config_dir == str(tmp_path)
    assert "w4llet-pw" not in repr(manager) and "w4llet-pw" not in repr(manager.params)

    tcps = OracleConnectionManager(
        settings(user=None, password=None, wallet_location=str(tmp_path), host="adb.example.com")
    )
    assert tcps.params.protocol == "tcps"
    assert "<wallet>@adb.example.com" in repr(tcps)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"host": None}, "host"),
        ({"service_name": None}, "service_name"),
        ({"host": None, "service_name": None}, "host, service_name"),
        ({"password": None}, "`password`"),
        ({"user": None, "password": None}, "`user`, `password`"),
        ({"pool_min": 5, "pool_max": 2}, "pool_min"),
    ],
)
def test_missing_settings_are_refused_at_construction(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(OracleConfigError) as info:
        OracleConnectionManager(settings(**overrides))
    assert "'erp'" in str(info.value) and named in str(info.value)
    assert PASSWORD not in str(info.value)


def test_password_never_shows(down: OracleConnectionManager) -> None:
    texts = [repr(down), str(down), repr(down.settings), str(down.settings), repr(down.params)]
    assert all(PASSWORD not in text for text in texts)
    assert "scott@127.0.0.1" in repr(down)
    easy = OracleConnectionManager(
        OracleSourceSettings(name="e", dsn=f"scott/{PASSWORD}@db:1521/svc", user="u", password=SecretStr("p"))
    )
    assert PASSWORD not in repr(easy)


def test_oracle_table_quoting() -> None:
    assert oracle_table("sales.orders") == '"SALES"."ORDERS"'
    assert oracle_table('"Sales"."Order Lines"') == '"Sales"."Order Lines"'
    assert oracle_table("ORDERS$2024") == '"ORDERS$2024"'
    for bad in ("a;b", "a.b.c", "1abc", '"x""y"', "a b", "", "a."):
        with pytest.raises(IdentifierError):
            oracle_table(bad)


# --- alerts ------------------------------------------------------------------------------------------


def test_alert_for_failures(down: OracleConnectionManager) -> None:
    result = down.health_check()
    assert result.failure is not None
    event = alert_for(result.failure, "erp", "daily_orders")
    assert (event.kind, event.severity, event.check_name) == ("connectivity", "error", "oracle:erp")
    assert event.fingerprint == "daily_orders:connectivity:oracle:erp"
    assert "DPY-6005" in event.title and event.details["code"] == "DPY-6005"

    auth = classify(_driver_error("ORA-01017: invalid credential or not authorized; logon denied", 1017))
    auth_event = alert_for(auth, "erp", "daily_orders")
    assert (auth_event.kind, auth_event.severity) == ("authentication", "critical")
    other = classify(_driver_error("ORA-00942: table or view does not exist", 942))
    assert alert_for(other, "erp", "daily_orders").kind == "failure"


# --- a real server, when one is configured -----------------------------------------------------------


@pytest.fixture
def real_oracle() -> Iterator[OracleConnectionManager]:
    dsn = os.environ.get("FLX_ORACLE_DSN")
    if not dsn:
        pytest.skip("FLX_ORACLE_DSN is not set")
    source = OracleSourceSettings(
        name="it",
        dsn=dsn,
        user=os.environ.get("FLX_ORACLE_USER"),
        password=SecretStr(os.environ.get("FLX_ORACLE_PASSWORD", "")),
    )
    with OracleConnectionManager(source) as manager:
        yield manager


@pytest.mark.oracle
def test_real_oracle(real_oracle: OracleConnectionManager) -> None:
    health = real_oracle.health_check()
    assert health.ok, health.message
    assert real_oracle.count_rows(query="SELECT 1 FROM dual") == 1
    assert real_oracle.count_rows(query="SELECT level FROM dual CONNECT BY level <= 7;") == 7
