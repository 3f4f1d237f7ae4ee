"""STATE is emitted once every record before it is committed, never before; the last one always."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
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


# Runs target-flx with a garbage-collector callback that, once the trigger file exists, signals the process
# from inside the callback: the handler's `Cancelled` lands where the interpreter prints and swallows it.
_SIGNAL_IN_A_FINALIZER = """
import gc, os, signal, sys, threading, time
from target_flx.main import main

trigger = sys.argv.pop(1)
checked = [0.0]

def callback(phase, info):
    if threading.current_thread() is not threading.main_thread() or phase != "start":
        return
    now = time.monotonic()
    if now - checked[0] < 0.05:
        return
    checked[0] = now
    if os.path.exists(trigger):
        gc.callbacks.remove(callback)
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs here, inside the callback
            pass

gc.callbacks.append(callback)
gc.set_threshold(1)
main()
"""


def test_sigterm_swallowed_by_a_finalizer_still_cancels(
    target_config: dict[str, Any], query: Callable[..., Any], target_schema: str, tmp_path: Path
) -> None:
    """A signal that arrives while a finalizer or the garbage collector runs is still a cancel: exit 143,
    only committed STATE, the load recorded as cancelled, not a run that goes on and ends with 0."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**target_config, "batch_size_rows": 100}))
    trigger = tmp_path / "signal-now"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIGNAL_IN_A_FINALIZER, str(trigger), "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(singer(schema_msg("f", PROPS, ["id"]), *[record("f", {"id": i}) for i in range(50)]))
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not query("SELECT to_regclass('flx.stream_loads') IS NOT NULL")[0][0] or not query(
        "SELECT 1 FROM flx.stream_loads WHERE schema_name = %s", target_schema
    ):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    trigger.touch()
    sent = 50
    with contextlib.suppress(OSError):
        while proc.poll() is None and time.monotonic() < deadline:  # keep the main thread busy
            more = [record("f", {"id": sent + i}) for i in range(20)]
            proc.stdin.write(singer(*more, state({"s": sent + 20})))
            proc.stdin.flush()
            sent += 20
            time.sleep(0.02)
    with contextlib.suppress(OSError):
        proc.stdin.close()
    with proc.stdout, proc.stderr:
        out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=60)
    assert "Exception ignored" in err, err  # the handler did run where its exception is swallowed
    assert proc.returncode == 143, err
    assert "received signal SIGTERM: committed what was received" in err
    states = [json.loads(line)["s"] for line in out.splitlines()]
    committed = query(f'SELECT count(*) FROM "{target_schema}".f')[0][0]
    assert all(s <= committed for s in states), (states, committed)
    assert query("SELECT status FROM flx.stream_loads WHERE schema_name = %s", target_schema) == [
        ("cancelled",)
    ]
