"""The end-of-run table: what each stream loaded, how fast."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from target_flx.log_format import json_wanted

log = logging.getLogger("target-flx")

if TYPE_CHECKING:
    from target_flx.stream import StreamLoader


MAX_ROWS = 20  # the largest streams; a log with hundreds of rows is read by nobody


_LEFT = ("stream", "table", "method", "status")
_COUNTS = ("inserted", "updated", "unchanged", "deleted", "quarantined", "batches")
_HEADINGS = ("stream", "table", "method", *_COUNTS, "MB", "status")


def print_summary(loaders: Iterable[StreamLoader], seconds: float) -> None:
    loaders = list(loaders)
    if json_wanted():  # log shippers get one line per stream, not a drawn table
        _log_summary(loaders, seconds)
        return
    console = Console(stderr=True, width=160)
    if not loaders:
        console.print(f"target-flx: no streams in the input ({seconds:.1f} s)")
        return
    records = sum(map(_records, loaders))
    rate = f", {records / seconds:,.0f} records/s" if seconds > 0 and records else ""
    table = Table(title=f"target-flx: {records:,} records in {seconds:.1f} s{rate}", title_justify="left")
    for heading in _HEADINGS:
        table.add_column(heading, justify="left" if heading in _LEFT else "right")
    shown = sorted(loaders, key=_records, reverse=True)[:MAX_ROWS] if len(loaders) > MAX_ROWS else loaders
    for s in shown:
        st = s.stats
        table.add_row(
            s.stream,
            f"{s.schema}.{s.table}",
            s.method,
            *(f"{getattr(st, count):,}" for count in _COUNTS),
            f"{st.bytes / 1e6:.1f}",
            st.status,
        )
    if len(shown) < len(loaders):
        rest = [s for s in loaders if s not in shown]
        table.caption = (
            f"… and {len(rest):,} more streams ({sum(map(_records, rest)):,} records);"
            " the control schema's stream_loads table has every one"
        )
    console.print(table)


def _log_summary(loaders: list[StreamLoader], seconds: float) -> None:
    for s in loaders:
        log.info(
            "stream %r: %s into %s.%s",
            s.stream,
            s.stats.status,
            s.schema,
            s.table,
            extra={"stream": s.stream, "table": f"{s.schema}.{s.table}", "records": _records(s)},
        )
    log.info("%d streams in %.1f s", len(loaders), seconds, extra={"seconds": round(seconds, 3)})


def _records(loader: StreamLoader) -> int:
    return loader.stats.inserted + loader.stats.updated + loader.stats.unchanged
