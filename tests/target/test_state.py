"""STATE is emitted once every record before it is committed, never before; the last one always."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

from tests.target.singer_io import record, schema_msg, singer, state

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def test_no_state_before_its_records_are_committed(
    cli_process: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """Every STATE the target prints is checked against the database at the moment it is printed."""
    messages: list[dict[str, Any]] = [schema_msg("a", PROPS, ["id"]), schema_msg("b", PROPS, ["id"])]
    for i in range(1, 301):
        messages.append(record("a" if i % 3 else "b", {"id": i}))
        if i % 10 == 0:
            messages.append(state({"upto": i}))
    proc = cli_process(batch_size_rows=7)
    proc.stdin.write(singer(*messages))
    proc.stdin.close()
    seen = []
    for line in proc.stdout:
        upto = json.loads(line)["upto"]
        committed = query(
            f'SELECT (SELECT count(*) FROM "{target_schema}".a WHERE id <= %s) + '
            f'(SELECT count(*) FROM "{target_schema}".b WHERE id <= %s)',
            upto,
            upto,
        )[0][0]
        assert committed == upto, f"STATE upto={upto} printed with only {committed} records committed"
        seen.append(upto)
    assert proc.wait(timeout=60) == 0
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == 300
    assert len(seen) > 5  # intermediate STATEs go out during the run, not only at the end


def test_final_state_is_last_received_even_without_records(load: Callable[..., Any]) -> None:
    result = load(singer(schema_msg("a", PROPS), state({"s": 1}), state({"s": 2})))
    assert result.states == [{"s": 1}, {"s": 2}]  # nothing to wait for: each goes out at once


def test_empty_input_is_a_no_op(load: Callable[..., Any]) -> None:
    assert load("").states == []


def test_unknown_message_types_are_ignored(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    text = singer(schema_msg("a", PROPS), {"type": "FUTURE_THING", "x": 1}, record("a", {"id": 1}), state(1))
    assert load(text).states == [1]
    assert query(f'SELECT count(*) FROM "{target_schema}".a') == [(1,)]


def test_state_emitted_while_input_is_idle(cli_process: Callable[..., Any]) -> None:
    """A tap that pauses: what it sent is committed and its STATE goes out before the next line."""
    proc = cli_process()
    proc.stdin.write(singer(schema_msg("idle", PROPS, ["id"]), record("idle", {"id": 1}), state({"s": 1})))
    proc.stdin.flush()
    started = time.monotonic()
    line = proc.stdout.readline()  # blocks until the target emits, while stdin stays open
    assert json.loads(line) == {"s": 1}
    assert time.monotonic() - started < 20
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def test_sigterm_commits_what_was_received(
    cli_process: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """Meltano cancels with SIGTERM: records received so far are committed, their STATE printed, exit 143."""
    proc = cli_process(batch_size_rows=1000, state_flush_seconds=3600)
    proc.stdin.write(
        singer(schema_msg("t", PROPS, ["id"]), *[record("t", {"id": i}) for i in range(50)], state({"s": 50}))
    )
    proc.stdin.flush()
    time.sleep(0.2)
    deadline = time.monotonic() + 30
    # The load's history row is written once the table exists; the 50 records and the STATE that follow it
    # in the same pipe read take microseconds, so half a second later they have been received.
    while not query("SELECT 1 FROM flx.stream_loads WHERE schema_name = %s", target_schema):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    assert proc.wait(timeout=30) == 143
    assert [json.loads(line) for line in out.splitlines()] == [{"s": 50}]
    assert query(f'SELECT count(*) FROM "{target_schema}".t') == [(50,)]
    assert query("SELECT status FROM flx.stream_loads WHERE schema_name = %s", target_schema) == [
        ("cancelled",)
    ]
