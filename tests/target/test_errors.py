"""Bad input: one line naming stream, input line and field; non-zero exit; committed work kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.target.singer_io import record, schema_msg, singer, state

# Every value test runs with the C encoder and with the Python reference encoder.
pytestmark = pytest.mark.usefixtures("encoder")

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("target-flx: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            singer(schema_msg("a", PROPS)) + '{"type": "RECORD", "stream": "a", "record": {"id": 1\n',
            ["stream 'a'", "line 2", "malformed JSON"],
        ),
        (singer(record("a", {"id": 1})), ["stream 'a'", "line 1", "RECORD before its SCHEMA"]),
        (
            singer(schema_msg("a", PROPS), record("a", {"id": 1}), record("a", {"id": "two"})),
            ["stream 'a'", "line 3", "field 'id'", "Expected int, got str"],
        ),
        (
            singer(schema_msg("a", PROPS, ["id"]), record("a", {"v": "no key"})),
            ["stream 'a'", "line 2", "field 'id'", "key property"],
        ),
        (
            singer(schema_msg("a", PROPS), record("a", {"id": 1, "v": "nul \x00 here"})),
            ["stream 'a'", "line 2", "field 'v'", "NUL"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}),
                record("a", {"id": 1, "at": "not a time"}),
            ),
            ["stream 'a'", "line 2", "field 'at'"],
        ),
        (singer(schema_msg("a", PROPS, ["missing"])), ["stream 'a'", "line 1", "key properties"]),
        (
            singer(
                schema_msg(
                    "a", {"id": {"type": "integer"}, "u": {"type": ["null", "string"], "format": "uuid"}}
                ),
                record("a", {"id": 1, "u": "709ddafe-ed34-4bfa-96f1-33da607744b8"}),
                record("a", {"id": 2, "u": None}),
                record("a", {"id": 3, "u": "709ddafe-ed34-4bfa-96f1-33da607744b\n"}),
                record("a", {"id": 4, "u": "709ddafe-ed34-4bfa-96f1-33da607744b8"}),
            ),
            ["stream 'a'", "line 4", "field 'u'", "regex"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "u": {"type": "string", "format": "uuid"}}),
                record("a", {"id": 1, "u": "709ddafe-ed34-4bfa-96f1-33da607744b8"}),
                record("a", {"id": 2, "u": "709ddafe-ed34-4bfa-96f1-33da607744bg"}),
            ),
            ["stream 'a'", "line 3", "field 'u'", "regex"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "n": {"type": ["null", "number"]}}),
                record("a", {"id": 1, "n": 1.5}),
                record("a", {"id": 2, "n": None}),
                record("a", {"id": 3, "n": {"not": "a number"}}),
            ),
            ["stream 'a'", "line 4", "field 'n'"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "n": {"type": "number"}}),
                record("a", {"id": 1, "n": 2}),
                record("a", {"id": 2, "n": None}),
            ),
            ["stream 'a'", "line 3", "field 'n'"],
        ),
        (
            singer(
                schema_msg(
                    "a", {"id": {"type": "integer"}, "d": {"type": ["null", "string"], "format": "date"}}
                ),
                record("a", {"id": 1, "d": "2024-02-29"}),
                record("a", {"id": 2, "d": "2023-02-29"}),
            ),
            ["stream 'a'", "line 3", "field 'd'", "date"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}),
                record("a", {"id": 1, "at": "2024-04-30T10:00:00Z"}),
                record("a", {"id": 2, "at": "2024-04-31T10:00:00Z"}),
            ),
            ["stream 'a'", "line 3", "field 'at'", "datetime"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}),
                record("a", {"id": 1, "at": "2024-04-30T10:00:00Z"}),
                record("a", {"id": 2, "at": None}),
            ),
            ["stream 'a'", "line 3", "field 'at'"],
        ),
        (
            singer(
                schema_msg("a", {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}),
                record("a", {"id": 1, "at": "0000-01-01T00:00:00Z"}),
            ),
            ["stream 'a'", "line 2", "field 'at'"],
        ),
        (
            singer(
                schema_msg(
                    "a",
                    {"id": {"type": "integer"}, "at": {"type": ["null", "string"], "format": "date-time"}},
                ),
                record("a", {"id": 1, "at": "2024-04-30T10:00:00Z"}),
                record("a", {"id": 2, "at": 1714471200}),
            ),
            ["stream 'a'", "line 3", "field 'at'", "Expected datetime"],
        ),
    ],
    ids=[
        "malformed-json",
        "record-before-schema",
        "wrong-type",
        "missing-key",
        "nul",
        "bad-datetime",
        "bad-key-list",
        "bad-uuid",
        "bad-uuid-canonical-layout",
        "bad-number",
        "null-number",
        "no-such-day",
        "no-such-day-in-a-datetime",
        "null-datetime",
        "year-zero",
        "epoch-number-as-datetime",
    ],
)
def test_bad_input_is_one_clear_line(cli: Callable[..., Any], text: str, expected: list[str]) -> None:
    result = cli(text)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    for part in expected:
        assert part in line, line


def test_committed_batches_and_their_state_survive_a_bad_record(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    text = singer(
        schema_msg("a", PROPS, ["id"]),
        record("a", {"id": 1}),
        record("a", {"id": 2}),
        state({"s": 2}),
        record("a", {"id": 3}),
        record("a", {"id": 4}),
        state({"s": 4}),
        record("a", {"id": 5}),
        record("a", {"id": "bad"}),
        record("a", {"id": 6}),
    )
    result = cli(text, batch_size_rows=2)
    assert result.returncode == 1
    assert "line 9" in _error_line(result.stderr)
    assert [json.loads(s) for s in result.stdout.splitlines()][-1] == {"s": 4}
    # the valid record before the bad one in its batch is committed; nothing after the bad line is
    assert query(f'SELECT id FROM "{target_schema}".a ORDER BY id') == [(1,), (2,), (3,), (4,), (5,)]
    assert query(
        "SELECT status, error LIKE '%%line 9%%' FROM flx.stream_loads WHERE schema_name = %s", target_schema
    ) == [("failed", True)]


def test_nul_sanitized_when_asked(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    load(
        singer(
            schema_msg("a", {**PROPS, "o": {"type": ["null", "object"]}}),
            record("a", {"id": 1, "v": "a\x00b", "o": {"k": "x\x00y"}}),
        ),
        sanitize_null_text_characters=True,
    )
    assert query(f'SELECT v, o::text FROM "{target_schema}".a') == [("ab", '{"k": "xy"}')]


def test_quarantine_keeps_bad_lines_and_goes_on(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str, encoder: str
) -> None:
    q = f"q_{encoder}"  # flx.quarantine is shared by both encoders' runs
    text = singer(
        schema_msg(q, PROPS, ["id"]),
        record(q, {"id": 1}),
        record(q, {"id": "x"}),
        record(q, {"id": 3, "v": 7}),
        record(q, {"id": 4}),
        state({"s": 1}),
    )
    result = cli(text, on_invalid_record="quarantine")
    assert result.returncode == 0, result.stderr
    assert "2 invalid records were quarantined" in result.stderr
    assert [json.loads(s) for s in result.stdout.splitlines()] == [{"s": 1}]
    assert query(f'SELECT id FROM "{target_schema}".{q} ORDER BY id') == [(1,), (4,)]
    quarantined = query(
        "SELECT line_number, field, raw_line FROM flx.quarantine WHERE stream = %s ORDER BY line_number", q
    )
    assert [(n, f) for n, f, _ in quarantined[-2:]] == [(3, "id"), (4, "v")]
    assert json.loads(quarantined[-2][2])["record"] == {"id": "x"}
