"""`ssl_mode` means what libpq documents, for the asyncpg pool and the libpq (psycopg) control-schema
connection alike: against a server without TLS, one with TLS, and one that insists on TLS."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from flx_core.settings import DatabaseSettings, SettingsError, libpq_conninfo

BIN = Path("/usr/lib/postgresql/15/bin")
MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def _asyncpg_ssl(settings: DatabaseSettings) -> bool | str:
    async def connect() -> bool:
        conn = await asyncpg.connect(**settings.asyncpg_kwargs(), timeout=10)
        try:
            return bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
        finally:
            await conn.close()

    try:
        return asyncio.run(connect())
    except Exception as exc:
        return f"refused ({type(exc).__name__})"


def _libpq_ssl(settings: DatabaseSettings) -> bool | str:
    try:
        with psycopg.connect(libpq_conninfo(settings.url()), connect_timeout=10) as conn:
            row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            assert row is not None
            return bool(row[0])
    except psycopg.OperationalError:
        return "refused"


def _outcome(settings: DatabaseSettings) -> bool | str:
    """True/False (connected with / without TLS) or "refused", the same for both drivers."""
    via_asyncpg, via_libpq = _asyncpg_ssl(settings), _libpq_ssl(settings)
    if isinstance(via_asyncpg, str) and isinstance(via_libpq, str):
        return "refused"
    assert via_asyncpg == via_libpq, (settings.ssl_mode, via_asyncpg, via_libpq)
    return via_asyncpg


@dataclass
class TlsServer:
    port: int
    ca: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module", params=["tls", "tls-only"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsServer]:
    """A throwaway PostgreSQL with TLS (a certificate for `localhost` from a test CA); `tls-only` refuses
    plain connections."""
    if not (BIN / "initdb").exists() or shutil.which("openssl") is None or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL 15's initdb, openssl and runuser")
    root = Path(tempfile.mkdtemp(prefix=f"flx-{request.param}-"))  # the server's user must reach it
    certs = root / "certs"
    certs.mkdir()
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=flx test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=certs,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=certs,
    )
    (certs / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
        cwd=certs,
    )
    data = root / "data"
    shutil.chown(root, "postgres")
    for path in certs.iterdir():
        shutil.chown(path, "postgres")
    shutil.chown(certs, "postgres")
    os.chmod(certs / "server.key", 0o600)
    run = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run, str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    plain = "" if request.param == "tls-only" else "host all all 127.0.0.1/32 trust\n"
    (data / "pg_hba.conf").write_text(f"hostssl all all 127.0.0.1/32 trust\n{plain}local all all trust\n")
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c ssl=on "
        f"-c ssl_cert_file={certs / 'server.crt'} -c ssl_key_file={certs / 'server.key'}"
    )
    subprocess.run(
        [*run, str(BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield TlsServer(port, certs / "ca.crt")
    finally:
        subprocess.run(
            [*run, str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _settings(port: int, mode: str, host: str = "localhost", **extra: Any) -> DatabaseSettings:
    return DatabaseSettings.from_config(
        {
            "host": host,
            "port": port,
            "user": "postgres",
            "database": "postgres",
            "ssl_enable": True,
            "ssl_mode": mode,
            **extra,
        }
    )


def test_modes_against_a_server_with_tls(tls_server: TlsServer, request: pytest.FixtureRequest) -> None:
    tls_only = "tls-only" in request.node.callspec.id
    ca = {"ssl_certificate_authority": str(tls_server.ca)}
    got = {mode: _outcome(_settings(tls_server.port, mode, **ca)) for mode in MODES}
    assert got == {
        "disable": "refused" if tls_only else False,
        "allow": tls_only,  # plain first, TLS only when the server insists
        "prefer": True,
        "require": True,
        "verify-ca": True,
        "verify-full": True,
    }
    # the certificate names `localhost`: verify-full refuses the address, verify-ca does not check names
    assert _outcome(_settings(tls_server.port, "verify-full", host="127.0.0.1", **ca)) == "refused"
    assert _outcome(_settings(tls_server.port, "verify-ca", host="127.0.0.1", **ca)) is True
    # without the CA: require does not verify; the verify modes cannot
    assert _outcome(_settings(tls_server.port, "require")) is True
    assert _outcome(_settings(tls_server.port, "verify-ca")) == "refused"


def test_modes_against_a_server_without_tls(database_url: Any, tmp_path: Path) -> None:
    """`prefer` with a CA file connects without TLS when the server has none (as libpq does)."""
    port = database_url.port or 5432
    ca = tmp_path / "ca.crt"
    ca.write_text("not used: the server offers no TLS\n")
    got = {mode: _outcome(_settings(port, mode, host="127.0.0.1")) for mode in MODES}
    assert got == {
        "disable": False,
        "allow": False,
        "prefer": False,
        "require": "refused",
        "verify-ca": "refused",
        "verify-full": "refused",
    }
    assert _outcome(_settings(port, "prefer", host="127.0.0.1", ssl_certificate_authority=str(ca))) is False


def test_a_private_key_others_can_read_is_refused_for_both(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n")
    config: dict[str, Any] = {
        "ssl_client_certificate_enable": True,
        "ssl_client_certificate": str(key),
        "ssl_client_private_key": str(key),
    }
    os.chmod(key, 0o644)
    if os.geteuid() == 0:
        os.chown(key, 1, 1)  # not root's: libpq's stricter rule applies
    with pytest.raises(SettingsError, match="group or world access"):
        _settings(5432, "require", **config).url()
    os.chmod(key, 0o600)
    assert _settings(5432, "require", **config).url().query["sslkey"] == str(key)
