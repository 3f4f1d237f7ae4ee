"""target-flx's own settings (the database ones come from flx_core), with MeltanoLabs' names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

LoadMethod = Literal["append-only", "upsert", "overwrite"]


@dataclass(frozen=True)
class LoadSettings:
    default_target_schema: str | None
    load_method: LoadMethod | None  # None: upsert for streams with keys, append for streams without
    batch_size_rows: int
    batch_size_bytes: int
    validate_records: bool
    add_record_metadata: bool
    process_activate_version_messages: bool
    hard_delete: bool
    sanitize_null_text_characters: bool
    on_invalid_record: Literal["fail", "quarantine"]
    state_flush_seconds: float
    max_parallelism: int
    control_schema: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LoadSettings:
        activate = config.get("process_activate_version_messages", config.get("activate_version", True))
        return cls(
            default_target_schema=config.get("default_target_schema") or None,
            load_method=config.get("load_method") or None,
            batch_size_rows=int(config.get("batch_size_rows") or 10_000),
            batch_size_bytes=int(config.get("batch_size_bytes") or 8 * 1024 * 1024),
            validate_records=bool(config.get("validate_records", True)),
            add_record_metadata=bool(config.get("add_record_metadata", True)),
            process_activate_version_messages=bool(activate),
            hard_delete=bool(config.get("hard_delete", False)),
            sanitize_null_text_characters=bool(config.get("sanitize_null_text_characters", False)),
            on_invalid_record=config.get("on_invalid_record") or "fail",
            state_flush_seconds=float(config.get("state_flush_seconds", 30)),
            max_parallelism=int(config.get("max_parallelism") or 4),
            control_schema=str(config.get("control_schema") or "flx"),
        )

    def method_for(self, has_keys: bool) -> LoadMethod:
        if self.load_method == "upsert" and not has_keys:
            return "append-only"
        if self.load_method:
            return self.load_method
        return "upsert" if has_keys else "append-only"
