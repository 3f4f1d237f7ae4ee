"""Rich renderings of history for people; `--json` output lives beside the commands."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rich.console import Group
from rich.table import Table
from rich.text import Text

from orchestrator.history import ExecutionDetail, ExecutionRow

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "failed_validation": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "skipped": "dim",
    "running": "cyan",
    "retrying": "cyan",
    "pending": "dim",
}


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _duration(value: Decimal | None) -> str:
    if value is None:
        return "-"
    seconds = float(value)
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def _first_line(text: str | None, limit: int = 80) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1][:limit] if lines else ""


def history_table(rows: list[ExecutionRow]) -> Table:
    table = Table(title="flx executions (newest first)", header_style="bold")
    for column in ("pipeline", "#", "status", "attempt", "exit", "started", "duration", "trigger", "error"):
        table.add_column(column, justify="right" if column in {"#", "attempt", "exit"} else "left")
    for row in rows:
        table.add_row(
            row.pipeline,
            str(row.execution_number),
            status_text(row.status),
            str(row.attempt),
            "-" if row.exit_code is None else str(row.exit_code),
            _when(row.started_at),
            _duration(row.duration_seconds),
            row.trigger,
            _first_line(row.error),
        )
    return table


def detail_view(detail: ExecutionDetail) -> Group:
    row = detail.execution
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in (
        ("execution", f"{row.pipeline} #{row.execution_number}  ({row.id})"),
        ("status", status_text(row.status)),
        ("attempt", str(row.attempt)),
        ("exit code", "-" if row.exit_code is None else str(row.exit_code)),
        ("started", _when(row.started_at)),
        ("ended", _when(row.ended_at)),
        ("duration", _duration(row.duration_seconds)),
        ("meltano run id", str(detail.run_id or "-")),
        ("runner", f"pid {detail.pid} on {detail.hostname}"),
        ("error", row.error or "-"),
    ):
        facts.add_row(label, value)

    events = Table(title="events", header_style="bold")
    for column in ("seq", "at", "type", "details"):
        events.add_column(column)
    for event in detail.events:
        details = ", ".join(f"{k}={v}" for k, v in event.payload.items() if k != "error")
        events.add_row(str(event.seq), _when(event.at), status_text(event.type), details[:100])

    parts: list[Table] = [facts, events]
    if detail.loads:
        loads = Table(title="stream loads", header_style="bold")
        for column in ("stream", "table", "method", "inserted", "updated", "deleted", "status"):
            loads.add_column(
                column, justify="right" if column in {"inserted", "updated", "deleted"} else "left"
            )
        for load in detail.loads:
            loads.add_row(
                load.stream,
                f"{load.schema_name}.{load.table_name}",
                load.load_method or "-",
                f"{load.rows_inserted:,}",
                f"{load.rows_updated:,}",
                f"{load.rows_deleted:,}",
                status_text(load.status),
            )
        parts.append(loads)
    if detail.validations:
        checks = Table(title="validations", header_style="bold")
        for column in ("check", "kind", "status", "observed", "expected"):
            checks.add_column(column)
        for check in detail.validations:
            checks.add_row(
                check.check_name,
                check.kind,
                status_text(check.status),
                check.observed or "-",
                check.expected or "-",
            )
        parts.append(checks)
    return Group(*parts)
