"""Batch bounds: rows and input bytes, exact whether lines arrive one by one or a read chunk at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.target.singer_io import record, schema_msg, singer, state

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def _expected_batches(sizes: list[int], rows: int, limit: int) -> int:
    """What `add` does per line: flush once the batch holds `rows` lines or `limit` bytes."""
    batches, count, nbytes = 0, 0, 0
    for size in sizes:
        count, nbytes = count + 1, nbytes + size
        if count >= rows or nbytes >= limit:
            batches, count, nbytes = batches + 1, 0, 0
    return batches + (1 if count else 0)


@pytest.mark.parametrize(("rows", "limit"), [(7, 10**9), (10_000, 2_000), (13, 1_500)])
def test_batches_are_bounded_by_rows_and_bytes(
    cli: Callable[..., Any], query: Callable[..., Any], target_schema: str, rows: int, limit: int
) -> None:
    records = [record("t", {"id": i, "v": "x" * (i % 50)}) for i in range(1, 301)]
    text = singer(schema_msg("t", PROPS), *records, state({"done": True}))
    sizes = [len(line.encode()) for line in text.splitlines()[1:-1]]
    result = cli(text, batch_size_rows=rows, batch_size_bytes=limit, load_method="append-only")
    assert result.returncode == 0, result.stderr
    loaded = query(
        "SELECT batches, rows_inserted FROM flx.stream_loads WHERE schema_name = %s", target_schema
    )
    assert loaded == [(_expected_batches(sizes, rows, limit), 300)]
    assert query(f'SELECT count(*), sum(id) FROM "{target_schema}".t') == [(300, 300 * 301 // 2)]
