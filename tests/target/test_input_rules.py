"""Input and settings target-flx refuses in one line before writing anything, and what it loads anyway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.target.singer_io import record, schema_msg, singer, state

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def _last_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


def test_two_streams_that_would_share_a_table_stop_before_writing(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    text = singer(
        schema_msg("orders", PROPS),
        record("orders", {"id": 1}),
        state(1),
        schema_msg("public-orders", PROPS),
        record("public-orders", {"id": 2}),
        state(2),
    )
    result = cli(text)
    assert result.returncode == 1
    line = _last_line(result.stderr)
    assert "streams 'orders' and 'public-orders' would both load into table" in line, line
    assert "line 4" in line
    # the first stream's record before the clash is committed and its STATE out; nothing of the second
    assert result.stdout.split() == ["1"]
    assert query(f'SELECT id FROM "{target_schema}".orders') == [(1,)]


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("batch_size_rows", 0, "setting 'batch_size_rows' must be a whole number >= 1, got 0"),
        ("batch_size_rows", -5, "setting 'batch_size_rows' must be a whole number >= 1, got -5"),
        ("batch_size_bytes", 0, "setting 'batch_size_bytes' must be a whole number >= 1, got 0"),
        ("max_parallelism", 0, "setting 'max_parallelism' must be a whole number >= 1, got 0"),
        ("connection_retry_seconds", -1, "setting 'connection_retry_seconds' must be a number >= 0"),
    ],
)
def test_settings_out_of_range_are_refused(
    cli: Callable[..., Any],
    query: Callable[..., Any],
    target_schema: str,
    setting: str,
    value: Any,
    expected: str,
) -> None:
    result = cli(singer(schema_msg("t", PROPS), record("t", {"id": 1}), state(1)), **{setting: value})
    assert result.returncode == 1
    assert _last_line(result.stderr).startswith(f"target-flx: error: {expected}")
    assert result.stdout == ""
    assert query("SELECT count(*) FROM pg_tables WHERE schemaname = %s", target_schema) == [(0,)]


def test_a_nul_under_quarantine_is_quarantined_and_the_run_goes_on(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    stream = f"nul_{target_schema}"
    text = singer(
        schema_msg(stream, PROPS, ["id"]),
        record(stream, {"id": 1, "v": "fine"}),
        record(stream, {"id": 2, "v": "bad\x00value"}),
        record(stream, {"id": 3, "v": "fine"}),
        state(3),
    )
    result = cli(text, on_invalid_record="quarantine", batch_size_rows=2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3"]
    assert query(f'SELECT id FROM "{target_schema}"."{stream}" ORDER BY id') == [(1,), (3,)]
    assert query("SELECT line_number, field FROM flx.quarantine WHERE stream = %s", stream) == [(3, "v")]


def test_a_property_named_like_a_metadata_column_does_not_break_the_load(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {**PROPS, "_sdc_batched_at": {"type": ["null", "string"]}}
    result = cli(
        singer(schema_msg("m", props), record("m", {"id": 1, "_sdc_batched_at": "theirs"}), state(1))
    )
    assert result.returncode == 0, result.stderr
    assert "property '_sdc_batched_at' has the name of a metadata column" in result.stderr
    assert query(f'SELECT id, _sdc_batched_at IS NOT NULL FROM "{target_schema}".m') == [(1, True)]


def test_a_property_name_with_a_quote_is_refused_in_one_line(cli: Callable[..., Any]) -> None:
    name = 'x"; DROP TABLE victim; --'
    result = cli(singer(schema_msg("v", {name: {"type": "integer"}}), record("v", {name: 1})))
    assert result.returncode == 1
    assert _last_line(result.stderr) == (
        f"target-flx: error: stream 'v', line 1, field {name!r}: property names holding a double quote,"
        " a backslash or a control character cannot be loaded; rename the property with a stream map"
    )


def test_a_record_nested_too_deeply_names_its_line(cli: Callable[..., Any]) -> None:
    props = {"id": {"type": "integer"}, "o": {"type": ["null", "object"]}}
    deep = '{"type":"RECORD","stream":"d","record":{"id":2,"o":{"a":' + "[" * 10000 + "]" * 10000 + "}}}\n"
    text = singer(schema_msg("d", props), record("d", {"id": 1})) + deep + singer(state(1))
    result = cli(text)
    assert result.returncode == 1
    assert (
        _last_line(result.stderr)
        == "target-flx: error: stream 'd', line 3: record nested too deeply to decode"
    )
    assert result.stdout == ""


def test_misspelt_settings_are_refused_with_a_suggestion(tmp_path: Any) -> None:
    """A typo must never send the load to the embedded database: no `.flx` is made, nothing loads."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hots": "127.0.0.1", "defualt_target_schema": "raw"}))
    exe = Path(sys.executable).with_name("target-flx")
    result = subprocess.run(
        [str(exe), "--config", str(config)],
        input=singer(schema_msg("t", PROPS), record("t", {"id": 1})),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert _last_line(result.stderr) == (
        "target-flx: error: unknown settings 'defualt_target_schema' (did you mean 'default_target_schema'?),"
        " 'hots' (did you mean 'host'?); `target-flx --about` lists the settings"
    )
    assert not (tmp_path / ".flx").exists()


def test_meltanolabs_settings_target_flx_does_not_need_are_accepted_with_a_note(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    result = cli(singer(schema_msg("n", PROPS), record("n", {"id": 1}), state(1)), use_copy=True)
    assert result.returncode == 0, result.stderr
    assert "setting 'use_copy' is not needed by target-flx" in result.stderr
    assert query(f'SELECT id FROM "{target_schema}".n') == [(1,)]
