"""The `make demo` source: a small warehouse (order headers, order lines, allocations) that changes per run.

Generated in SQL (deterministic: every value is a function of the row number and the round), so seeding
tens of thousands of rows takes well under a second. Round 1 creates the data; each later round updates a
slice of existing orders and adds new ones, bumping `updated_at`, so the second `meltano run` extracts
only the changes (tap-postgres INCREMENTAL; `clock_timestamp()` gives every row its own `updated_at`, so
the bookmark's `>=` re-reads one row, not a whole round) and target-flx's summary shows them as updates.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

SCHEMA = "warehouse"
ORDERS_PER_ROUND = 8_000
CHANGED_PER_ROUND = 600

_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.demo_rounds (round integer PRIMARY KEY, at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS {SCHEMA}.order_headers (
    order_id bigint PRIMARY KEY,
    customer_code text NOT NULL,
    warehouse text NOT NULL,
    status text NOT NULL,
    order_date date NOT NULL,
    promised_at timestamptz,
    total_amount numeric(14, 2) NOT NULL,
    notes text,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.order_lines (
    line_id bigint PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES {SCHEMA}.order_headers,
    line_number integer NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    unit_price numeric(12, 4) NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.allocations (
    allocation_id bigint PRIMARY KEY,
    line_id bigint NOT NULL REFERENCES {SCHEMA}.order_lines,
    location text NOT NULL,
    quantity integer NOT NULL,
    allocated_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
"""

# New orders of round :round: ids (round-1)*N+1 … round*N, three to five lines each, one or two allocations
# per line. `hashtext` gives stable pseudo-random numbers without a random generator's state.
_INSERT = f"""
INSERT INTO {SCHEMA}.order_headers
SELECT o, 'C' || lpad((abs(hashtext('c' || o)) % 2500)::text, 5, '0'),
       (ARRAY['LIS-1', 'OPO-2', 'MAD-1', 'RTM-3'])[1 + abs(hashtext('w' || o)) % 4],
       (ARRAY['open', 'picking', 'shipped', 'invoiced'])[1 + abs(hashtext('s' || o)) % 4],
       date '2026-01-01' + (o % 300),
       timestamptz '2026-01-03 09:00:00+00'
           + make_interval(days => o % 300, mins => abs(hashtext('p' || o)) % 600),
       0, CASE WHEN o % 7 = 0 THEN 'deliver to dock ' || (o % 5) || ', ring twice' END, clock_timestamp()
FROM generate_series((:round - 1) * {ORDERS_PER_ROUND} + 1, :round * {ORDERS_PER_ROUND}) AS o;

INSERT INTO {SCHEMA}.order_lines
SELECT o * 10 + l, o, l, 'SKU-' || lpad((abs(hashtext('k' || o || l)) % 9000)::text, 4, '0'),
       1 + abs(hashtext('q' || o || l)) % 24,
       round((1 + abs(hashtext('u' || o || l)) % 50000) / 100.0, 4),
       clock_timestamp()
FROM generate_series((:round - 1) * {ORDERS_PER_ROUND} + 1, :round * {ORDERS_PER_ROUND}) AS o,
     generate_series(1, 3 + abs(hashtext('n' || o)) % 3) AS l;

INSERT INTO {SCHEMA}.allocations
SELECT line_id * 10 + a, line_id, 'BIN-' || (abs(hashtext('b' || line_id || a)) % 400),
       greatest(1, quantity / a),
       timestamptz '2026-01-04 00:00:00+00' + make_interval(days => order_id::int % 300),
       clock_timestamp()
FROM {SCHEMA}.order_lines, generate_series(1, 1 + line_id::int % 2) AS a
WHERE order_id > (:round - 1) * {ORDERS_PER_ROUND};

UPDATE {SCHEMA}.order_headers h SET total_amount = s.total
FROM (SELECT order_id, sum(quantity * unit_price)::numeric(14, 2) AS total
      FROM {SCHEMA}.order_lines GROUP BY order_id) s
WHERE s.order_id = h.order_id AND h.order_id > (:round - 1) * {ORDERS_PER_ROUND};
"""

# Later rounds also move a slice of older orders along their lifecycle, as a real warehouse would.
_UPDATE = f"""
UPDATE {SCHEMA}.order_headers
SET status = CASE status WHEN 'open' THEN 'picking' WHEN 'picking' THEN 'shipped' ELSE 'invoiced' END,
    updated_at = clock_timestamp()
WHERE order_id IN (
    SELECT order_id FROM {SCHEMA}.order_headers
    WHERE order_id <= (:round - 1) * {ORDERS_PER_ROUND}
    ORDER BY abs(hashtext('r' || :round || order_id)) LIMIT {CHANGED_PER_ROUND}
);
"""


@dataclass(frozen=True)
class DemoRound:
    round: int
    orders: int
    lines: int
    allocations: int
    changed_orders: int


def seed(engine: Engine) -> DemoRound:
    """Create the source on the first call; add and change orders on every later one."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('flx demo seed'))"))
        for statement in _CREATE.split(";"):
            if statement.strip():
                conn.execute(text(statement))
        round_ = conn.execute(
            text(f"SELECT coalesce(max(round), 0) + 1 FROM {SCHEMA}.demo_rounds")
        ).scalar_one()
        changed = 0
        if round_ > 1:
            changed = conn.execute(text(_UPDATE), {"round": round_}).rowcount
        for statement in _INSERT.split(";"):
            if statement.strip():
                conn.execute(text(statement), {"round": round_})
        conn.execute(text(f"INSERT INTO {SCHEMA}.demo_rounds (round) VALUES (:round)"), {"round": round_})
        counts = conn.execute(
            text(
                f"SELECT (SELECT count(*) FROM {SCHEMA}.order_headers),"
                f" (SELECT count(*) FROM {SCHEMA}.order_lines),"
                f" (SELECT count(*) FROM {SCHEMA}.allocations)"
            )
        ).one()
    return DemoRound(round_, counts[0], counts[1], counts[2], changed)
