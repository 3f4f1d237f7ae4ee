"""Schema evolution: new properties become columns, types widen in place, nothing is dropped or narrowed."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any

from tests.target.singer_io import record, schema_msg, singer, state


def _types(query: Callable[..., Any], schema: str, table: str) -> dict[str, str]:
    return dict(
        query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            schema,
            table,
        )
    )


def test_widening_mid_stream(load: Callable[..., Any], query: Callable[..., Any], target_schema: str) -> None:
    v1 = {
        "id": {"type": "integer"},
        "n": {"type": ["null", "integer"]},
        "d": {"type": ["null", "string"], "format": "date"},
    }
    v2 = {
        "id": {"type": "integer"},
        "n": {"type": ["null", "number"]},
        "d": {"type": ["null", "string"], "format": "date-time"},
        "extra": {"type": ["null", "string"]},
    }
    v3 = {"id": {"type": "integer"}, "n": {"type": ["null", "string"]}, "d": {"type": ["null", "string"]}}
    text = singer(
        schema_msg("evo", v1, ["id"]),
        record("evo", {"id": 1, "n": 7, "d": "2024-01-02"}),
        schema_msg("evo", v2, ["id"]),
        record(
            "evo", {"id": 2, "n": decimal.Decimal("7.25"), "d": "2024-01-02T03:04:05+01:00", "extra": "x"}
        ),
        schema_msg("evo", v3, ["id"]),
        record("evo", {"id": 3, "n": "seven", "d": "whenever"}),
        state({"done": True}),
    )
    result = load(text)
    assert result.states == [{"done": True}]
    types = _types(query, target_schema, "evo")
    assert types["n"] == "text" and types["d"] == "text" and types["extra"] == "text"
    rows = query(f'SELECT id, n, d, extra FROM "{target_schema}".evo ORDER BY id')
    assert rows[0][:2] == (1, "7")
    assert rows[1][1] == "7.25"
    assert rows[2] == (3, "seven", "whenever", None)


def test_narrower_schema_keeps_wider_column(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    load(
        singer(
            schema_msg("keep", {"id": {"type": "integer"}, "v": {"type": "number"}}),
            record("keep", {"id": 1, "v": decimal.Decimal("1.5")}),
        )
    )
    load(
        singer(
            schema_msg("keep", {"id": {"type": "integer"}, "v": {"type": "integer"}}),
            record("keep", {"id": 2, "v": 3}),
        )
    )
    assert _types(query, target_schema, "keep")["v"] == "numeric"
    assert query(f'SELECT v FROM "{target_schema}".keep ORDER BY id') == [
        (decimal.Decimal("1.5"),),
        (decimal.Decimal("3"),),
    ]


def test_integer_beyond_int64_widens_to_numeric(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {"id": {"type": "integer"}, "big": {"type": ["null", "integer"]}}
    load(
        singer(
            schema_msg("ovf", props, ["id"]),
            record("ovf", {"id": 1, "big": 5}),
            record("ovf", {"id": 2, "big": 2**64 + 1}),
            record("ovf", {"id": 3, "big": -(2**70)}),
        )
    )
    assert _types(query, target_schema, "ovf")["big"] == "numeric"
    assert [r[0] for r in query(f'SELECT big FROM "{target_schema}".ovf ORDER BY id')] == [
        5,
        2**64 + 1,
        -(2**70),
    ]


def test_dropped_property_keeps_column(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    load(
        singer(
            schema_msg("drop", {"id": {"type": "integer"}, "gone": {"type": "string"}}),
            record("drop", {"id": 1, "gone": "x"}),
            schema_msg("drop", {"id": {"type": "integer"}}),
            record("drop", {"id": 2}),
        )
    )
    assert query(f'SELECT id, gone FROM "{target_schema}".drop ORDER BY id') == [(1, "x"), (2, None)]
