"""target-flx's own settings (the database ones come from flx_core), with MeltanoLabs' names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from target_flx.errors import SettingError

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
    interpret_content_encoding: bool = False
    connection_retry_seconds: float = 60.0
    lock_timeout_seconds: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LoadSettings:
        activate = config.get("process_activate_version_messages", config.get("activate_version", True))
        lock_timeout = _number(config, "lock_timeout_seconds", 0, minimum=0)
        return cls(
            default_target_schema=config.get("default_target_schema") or None,
            load_method=config.get("load_method") or None,
            batch_size_rows=int(_number(config, "batch_size_rows", 10_000, minimum=1, integer=True)),
            batch_size_bytes=int(_number(config, "batch_size_bytes", 8 << 20, minimum=1, integer=True)),
            validate_records=bool(config.get("validate_records", True)),
            add_record_metadata=bool(config.get("add_record_metadata", True)),
            process_activate_version_messages=bool(activate),
            hard_delete=bool(config.get("hard_delete", False)),
            sanitize_null_text_characters=bool(config.get("sanitize_null_text_characters", False)),
            on_invalid_record=config.get("on_invalid_record") or "fail",
            state_flush_seconds=float(_number(config, "state_flush_seconds", 30, minimum=0)),
            max_parallelism=int(_number(config, "max_parallelism", 4, minimum=1, integer=True)),
            control_schema=str(config.get("control_schema") or "flx"),
            interpret_content_encoding=bool(config.get("interpret_content_encoding", False)),
            connection_retry_seconds=float(_number(config, "connection_retry_seconds", 60, minimum=0)),
            lock_timeout_seconds=float(lock_timeout) if lock_timeout else None,
        )

    def method_for(self, has_keys: bool) -> LoadMethod:
        if self.load_method == "upsert" and not has_keys:
            return "append-only"
        if self.load_method:
            return self.load_method
        return "upsert" if has_keys else "append-only"


def _number(
    config: Mapping[str, Any], name: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    """A numeric setting, refused in one line when it is not a number or below `minimum`."""
    value = config.get(name)
    if value is None or value == "":
        return default
    what = "a whole number" if integer else "a number"
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or (integer and number != int(number)) or number < minimum:
        raise SettingError(
            f"setting {name!r} must be {what} >= {minimum:g}, got {value!r}"
            + (f" (omit it for the default, {default:g})" if default else "")
        )
    return number
