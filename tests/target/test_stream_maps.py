"""Stream maps and flattening go through singer-sdk's mapper and land exactly like unmapped input."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any

from tests.target.singer_io import record, schema_msg, singer

PROPS = {
    "id": {"type": "integer"},
    "amount": {"type": ["null", "number"]},
    "secret": {"type": ["null", "string"]},
    "nested": {"type": ["null", "object"], "properties": {"a": {"type": ["null", "integer"]}}},
}


def test_stream_maps_alias_filter_and_drop(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    maps = {
        "orders": {"__alias__": "renamed", "__filter__": "id != 2", "secret": None, "double_id": "id * 2"}
    }
    text = singer(
        schema_msg("orders", PROPS, ["id"]),
        *[
            record(
                "orders",
                {
                    "id": i,
                    "amount": decimal.Decimal("12345678901234567890.12"),
                    "secret": "s",
                    "nested": {"a": i},
                },
            )
            for i in (1, 2, 3)
        ],
    )
    load(text, stream_maps=maps)
    cols = {
        c
        for (c,) in query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'renamed'",
            target_schema,
        )
    }
    assert "secret" not in cols and "double_id" in cols
    # singer-sdk types an expression property as a string; an SDK target stores "2" in a text column too
    assert query(f'SELECT id, amount, double_id FROM "{target_schema}".renamed ORDER BY id') == [
        (1, decimal.Decimal("12345678901234567890.12"), "2"),
        (3, decimal.Decimal("12345678901234567890.12"), "6"),
    ]


def test_flattening(load: Callable[..., Any], query: Callable[..., Any], target_schema: str) -> None:
    load(
        singer(schema_msg("flat", PROPS, ["id"]), record("flat", {"id": 1, "nested": {"a": 5}})),
        flattening_enabled=True,
        flattening_max_depth=1,
    )
    assert query(f'SELECT id, nested__a FROM "{target_schema}".flat') == [(1, 5)]
