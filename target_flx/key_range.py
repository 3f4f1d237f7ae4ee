"""The keys an upsert batch cannot conflict with: beyond the lowest and highest key the table holds.

Ever-growing ids, the usual shape of a backfill or an incremental load, arrive above every key already
loaded; such a batch is COPYed straight in, as an append, instead of through the stage and `ON CONFLICT`.
Only one integer or date key qualifies (Python and PostgreSQL compare those alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from target_flx.codec import Column
from target_flx.table import StreamTable, bounded_key

UNREAD = object()  # no range was read with the table


class KnownKeys:
    """The stream's known key range: read with the table, or from its unique index, then widened by
    every batch sent in this run."""

    def __init__(self) -> None:
        self.bounded = False
        self.known: tuple[Any, Any] | None = None  # None: the table holds no key yet
        self._prefetched: tuple[Any, Any] | object | None = UNREAD

    def offer(self, prefetched: tuple[Any, Any] | object | None) -> None:
        """The range the table's preparation read along (or `UNREAD`), for the next `load`."""
        self._prefetched = prefetched

    def load(self, dest: StreamTable, key: Column | None) -> None:
        """Decide whether the stream's key qualifies (`key`: an upsert's only key column, if it has one)
        and, if so, learn the table's range (from what the preparation read, else two reads of the key's
        unique index)."""
        self.bounded = key is not None and bounded_key(key.json_kind, key.pg_type)
        prefetched, self._prefetched = self._prefetched, UNREAD
        if key is not None and self.bounded:
            self.known = dest.key_range(key.name) if prefetched is UNREAD else prefetched  # type: ignore[assignment]

    def all_new(self, keys: Sequence[Any]) -> bool:
        """Whether every key of the batch lies outside the known range (which then takes the batch in)."""
        if not self.bounded or not keys:
            return False
        lo, hi = min(keys), max(keys)
        known = self.known
        self.known = (lo, hi) if known is None else (min(lo, known[0]), max(hi, known[1]))
        return known is None or lo > known[1] or hi < known[0]
