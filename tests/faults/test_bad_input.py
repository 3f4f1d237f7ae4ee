"""Bad input mid-load, one kind per case, on the shared test database.

Each input: a SCHEMA, records 1..124 with a STATE after every 10th, the case's line(s), then records
125..200. With batches of 50 rows the bad line falls inside the third batch, after two have committed, so
a target that lets a STATE out before its rows are committed is caught. Errors must be one line naming the
input line, with exit 1 and no traceback; inputs that are valid must load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tests.faults.harness import (
    RunOutcome,
    committed_up_to,
    last_stderr_line,
    run_target,
    stderr_problems,
    traceback_summary,
)

pytestmark = pytest.mark.faults

BAD_ID = 1000  # the id a bad record uses, outside 1..200 so it cannot hide a lost record
BEFORE, TOTAL, STATE_EVERY = 124, 200, 10
PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "amount": {"type": ["null", "number"]},
    "at": {"type": ["null", "string"], "format": "date-time"},
    "note": {"type": ["null", "string"]},
    "flag": {"type": ["null", "boolean"]},
    "qty": {"type": ["null", "integer"], "minimum": -(2**31), "maximum": 2**31 - 1},
    "big": {"type": ["null", "integer"]},
    "doc": {"type": ["null", "object"]},
}


@dataclass(frozen=True)
class Case:
    """Lines put between record 124 and record 125 (or at the very end, without a newline)."""

    name: str
    lines: tuple[bytes, ...]
    verify: str | None = None  # SQL over {s} (the schema) that must be true when the run succeeds
    must_hold: str | None = None  # SQL that must be true whatever the outcome
    setup: str | None = None  # SQL run before the target
    at_end: bool = False
    allowed: frozenset[int] = frozenset({1})  # the exit codes that are right

    def __str__(self) -> str:
        return self.name


def _msg(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _record(values: dict[str, Any], stream: str = "orders", **extra: Any) -> bytes:
    return _msg({"type": "RECORD", "stream": stream, "record": values, **extra})


def _raw(fragment: bytes, stream: str = "orders") -> bytes:
    """A RECORD of id BAD_ID with a raw (possibly invalid) JSON fragment among its properties."""
    return b'{"type":"RECORD","stream":"' + stream.encode() + b'","record":{"id":1000,' + fragment + b"}}"


def _schema(stream: str, properties: Any, keys: Any = None, **extra: Any) -> bytes:
    schema = {"type": "object", "properties": properties, **extra}
    return _msg({"type": "SCHEMA", "stream": stream, "key_properties": keys or [], "schema": schema})


def _good(rid: int) -> dict[str, Any]:
    return {
        "id": rid,
        "amount": rid + 0.25,
        "at": f"2024-03-01T10:{rid % 60:02d}:00+02:00",
        "note": f"row {rid}",
        "flag": rid % 2 == 0,
        "qty": rid,
        "big": rid * 10**12,
        "doc": {"n": rid},
    }


VALID = _record(_good(BAD_ID))
DEEP = b'"doc":{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
INJECTION = 'x"; DROP TABLE victim; --'
ONE_ROW = f"(SELECT count(*) = 1 FROM {{s}}.orders WHERE id = {BAD_ID})"

FAILS: list[Case] = [
    Case("truncated_json", (b'{"type":"RECORD","stream":"orders","record":{"id":1000,"amount":1',)),
    Case("truncated_final_line", (VALID[: len(VALID) // 2],), at_end=True),
    Case("invalid_utf8_byte", (_raw(b'"note":"bad \xff byte"'),)),
    Case("invalid_utf8_overlong", (_raw(b'"note":"\xc0\xaf"'),)),
    Case("lone_high_surrogate_escape", (_raw(b'"note":"\\ud800"'),)),
    Case("lone_low_surrogate_escape", (_raw(b'"note":"x\\udfff"'),)),
    Case("raw_nul_byte", (_raw(b'"note":"a\x00b"'),)),
    Case("nul_escape_in_text", (_raw(b'"note":"a\\u0000b"'),)),
    Case("nan_literal_into_integer", (_raw(b'"qty":NaN'),)),
    Case("infinity_literal_into_integer", (_raw(b'"qty":Infinity'),)),
    Case("minus_infinity_literal_into_integer", (_raw(b'"qty":-Infinity'),)),
    Case("1e400_into_bounded_integer", (_raw(b'"qty":1e400'),)),
    Case("fraction_into_integer", (_raw(b'"qty":1.5'),)),
    Case("string_into_integer", (_raw(b'"qty":"12"'),)),
    Case("boolean_into_integer", (_raw(b'"qty":true'),)),
    Case("integer_above_maximum", (_raw(b'"qty":2147483648'),)),
    Case("string_into_number", (_raw(b'"amount":"12.50"'),)),
    Case("object_into_number", (_raw(b'"amount":{"v":1}'),)),
    Case("string_into_boolean", (_raw(b'"flag":"yes"'),)),
    Case("number_into_string", (_raw(b'"note":5'),)),
    Case("missing_key", (_record({"note": "no id"}),)),
    Case("null_key", (_record({"id": None, "note": "null id"}),)),
    Case("string_key", (_record({"id": "abc"}),)),
    Case("impossible_date_time", (_raw(b'"at":"2024-02-30T00:00:00Z"'),)),
    Case("date_time_words", (_raw(b'"at":"yesterday"'),)),
    Case("date_time_as_number", (_raw(b'"at":1700000000'),)),
    Case("year_zero", (_raw(b'"at":"0000-01-01T00:00:00Z"'),)),
    Case("record_not_an_object", (_msg({"type": "RECORD", "stream": "orders", "record": [1, 2]}),)),
    Case("record_is_a_string", (_msg({"type": "RECORD", "stream": "orders", "record": "id=1000"}),)),
    Case("record_without_stream", (_msg({"type": "RECORD", "record": _good(BAD_ID)}),)),
    Case("stream_not_a_string", (_msg({"type": "RECORD", "stream": 5, "record": _good(BAD_ID)}),)),
    Case("bad_time_extracted", (_record(_good(BAD_ID), time_extracted="not a time"),)),
    Case(
        "activate_version_string", (_msg({"type": "ACTIVATE_VERSION", "stream": "orders", "version": "v2"}),)
    ),
    Case(
        "activate_version_fraction", (_msg({"type": "ACTIVATE_VERSION", "stream": "orders", "version": 1.5}),)
    ),
    Case(
        "activate_version_unknown_stream",
        (_msg({"type": "ACTIVATE_VERSION", "stream": "nope", "version": 1}),),
    ),
    Case("record_before_schema", (_record({"id": 1}, stream="other"),)),
    Case("record_of_empty_stream_name", (_record({"id": 1}, stream=""),)),
    Case(
        "schema_without_properties",
        (
            _msg(
                {"type": "SCHEMA", "stream": "orders", "key_properties": ["id"], "schema": {"type": "object"}}
            ),
        ),
    ),
    Case("key_property_not_in_schema", (_schema("other", {"id": {"type": "integer"}}, ["nope"]),)),
    Case(
        "unknown_type_in_schema",
        (_schema("other", {"id": {"type": "integer"}, "x": {"type": "frobnicate"}}),),
    ),
    Case("schema_type_not_a_string", (_schema("other", {"id": {"type": "integer"}, "x": {"type": 5}}),)),
    Case("schema_properties_not_an_object", (_schema("other", []),)),
    Case("schema_without_schema", (_msg({"type": "SCHEMA", "stream": "other", "key_properties": []}),)),
    Case(
        "key_properties_not_a_list",
        (
            _msg(
                {
                    "type": "SCHEMA",
                    "stream": "other",
                    "key_properties": "id",
                    "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
                }
            ),
        ),
    ),
    Case("state_without_value", (b'{"type":"STATE"}',)),
    Case("line_is_a_json_array", (b"[1, 2, 3]",)),
    Case("line_is_a_json_number", (b"42",)),
    Case("empty_object", (b"{}",)),
    Case("trailing_garbage", (VALID + b" xyz",)),
    Case("two_objects_on_one_line", (VALID + _record(_good(BAD_ID + 1)),)),
]

SUCCEEDS: list[Case] = [
    Case(
        "integer_beyond_bigint",
        (_raw(b'"big":1180591620717411303424'),),
        verify=f"(SELECT big = 2::numeric ^ 70 FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "negative_beyond_bigint",
        (_raw(b'"big":-1180591620717411303424'),),
        verify=f"(SELECT big = -(2::numeric ^ 70) FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "integer_of_200_digits",
        (_raw(b'"big":1' + b"0" * 200),),
        verify=f"(SELECT big = 10::numeric ^ 200 FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "bigint_maximum",
        (_raw(b'"big":9223372036854775807'),),
        verify=f"(SELECT big = 9223372036854775807 FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "valid_surrogate_pair",
        (_raw(b'"note":"\\ud83d\\ude00"'),),
        verify=f"(SELECT note = U&'\\+01F600' FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case("blank_line", (b"",)),
    Case("unknown_message_type", (b'{"type":"FUTURE_THING","x":1}',)),
]

# Either outcome is acceptable: loaded exactly (checked by `verify`) or refused in one line.
EITHER: list[Case] = [
    Case(
        "1e400_into_number",
        (_raw(b'"amount":1e400'),),
        verify=f"(SELECT amount = 1e400 FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "nested_array_10000_deep",
        (_raw(DEEP),),
        verify=f"(SELECT jsonb_typeof(doc->'a') = 'array' FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "sql_in_property_name",
        (
            _schema("other", {"id": {"type": "integer"}, INJECTION: {"type": "string"}}),
            _record({"id": 1, INJECTION: "v"}, stream="other"),
        ),
        setup="CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE {s}.victim (i int)",
        must_hold="to_regclass('{s}.victim') IS NOT NULL",
        verify="(SELECT count(*) = 1 FROM {s}.other)",
    ),
    Case(
        "sdc_batched_at_property",
        (
            _schema("other", {"id": {"type": "integer"}, "_sdc_batched_at": {"type": ["null", "string"]}}),
            _record({"id": 1, "_sdc_batched_at": "mine"}, stream="other"),
        ),
        verify="(SELECT count(*) = 1 FROM {s}.other)",
    ),
    Case(
        "raw_control_character",
        (_raw(b'"note":"a\x01b"'),),
        verify=f"(SELECT note = 'a' || chr(1) || 'b' FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case("byte_order_mark_mid_stream", (b"\xef\xbb\xbf" + VALID,), verify=ONE_ROW),
    Case("carriage_return_line_end", (VALID + b"\r",), verify=ONE_ROW),
    Case("date_time_without_offset", (_raw(b'"at":"2024-03-01T10:00:00"'),), verify=ONE_ROW),
    Case("duplicate_property", (_raw(b'"note":"a","note":"b"'),), verify=ONE_ROW),
    Case(
        "one_point_zero_into_integer",
        (_raw(b'"qty":1.0'),),
        verify=f"(SELECT qty = 1 FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case(
        "exponent_integer",
        (_raw(b'"qty":1e3'),),
        verify=f"(SELECT qty = 1000 FROM {{s}}.orders WHERE id = {BAD_ID})",
    ),
    Case("property_not_in_schema", (_raw(b'"extra":"x"'),), verify=ONE_ROW),
    Case("invalid_utf8_in_property_name", (_raw(b'"n\xfeote":"x"'),), verify=ONE_ROW),
]


SUCCEEDS = [dataclasses.replace(case, allowed=frozenset({0})) for case in SUCCEEDS]
EITHER = [dataclasses.replace(case, allowed=frozenset({0, 1})) for case in EITHER]
CASES = FAILS + SUCCEEDS + EITHER
PARALLEL = int(os.environ.get("FLX_FAULT_PARALLEL") or 3)


@dataclass
class Built:
    data: bytes
    case_lines: list[int] = field(default_factory=list)  # 1-based line numbers of the case's lines


def build(case: Case) -> Built:
    lines = [_schema("orders", PROPERTIES, ["id"])]
    case_lines: list[int] = []

    def add_case() -> None:
        for line in case.lines:
            lines.append(line)
            case_lines.append(len(lines))

    for rid in range(1, TOTAL + 1):
        if rid == BEFORE + 1 and not case.at_end:
            add_case()
        lines.append(_record(_good(rid)))
        if rid % STATE_EVERY == 0:
            lines.append(_msg({"type": "STATE", "value": {"bookmarks": {"orders": {"id": rid}}}}))
    if case.at_end:
        add_case()
        return Built(b"\n".join(lines), case_lines)
    return Built(b"\n".join(lines) + b"\n", case_lines)


def _sql(conninfo: str, schema: str, statement: str) -> Any:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(statement.replace("{s}", sql.Identifier(schema).as_string(conn))).fetchone()
        return row[0] if row else None


def _committed_problems(outcome: RunOutcome, conninfo: str, schema: str) -> list[str]:
    """After the run: no STATE it printed may be ahead of the rows now in the table."""
    problems = list(outcome.violations)
    if problems:
        return problems
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for value in outcome.states:
            try:
                bookmark = int(value["bookmarks"]["orders"]["id"])
            except (KeyError, TypeError, ValueError):
                problems.append(f"STATE is not one the input sent: {value!r}")
                continue
            have = committed_up_to(conn, schema, "orders", bookmark)
            if have < bookmark:
                problems.append(
                    f"STATE ahead of committed rows: STATE orders id {bookmark} printed, "
                    f"{have} of ids 1..{bookmark} committed"
                )
                break
    return problems


def _check(case: Case, outcome: RunOutcome, built: Built, conninfo: str, schema: str) -> list[str]:
    problems = _committed_problems(outcome, conninfo, schema)
    where = f"line {' and '.join(map(str, built.case_lines))}"
    if outcome.returncode not in case.allowed:
        expected = " or ".join(map(str, sorted(case.allowed)))
        problems.append(
            f"exit {outcome.returncode} on {where}, expected {expected}: {last_stderr_line(outcome.stderr)}"
        )
    if outcome.returncode == 0:
        if traceback := traceback_summary(outcome.stderr):
            problems.append(f"traceback in stderr of a successful run: {traceback}")
        last = outcome.last_state
        if last != {"bookmarks": {"orders": {"id": TOTAL}}}:
            problems.append(f"last STATE {last!r}, expected orders id {TOTAL}")
        have = _sql(
            conninfo, schema, f"SELECT count(DISTINCT id) FROM {{s}}.orders WHERE id BETWEEN 1 AND {TOTAL}"
        )
        if have != TOTAL:
            problems.append(f"{have} of ids 1..{TOTAL} loaded")
        if case.verify and _sql(conninfo, schema, f"SELECT {case.verify}") is not True:
            problems.append(f"loaded, but not as sent: {case.verify.replace('{s}', schema)} is not true")
    elif outcome.returncode is not None:
        problems += stderr_problems(outcome.stderr, line=built.case_lines)
    if case.must_hold and _sql(conninfo, schema, f"SELECT {case.must_hold}") is not True:
        problems.append(f"{case.must_hold.replace('{s}', schema)} is not true after the run")
    problems += outcome.notes
    return problems


def _try_case(case: Case, config: dict[str, Any], conninfo: str, workdir: Path) -> list[str]:
    schema = str(config["default_target_schema"])
    try:
        if case.setup:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(case.setup.replace("{s}", sql.Identifier(schema).as_string(conn)))
        built = build(case)
        outcome = run_target(config, workdir, built.data, conninfo=conninfo, paced=False)
        states = len(outcome.states)
        print(f"{case.name}: exit {outcome.returncode}, {states} STATEs: {last_stderr_line(outcome.stderr)}")
        return _check(case, outcome, built, conninfo, schema)
    except Exception as exc:  # one case's trouble must not hide the others' results
        return [f"the case itself failed: {type(exc).__name__}: {exc}"]


def _selected(session: pytest.Session) -> list[Case]:
    """The cases this session runs (all of them unless deselected), so that `-k` runs only those."""
    here = Path(__file__)
    chosen = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.path == here and callspec is not None and "case" in callspec.params:
            chosen.add(callspec.params["case"].name)
    return [case for case in CASES if case.name in chosen]


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest,
    db_config: dict[str, str],
    database_url: URL,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, list[str]]]:
    """Every case's problems. The runs are independent (a schema each), so a few go at once: most of a
    run is the target's start-up."""
    conninfo = libpq_conninfo(database_url)
    workdir = tmp_path_factory.mktemp("bad-input")
    cases = _selected(request.session)
    schemas = {case.name: f"t_{uuid.uuid4().hex[:10]}" for case in cases}

    def config(schema: str) -> dict[str, Any]:
        return {**db_config, "default_target_schema": schema, "batch_size_rows": 50}

    warmup = run_target(config("public"), workdir, b"", conninfo=None, paced=False)  # migrates, once
    assert warmup.returncode == 0, f"target-flx failed on empty input:\n{warmup.stderr[-3000:]}"
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            found = list(
                pool.map(lambda c: _try_case(c, config(schemas[c.name]), conninfo, workdir / c.name), cases)
            )
        yield dict(zip((c.name for c in cases), found, strict=True))
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.parametrize("case", FAILS, ids=str)
def test_refused(case: Case, results: dict[str, list[str]]) -> None:
    """Exit 1, one error line naming the bad line, no STATE ahead of the committed rows."""
    assert not results[case.name], "\n".join(results[case.name])


@pytest.mark.parametrize("case", SUCCEEDS, ids=str)
def test_loaded(case: Case, results: dict[str, list[str]]) -> None:
    """Valid input that looks unusual: exit 0, everything loaded exactly."""
    assert not results[case.name], "\n".join(results[case.name])


@pytest.mark.parametrize("case", EITHER, ids=str)
def test_loaded_or_refused(case: Case, results: dict[str, list[str]]) -> None:
    """Either loaded exactly, or refused like any bad line."""
    assert not results[case.name], "\n".join(results[case.name])


def test_enough_kinds() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
