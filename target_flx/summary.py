"""The end-of-run table: what each stream loaded, how fast."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from target_flx.stream import StreamLoader


def print_summary(loaders: Iterable[StreamLoader], seconds: float) -> None:
    table = Table(title=f"target-flx: loaded in {seconds:.1f} s", title_justify="left")
    for heading in (
        "stream",
        "table",
        "method",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
        "quarantined",
        "batches",
        "MB",
        "status",
    ):
        table.add_column(
            heading, justify="right" if heading not in ("stream", "table", "method", "status") else "left"
        )
    for s in loaders:
        st = s.stats
        table.add_row(
            s.stream,
            f"{s.schema}.{s.table}",
            s.method,
            f"{st.inserted:,}",
            f"{st.updated:,}",
            f"{st.unchanged:,}",
            f"{st.deleted:,}",
            f"{st.quarantined:,}",
            f"{st.batches:,}",
            f"{st.bytes / 1e6:.1f}",
            st.status,
        )
    Console(stderr=True, width=160).print(table)
