"""A run killed with SIGKILL mid-stream, rerun from its last emitted STATE, loses and duplicates nothing."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from typing import Any

from tests.target.singer_io import record, schema_msg, singer, state

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}
TOTAL = 3000


def _tap(start: int, end: int) -> str:
    """What a tap resuming after bookmark `start` sends: records start+1..end, a STATE every 100."""
    messages: list[dict[str, Any]] = [schema_msg("k", PROPS, ["id"])]
    for i in range(start + 1, end + 1):
        messages.append(record("k", {"id": i, "v": f"value {i}"}))
        if i % 100 == 0:
            messages.append(state({"bookmarks": {"k": i}}))
    return singer(*messages)


def test_sigkill_then_resume(
    cli_process: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    proc = cli_process(batch_size_rows=250)
    proc.stdin.write(_tap(0, 2000))  # the tap is still running: stdin stays open
    proc.stdin.flush()
    bookmark = 0
    while bookmark < 1000:
        bookmark = json.loads(proc.stdout.readline())["bookmarks"]["k"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    committed = query(f'SELECT count(*) FROM "{target_schema}".k')[0][0]
    assert committed >= bookmark  # everything up to the emitted STATE is in

    second = cli_process(batch_size_rows=250)
    second.stdin.write(_tap(bookmark, TOTAL))
    second.stdin.close()
    states = [json.loads(line) for line in second.stdout]
    assert second.wait(timeout=60) == 0
    assert states[-1] == {"bookmarks": {"k": TOTAL}}
    assert query(f'SELECT count(*), count(DISTINCT id), min(id), max(id) FROM "{target_schema}".k') == [
        (TOTAL, TOTAL, 1, TOTAL)
    ]
    assert query(f"SELECT count(*) FROM \"{target_schema}\".k WHERE v <> 'value ' || id") == [(0,)]
