"""Stable names and jitter for ticks, identical in every process so several schedulers agree.

Python's built-in `hash()` is salted per process, hence hashlib.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from flx.schedule.instants import as_utc


def tick_key(pipeline: str, tick: datetime) -> str:
    """The idempotency key of one pipeline tick, e.g. ``daily@2026-03-29T01:30:00Z``.

    Used as the queueing lock so each tick is enqueued once however many schedulers see it. Ticks are whole
    seconds (cron has minute resolution), so sub-second digits would only ever make two keys for one tick.
    """
    return f"{pipeline}@{as_utc(tick, 'tick'):%Y-%m-%dT%H:%M:%SZ}"


def jittered(tick: datetime, jitter_seconds: float, key: str) -> datetime:
    """The tick plus a deterministic offset in [0, jitter_seconds): spreads pipelines sharing a cron.

    The offset depends only on (key, tick), so every scheduler computes the same start time for a tick,
    while one pipeline's offset still varies from tick to tick.
    """
    tick = as_utc(tick, "tick")
    span_microseconds = int(jitter_seconds * 1_000_000)
    if span_microseconds <= 0:
        return tick
    digest = hashlib.blake2b(tick_key(key, tick).encode(), digest_size=8).digest()
    return tick + timedelta(microseconds=int.from_bytes(digest, "big") % span_microseconds)
