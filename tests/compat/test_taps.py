"""Real taps from PyPI reading real PostgreSQL and MariaDB tables full of ordinary and awkward types, loaded
by target-flx and by MeltanoLabs target-postgres 0.8.1; every stored value compared with what the tap sent.

The comparison is semantic where the type is (instants, exact decimals, JSON values) and exact for text.
target-flx must store every value the tap sent, exactly; the reference's differences are reported (printed
with `-s`) but do not fail the suite. Where a tap itself changes a source value (see the README's table),
the target is judged against what the tap sent: a loader cannot undo a tap's change, but it adds none.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from bench.anchors import ensure
from flx_core.settings import libpq_conninfo
from target_flx.types import column_type
from tests.compat import sources
from tests.compat.runner import RUNS, extract
from tests.compat.taps import REFERENCE, TAPS

pytestmark = pytest.mark.compat

UTC = datetime.UTC


@pytest.fixture(scope="module")
def executables() -> dict[str, Path | str]:
    """Every tap and the reference installed at once (the installs overlap); a failed install is its
    error text, and that tap's test is skipped saying so."""

    def install(name: str) -> Path | str:
        anchor = REFERENCE if name == "reference" else TAPS[name]
        try:
            return ensure(anchor, log=False)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            return str(exc).splitlines()[0]

    names = ["reference", *TAPS]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(install, names), strict=True))


@pytest.fixture(scope="module")
def source_tables() -> Iterator[None]:
    sources.create_postgres()
    if sources.mysql_available():
        sources.create_mysql()
    yield
    sources.drop_all()


@pytest.fixture
def schemas(database_url: URL, tap: str) -> Iterator[tuple[str, str]]:
    suffix = tap.replace("-", "_")
    names = (f"flx_{suffix}", f"ref_{suffix}")
    yield names
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _load(command: list[str], config: dict[str, Any], singer: Path, workdir: Path, name: str) -> str:
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    with singer.open() as stdin:
        proc = subprocess.run(
            [*command, "--config", str(path)],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "FLX_DEBUG": "0"},
        )
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["(no output)"])[-1]


@pytest.mark.parametrize("tap", list(TAPS))
def test_tap_values_arrive_exactly(
    tap: str,
    executables: dict[str, Path | str],
    source_tables: None,
    schemas: tuple[str, str],
    database_url: URL,
    tmp_path: Path,
) -> None:
    executable = executables[tap]
    if isinstance(executable, str):
        pytest.skip(f"{tap} cannot be installed here: {executable}")
    if "mysql" in tap and not sources.mysql_available():
        pytest.skip("no MariaDB at 127.0.0.1:3306")
    singer = extract(RUNS[tap], executable, tmp_path)
    flx_schema, ref_schema = schemas
    url = database_url.render_as_string(hide_password=False)
    flx_error = _load(
        [str(Path(sys.executable).with_name("target-flx"))],
        {"sqlalchemy_url": url, "default_target_schema": flx_schema, **dict(RUNS[tap].target_config)},
        singer,
        tmp_path,
        "flx",
    )
    assert not flx_error, f"target-flx refused {tap}'s output: {flx_error}"
    reference = executables["reference"]
    ref_error = "not installed" if isinstance(reference, str) else ""
    if not ref_error:
        ref_error = _load(
            [str(reference)],
            {"sqlalchemy_url": url, "default_target_schema": ref_schema, **dict(RUNS[tap].target_config)},
            singer,
            tmp_path,
            "ref",
        )

    schema, records = _read_singer(singer)
    table = RUNS[tap].table
    flx_rows = _stored(database_url, flx_schema, table)
    flx_wrong = _differences(schema, records, flx_rows)
    ref_wrong = (
        _differences(schema, records, _stored(database_url, ref_schema, table)) if not ref_error else []
    )
    print(f"\n{tap}: target-flx {len(flx_wrong)} differences; reference {ref_error or len(ref_wrong)}")
    for line in ref_wrong:
        print(f"  reference: {line}")
    assert flx_wrong == [], "\n".join(flx_wrong)


# -- reading ---------------------------------------------------------------------------------------------


def _read_singer(path: Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    schema: dict[str, Any] = {}
    records: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        message = json.loads(line, parse_float=decimal.Decimal, parse_constant=decimal.Decimal)
        if message.get("type") == "SCHEMA":
            schema = message["schema"]["properties"]
        elif message.get("type") == "RECORD":
            records[int(message["record"]["id"])] = message["record"]
    assert records, f"no records in {path}"
    return schema, records


def _stored(database_url: URL, schema: str, table: str) -> dict[int, dict[str, Any]]:
    with psycopg.connect(libpq_conninfo(database_url)) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        columns = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = format('%%I.%%I', %s::text, %s::text)::regclass AND a.attnum > 0 "
            "AND NOT a.attisdropped",
            (schema, table),
        ).fetchall()
        exprs = [_as_read(name, pg_type) for name, pg_type in columns]
        rows = conn.execute(f'SELECT {", ".join(exprs)} FROM "{schema}"."{table}"').fetchall()
    names = [name for name, _ in columns]
    return {int(row[names.index("id")]): dict(zip(names, row, strict=True)) for row in rows}


def _as_read(name: str, pg_type: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    if pg_type.startswith(("numeric", "real", "double precision", "json")) and not pg_type.endswith("[]"):
        return f"{quoted}::text"
    if pg_type in ("jsonb[]", "json[]", "numeric[]", "double precision[]", "real[]"):
        return f"{quoted}::text[]"
    return quoted


# -- comparing -------------------------------------------------------------------------------------------


def _differences(
    schema: dict[str, Any], records: dict[int, dict[str, Any]], stored: dict[int, dict[str, Any]]
) -> list[str]:
    wrong = []
    if set(stored) != set(records):
        wrong.append(f"rows {sorted(stored)} stored, {sorted(records)} sent")
    for key, record in records.items():
        row = stored.get(key, {})
        for prop, sent in record.items():
            if prop not in row:
                wrong.append(f"id {key}: no column {prop!r}")
                continue
            kind = column_type(schema.get(prop) or {}).json_kind
            if not _same(kind, sent, row[prop]):
                wrong.append(f"id {key} {prop} ({kind}): sent {_short(sent)}, stored {_short(row[prop])}")
    return wrong


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 100 else text[:99] + "…"


def _same(kind: str, sent: Any, stored: Any) -> bool:
    if sent is None:
        return stored is None
    if stored is None:
        return False
    if kind in ("integer", "number") and not isinstance(sent, bool | str):
        return _number(stored) == _number(sent)
    if kind == "date-time" and isinstance(sent, str):
        return _instant(stored) == _instant(sent)
    if kind == "date" and isinstance(sent, str):
        if isinstance(stored, datetime.datetime):
            return _instant(stored) == _instant(sent)
        return stored == datetime.date.fromisoformat(sent[:10])
    if kind == "time" and isinstance(sent, str) and isinstance(stored, datetime.time):
        return stored == _utc_time(sent)
    if kind == "boolean":
        return stored is sent
    if isinstance(stored, list):
        return (
            isinstance(sent, list)
            and len(sent) == len(stored)
            and all(_same_item(a, b) for a, b in zip(sent, stored, strict=True))
        )
    if isinstance(sent, str):
        if kind == "json" and isinstance(stored, str) and stored[:1] == '"':
            return _json(stored) == sent  # a JSON string in a jsonb column
        return str(stored) == sent
    if isinstance(stored, str):
        return _json(stored) == _plain(sent)
    return _plain(stored) == _plain(sent)


def _same_item(sent: Any, stored: Any) -> bool:
    if sent is None or stored is None:
        return sent is stored
    if isinstance(sent, dict | list):
        return _json(stored) == _plain(sent) if isinstance(stored, str) else _plain(stored) == _plain(sent)
    if isinstance(sent, int | decimal.Decimal) and not isinstance(sent, bool):
        return _number(stored) == _number(sent)
    return str(stored) == sent if isinstance(sent, str) else stored == sent


def _number(value: Any) -> Any:
    number = decimal.Decimal(str(value)) if not isinstance(value, decimal.Decimal) else value
    return ("special", str(number)) if not number.is_finite() else number


def _instant(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    offset = value.utcoffset() or datetime.timedelta(0)
    return _utc_fields(value.replace(tzinfo=None), offset)


def _utc_time(text: str) -> datetime.time:
    """A time of day; one with an offset as its UTC time (what a time column holds for it)."""
    if len(text) > 1 and text[1] == ":":
        text = "0" + text
    value = datetime.time.fromisoformat(text)
    if value.utcoffset() is None:
        return value
    moment = datetime.datetime.combine(datetime.date(2000, 1, 1), value)
    return moment.astimezone(UTC).time().replace(tzinfo=None)


def _utc_fields(naive: datetime.datetime, offset: datetime.timedelta) -> tuple[int, int]:
    """(days since year 1, microseconds into the day) of the UTC instant, valid before year 1 too."""
    micro = (naive.hour * 3600 + naive.minute * 60 + naive.second) * 1_000_000 + naive.microsecond
    micro -= offset // datetime.timedelta(microseconds=1)
    days, micro = divmod(micro, 86_400_000_000)
    return naive.toordinal() + days, micro


def _json(text: str) -> Any:
    return _plain(json.loads(text, parse_float=decimal.Decimal))


def _plain(value: Any) -> Any:
    """JSON values compared as values: numbers as exact decimals."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        return _number(value)
    return value


def test_comparison_itself() -> None:
    """The comparison's own rules (so a suite failure is about the loaders)."""
    assert _same("date-time", "0001-01-01T19:03:58-04:56:02", datetime.datetime(1, 1, 2, tzinfo=UTC))
    assert _same("date-time", "2024-01-01T00:00:00+00:00", datetime.datetime(2024, 1, 1))
    assert not _same("date-time", "2024-01-01T00:00:00+01:00", datetime.datetime(2024, 1, 1, tzinfo=UTC))
    assert _same("number", decimal.Decimal("1.50"), "1.5")
    assert _same("number", decimal.Decimal("NaN"), "NaN")
    assert not _same("number", decimal.Decimal("0.1"), "0.1000000000000000055511151231257827")
    assert _same("json", {"a": [1, decimal.Decimal("2.5")]}, '{"a": [1, 2.50]}')
    assert _same("string", "ab   ", "ab   ") and not _same("string", "ab   ", "ab")
    assert _same("json", ["a", None], ["a", None])
    assert _same("time", "12:34:56+02:00", datetime.time(10, 34, 56))
    assert _same("time", "0:00:01", datetime.time(0, 0, 1))
    check: Callable[..., bool] = _same
    assert not check("integer", 5, None)
