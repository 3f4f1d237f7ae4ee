"""The benchmark's record shapes: a JSON Schema and a seeded row builder for each.

Rows are built from a few 30-bit `getrandbits` draws per record sliced into fields (small ints are cheap
in CPython, 256-bit ones are not) and from precomputed pools (days, times of day, offsets, notes, tags),
because per-field RNG calls and datetime formatting would make the generator slower than the loaders.
Every value is a plain Python type that orjson serializes exactly: amounts are floats whose shortest
repr is the intended 2-4 decimal text, so the JSON number is exact.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]
CHUNK = 10_000  # rows per seed, and per STATE message

_BASE_DAY = datetime.date(2023, 1, 1)
DAYS = [(_BASE_DAY + datetime.timedelta(days=d)).isoformat() for d in range(730)]
OFFSETS = ["Z", "+00:00", "+02:00", "-05:30", "+05:45", "-08:00", "+09:00", "+13:00", "-03:00", "+01:00"]
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded", "on_hold"]
NOTES: list[str | None] = [
    None,
    None,
    None,
    "",
    "Leave at the door",
    'Customer said: "ring twice"',
    "tab\tseparated\tnote",
    "multi-line\nnote with a second line",
    "back\\slash and 'single' quotes",
    "Grüße aus Köln — naïve café ☕",
    "東京への配送 🚚",
    "emoji only 🎉🎉",
    "comma, semicolon; pipe | and percent %",
    "Zażółć gęślą jaźń",
    "  padded with spaces  ",
    "ends with backslash \\",
]
TAG_POOL = ["gift", "express", "fragile", "b2b", "promo", "vip", "repeat", "intl", "bulk", "eco"]
SOURCES = ["web", "ios", "android", "store", "phone", "partner"]
CAMPAIGNS = ["spring-sale", "black-friday", "newsletter", "retargeting", "organic", "referral"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett"]


def _time_of_day(n: int) -> str:
    seconds = n * 86_399 // 65_535
    micros = n * 15_259 % 1_000_000
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micros:06d}"


# 65536 distinct times of day: with the 730 days and 10 offsets, plenty of distinct instants, at the cost
# of one list lookup instead of integer formatting per timestamp.
TIMES = [_time_of_day(n) for n in range(65_536)]
TAG_LISTS = [
    [TAG_POOL[(start + k) % len(TAG_POOL)] for k in range(n)] for n in range(5) for start in range(10)
]


def _timestamp(bits: int) -> str:
    """ISO 8601 with microseconds and an explicit offset, from 30 random bits."""
    return f"{DAYS[bits % 700]}T{TIMES[bits >> 14]}{OFFSETS[(bits >> 10) % 10]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _uuid4(bits: int) -> str:
    h = bits.to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_SCALES = (100, 1_000, 10_000)


def _amount(bits: int) -> float:
    """2-4 decimals, e.g. 1234.5678: an integer divided by a power of ten is correctly rounded, so the
    float is the nearest one to that decimal and its shortest repr (what orjson writes) is the decimal."""
    scale = _SCALES[bits % 3]
    return (bits >> 2) % (100_000 * scale) / scale


def orders_row(rng: random.Random, i: int) -> Row:
    r = rng.getrandbits
    a, b, c, d = r(30), r(30), r(30), r(30)
    day = a % 700
    return {
        "order_id": i,
        "customer_id": 1 + b % 250_000,
        "order_uuid": _uuid4(r(128)),
        "amount": _amount(r(32)),
        "is_paid": bool(a & 1024),
        "created_at": f"{DAYS[day]}T{TIMES[b >> 14]}{OFFSETS[c % 10]}",
        "updated_at": f"{DAYS[day + c % 30]}T{TIMES[d >> 14]}{OFFSETS[d % 10]}",
        "ship_date": DAYS[day + (c >> 5) % 10],
        "note": NOTES[(c >> 9) % len(NOTES)],
        "tags": TAG_LISTS[(d >> 4) % 50],
        "attrs": {
            "source": SOURCES[(a >> 10) % len(SOURCES)],
            "campaign": {"id": (a >> 13) % 10_000, "name": CAMPAIGNS[(c >> 13) % len(CAMPAIGNS)]},
            "score": (b >> 4) % 10_000 / 100,
            "first_order": bool(a & 2048),
            "referrer": None if c & 1 else f"https://example.com/r/{(c >> 17) % 100_000}",
        },
        "quantity": 1 + (d >> 10) % 20,
        "status": STATUSES[(a >> 24) % len(STATUSES)],
    }


ORDERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "integer"},
        "customer_id": {"type": "integer"},
        "order_uuid": {"type": "string", "format": "uuid"},
        "amount": {"type": "number"},
        "is_paid": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "ship_date": {"type": "string", "format": "date"},
        "note": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "attrs": {
            "type": "object",
            "properties": {
                "source": {"type": "string"},
                "campaign": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
                "score": {"type": "number"},
                "first_order": {"type": "boolean"},
                "referrer": {"type": ["string", "null"]},
            },
        },
        "quantity": {"type": "integer"},
        "status": {"type": "string"},
    },
    "required": ["order_id"],
}


def narrow_row(rng: random.Random, i: int) -> Row:
    b = rng.getrandbits(64)
    return {"id": i, "value": f"{WORDS[b % 10]}-{b >> 4:x}"}


NARROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "value": {"type": "string"}},
    "required": ["id"],
}

WIDE_KINDS = ("integer", "number", "string", "boolean", "date-time")
WIDE_COLUMNS = [f"c{n:02d}_{WIDE_KINDS[n % 5].replace('-', '_')}" for n in range(1, 60)]


_WIDE_PLAN = [(name, WIDE_KINDS[n % 5]) for n, name in enumerate(WIDE_COLUMNS, start=1)]
_WIDE_BY_KIND = {kind: [name for name, k in _WIDE_PLAN if k == kind] for kind in WIDE_KINDS}
WIDE_STRINGS = [f"{WORDS[n % 10]} {WORDS[n // 10 % 10]} {n * 7919 % 99_991}" for n in range(4096)]


def wide_row(rng: random.Random, i: int) -> Row:
    """Values drawn per kind (one call per value, pools for text), keys grouped by kind."""
    g = rng.getrandbits
    by_kind = _WIDE_BY_KIND
    row: Row = {"id": i}
    row.update(zip(by_kind["integer"], [g(31) - 1_000_000_000 for _ in by_kind["integer"]], strict=True))
    row.update(zip(by_kind["number"], [_amount(g(32)) for _ in by_kind["number"]], strict=True))
    row.update(zip(by_kind["string"], [WIDE_STRINGS[g(12)] for _ in by_kind["string"]], strict=True))
    bools = g(len(by_kind["boolean"]))
    row.update((name, bool(bools >> k & 1)) for k, name in enumerate(by_kind["boolean"]))
    row.update(zip(by_kind["date-time"], [_timestamp(g(30)) for _ in by_kind["date-time"]], strict=True))
    return row


def _wide_property(kind: str) -> dict[str, Any]:
    if kind == "date-time":
        return {"type": ["string", "null"], "format": "date-time"}
    return {"type": [kind, "null"]}


WIDE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": {"type": "integer"}} | {name: _wide_property(kind) for name, kind in _WIDE_PLAN},
    "required": ["id"],
}


@dataclass(frozen=True)
class Shape:
    """A stream: its name, schema, key and how to build row `i` (ids run 1..N)."""

    stream: str
    schema: dict[str, Any]
    key: str
    build: Callable[[random.Random, int], Row]
    seed: int

    @property
    def columns(self) -> list[str]:
        return list(self.schema["properties"])

    def chunk(self, index: int, count: int) -> list[Row]:
        """Rows of chunk `index` (ids index*CHUNK+1 …) of a `count`-row stream. Each chunk has its own
        seed, so chunks can be built in parallel and a shorter stream is a prefix of a longer one."""
        rng = random.Random(self.seed * 1_000_003 + index)
        build = self.build
        return [build(rng, i) for i in range(index * CHUNK + 1, min((index + 1) * CHUNK, count) + 1)]


SHAPES: dict[str, Shape] = {
    "orders": Shape("orders", ORDERS_SCHEMA, "order_id", orders_row, 20240601),
    "narrow": Shape("narrow", NARROW_SCHEMA, "id", narrow_row, 7),
    "wide": Shape("wide", WIDE_SCHEMA, "id", wide_row, 60),
}
