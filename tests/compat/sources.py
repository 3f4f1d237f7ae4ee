"""The source tables the compatibility suite reads: ordinary and awkward PostgreSQL and MariaDB types with
their edge values, created afresh in their own schema / database of the local servers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import psycopg

PG_SCHEMA = "flx_compat_src"
PG_TABLE = "pg_types"
MY_DATABASE = "flx_compat_src"
MY_TABLE = "my_types"
PG_DSN = os.environ.get("FLX_COMPAT_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
MY_ARGS = ["-h", "127.0.0.1", "-P", "3306", "-u", "root"]

PG_COLUMNS = [
    ("c_smallint", "smallint"),
    ("c_integer", "integer"),
    ("c_bigint", "bigint"),
    ("c_numeric", "numeric"),
    ("c_numeric_10_2", "numeric(10,2)"),
    ("c_real", "real"),
    ("c_double", "double precision"),
    ("c_boolean", "boolean"),
    ("c_text", "text"),
    ("c_varchar", "varchar(20)"),
    ("c_char", "char(5)"),
    ("c_date", "date"),
    ("c_timestamp", "timestamp"),
    ("c_timestamptz", "timestamptz"),
    ("c_time", "time"),
    ("c_timetz", "timetz"),
    ("c_interval", "interval"),
    ("c_uuid", "uuid"),
    ("c_json", "json"),
    ("c_jsonb", "jsonb"),
    ("c_bytea", "bytea"),
    ("c_inet", "inet"),
    ("c_int_array", "integer[]"),
    ("c_text_array", "text[]"),
    ("c_enum", "flx_compat_mood"),
]
_TEXT = "Grüße 東京 🚚 \"quote\" 'apostrophe' \\ backslash\nnew line\ttab"
PG_ROWS: list[dict[str, str | None]] = [
    {
        "c_smallint": "1",
        "c_integer": "1",
        "c_bigint": "1",
        "c_numeric": "1.50",
        "c_numeric_10_2": "12.34",
        "c_real": "1.5",
        "c_double": "0.1",
        "c_boolean": "true",
        "c_text": "hello",
        "c_varchar": "v",
        "c_char": "ab",
        "c_date": "2024-02-29",
        "c_timestamp": "2024-02-29 12:34:56.123456",
        "c_timestamptz": "2024-02-29 12:34:56.123456+00",
        "c_time": "12:34:56",
        "c_timetz": "12:34:56+02",
        "c_interval": "1 day 02:03:04",
        "c_uuid": "709ddafe-ed34-4bfa-96f1-33da607744b8",
        "c_json": '{"a": 1, "b": [true, null]}',
        "c_jsonb": '{"a": [1, 2.50, "x"], "n": 12345678901234567890}',
        "c_bytea": "\\x00ff10",
        "c_inet": "192.168.0.1",
        "c_int_array": "{1,2,3}",
        "c_text_array": '{a,"b c",""}',
        "c_enum": "ok",
    },
    {
        "c_smallint": "32767",
        "c_integer": "2147483647",
        "c_bigint": "9223372036854775807",
        "c_numeric": "123456789012345678901234567890.123456789012345678901234567890",
        "c_numeric_10_2": "99999999.99",
        "c_real": "3.4028235e38",
        "c_double": "1.7976931348623157e308",
        "c_boolean": "false",
        "c_text": _TEXT,
        "c_varchar": "x" * 20,
        "c_char": "abcde",
        "c_date": "9999-12-31",
        "c_timestamp": "9999-12-31 23:59:59.999999",
        "c_timestamptz": "9999-12-31 23:59:59.999999+00",
        "c_time": "23:59:59.999999",
        "c_timetz": "23:59:59-14",
        "c_interval": "1000 years 2 mons 3 days",
        "c_uuid": "00000000-0000-0000-0000-000000000000",
        "c_json": '{"deep": {"er": [[[]]]}, "dup": 1, "dup": 2}',
        "c_jsonb": '"a JSON string"',
        "c_bytea": "\\x",
        "c_inet": "2001:db8::1/64",
        "c_int_array": "{}",
        "c_text_array": '{"NULL",NULL,"with,comma"}',
        "c_enum": "happy",
    },
    {
        "c_smallint": "-32768",
        "c_integer": "-2147483648",
        "c_bigint": "-9223372036854775808",
        "c_numeric": "-0.000000000000000000000000000001",
        "c_numeric_10_2": "-99999999.99",
        "c_real": "-1.17549435e-38",
        "c_double": "5e-324",
        "c_boolean": None,
        "c_text": "",
        "c_varchar": "",
        "c_char": "",
        "c_date": "0001-01-01",
        "c_timestamp": "0001-01-01 00:00:00",
        "c_timestamptz": "0001-01-02 00:00:00+00",
        "c_time": "00:00:00",
        "c_timetz": "00:00:00+14",
        "c_interval": "-1 microsecond",
        "c_uuid": None,
        "c_json": "[]",
        "c_jsonb": "{}",
        "c_bytea": "\\x00",
        "c_inet": None,
        "c_int_array": "{-2147483648,NULL}",
        "c_text_array": "{}",
        "c_enum": "sad",
    },
    {
        "c_numeric": "NaN",
        "c_numeric_10_2": "0.00",
        "c_real": "NaN",
        "c_double": "Infinity",
        "c_timestamptz": "1900-01-01 00:00:00+00",
        "c_timestamp": "1883-11-18 12:00:00",
        "c_time": "24:00:00",
        "c_jsonb": "null",
        "c_json": "null",
        "c_text": "NaN",
    },
    {"c_numeric": "Infinity", "c_double": "-Infinity", "c_real": "-Infinity", "c_text": "Infinity"},
    {"c_numeric": "-Infinity", "c_double": "-0", "c_timestamptz": "1883-11-18 16:59:59+00"},
    {},  # every column NULL
]

MY_COLUMNS = [
    ("c_tinyint", "TINYINT"),
    ("c_bool", "TINYINT(1)"),
    ("c_smallint", "SMALLINT"),
    ("c_mediumint", "MEDIUMINT"),
    ("c_int", "INT"),
    ("c_int_unsigned", "INT UNSIGNED"),
    ("c_bigint", "BIGINT"),
    ("c_bigint_unsigned", "BIGINT UNSIGNED"),
    ("c_decimal", "DECIMAL(30,10)"),
    ("c_float", "FLOAT"),
    ("c_double", "DOUBLE"),
    ("c_bit", "BIT(1)"),
    ("c_char", "CHAR(5)"),
    ("c_varchar", "VARCHAR(60)"),
    ("c_text", "TEXT"),
    ("c_enum", "ENUM('a','b')"),
    ("c_set", "SET('x','y')"),
    ("c_date", "DATE"),
    ("c_datetime", "DATETIME(6)"),
    ("c_timestamp", "TIMESTAMP(6) NULL"),
    ("c_time", "TIME(6)"),
    ("c_year", "YEAR"),
    ("c_varbinary", "VARBINARY(10)"),
    ("c_blob", "BLOB"),
    ("c_json", "JSON"),
]
MY_ROWS: list[dict[str, str | None]] = [
    {
        "c_tinyint": "1",
        "c_bool": "1",
        "c_smallint": "1",
        "c_mediumint": "1",
        "c_int": "1",
        "c_int_unsigned": "1",
        "c_bigint": "1",
        "c_bigint_unsigned": "1",
        "c_decimal": "1.5",
        "c_float": "1.5",
        "c_double": "0.1",
        "c_bit": "b'1'",
        "c_char": "'ab'",
        "c_varchar": "'v'",
        "c_text": "'hello'",
        "c_enum": "'a'",
        "c_set": "'x,y'",
        "c_date": "'2024-02-29'",
        "c_datetime": "'2024-02-29 12:34:56.123456'",
        "c_timestamp": "'2024-02-29 12:34:56.123456'",
        "c_time": "'12:34:56'",
        "c_year": "2024",
        "c_varbinary": "X'00FF10'",
        "c_blob": "X'DEADBEEF'",
        "c_json": "'{\"a\": [1, 2.50]}'",
    },
    {
        "c_tinyint": "127",
        "c_bool": "2",
        "c_smallint": "32767",
        "c_mediumint": "8388607",
        "c_int": "2147483647",
        "c_int_unsigned": "4294967295",
        "c_bigint": "9223372036854775807",
        "c_bigint_unsigned": "18446744073709551615",
        "c_decimal": "99999999999999999999.9999999999",
        "c_float": "3.40282e38",
        "c_double": "1.7976931348623157e308",
        "c_bit": "b'0'",
        "c_char": "'abcde'",
        "c_varchar": "'Grüße 東京 🚚 \"quote\" \\\\ backslash\\nnew line\\ttab'",
        "c_text": "'😀 emoji'",
        "c_enum": "'b'",
        "c_set": "''",
        "c_date": "'9999-12-31'",
        "c_datetime": "'9999-12-31 23:59:59.999999'",
        "c_timestamp": "'2038-01-19 03:14:07.999999'",
        "c_time": "'23:59:59.999999'",
        "c_year": "2155",
        "c_varbinary": "X''",
        "c_blob": "X'00'",
        "c_json": "'\"a JSON string\"'",
    },
    {
        "c_tinyint": "-128",
        "c_bool": "0",
        "c_smallint": "-32768",
        "c_mediumint": "-8388608",
        "c_int": "-2147483648",
        "c_int_unsigned": "0",
        "c_bigint": "-9223372036854775808",
        "c_bigint_unsigned": "9223372036854775808",
        "c_decimal": "-0.0000000001",
        "c_float": "-1.5",
        "c_double": "5e-324",
        "c_char": "''",
        "c_varchar": "''",
        "c_text": "''",
        "c_date": "'1000-01-01'",
        "c_datetime": "'1000-01-01 00:00:00'",
        "c_timestamp": "'1970-01-01 00:00:01'",
        "c_time": "'00:00:00'",
        "c_year": "1901",
        "c_json": "'[]'",
    },
    {},  # every column NULL
]


def mysql_available() -> bool:
    return shutil.which("mysql") is not None and _mysql("SELECT 1", check=False).returncode == 0


def _mysql(sql: str, *, check: bool = True, database: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["mysql", *MY_ARGS, "--default-character-set=utf8mb4", "-B", "-N"]
    if database:
        args.append(database)
    return subprocess.run(args, input=sql, capture_output=True, text=True, check=check, timeout=60)


def create_postgres() -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        conn.execute(f"CREATE TYPE {PG_SCHEMA}.flx_compat_mood AS ENUM ('sad', 'ok', 'happy')")
        columns = ", ".join(
            f"{name} {PG_SCHEMA}.{typ}" if typ == "flx_compat_mood" else f"{name} {typ}"
            for name, typ in PG_COLUMNS
        )
        conn.execute(f"CREATE TABLE {PG_SCHEMA}.{PG_TABLE} (id integer PRIMARY KEY, {columns})")
        for i, row in enumerate(PG_ROWS, start=1):
            names = ["id", *row]
            placeholders = ", ".join(["%s"] * len(names))
            conn.execute(
                f"INSERT INTO {PG_SCHEMA}.{PG_TABLE} ({', '.join(names)}) VALUES ({placeholders})",
                [i, *row.values()],
            )


def postgres_source() -> dict[int, dict[str, str | None]]:
    """Each source row's values as PostgreSQL prints them (UTC), by id."""
    with psycopg.connect(PG_DSN) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        columns = ", ".join(f"{name}::text" for name, _ in PG_COLUMNS)
        rows = conn.execute(f"SELECT id, {columns} FROM {PG_SCHEMA}.{PG_TABLE}").fetchall()
    return {r[0]: dict(zip([n for n, _ in PG_COLUMNS], r[1:], strict=True)) for r in rows}


def create_mysql() -> None:
    columns = ", ".join(f"{name} {typ}" for name, typ in MY_COLUMNS)
    statements = [
        f"DROP DATABASE IF EXISTS {MY_DATABASE};",
        f"CREATE DATABASE {MY_DATABASE} CHARACTER SET utf8mb4;",
        f"USE {MY_DATABASE};",
        "SET time_zone = '+00:00';",
        f"CREATE TABLE {MY_TABLE} (id INT PRIMARY KEY, {columns}) CHARACTER SET utf8mb4;",
    ]
    for i, row in enumerate(MY_ROWS, start=1):
        names = ["id", *row]
        values = [str(i), *[v if v is not None else "NULL" for v in row.values()]]
        statements.append(f"INSERT INTO {MY_TABLE} ({', '.join(names)}) VALUES ({', '.join(values)});")
    _mysql("\n".join(statements))


def mysql_source() -> dict[int, dict[str, str | None]]:
    """Each source row's values as MariaDB prints them (UTC; binary as hex), by id."""
    exprs = [f"HEX({n})" if t.startswith(("VARBINARY", "BLOB", "BIT")) else n for n, t in MY_COLUMNS]
    sql = f"SET time_zone = '+00:00'; SELECT id, {', '.join(exprs)} FROM {MY_TABLE} ORDER BY id;"
    out = _mysql(sql, database=MY_DATABASE).stdout
    result: dict[int, dict[str, str | None]] = {}
    for line in out.splitlines():
        cells = [None if c == "NULL" else _unescape(c) for c in line.split("\t")]
        assert cells[0] is not None
        result[int(cells[0])] = dict(zip([n for n, _ in MY_COLUMNS], cells[1:], strict=True))
    return result


def _unescape(cell: str) -> str:
    """The mysql client's batch escapes (\\n, \\t, \\\\, \\0) undone."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m.group(1), m.group(1)), cell)


def drop_all() -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
    if mysql_available():
        _mysql(f"DROP DATABASE IF EXISTS {MY_DATABASE};", check=False)
