"""target-flx's own settings (the database ones come from flx_core), with MeltanoLabs' names.

Each field is the setting's one declaration: `--about`, the SDK's config schema, `config_schema.json` of
the start-up path and the lock file are generated from it (`flx_core.setting_schema`). A pydantic
dataclass rather than a model, so `dataclasses.replace` gives a stream its own variant of the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from flx_core.settings import DatabaseSettings
from target_flx.errors import SettingError

LoadMethod = Literal["append-only", "upsert", "overwrite"]


@dataclass(frozen=True, config=ConfigDict(validate_by_name=True, validate_by_alias=True))
class LoadSettings:
    default_target_schema: str | None = Field(
        default=None,
        description="Schema to load into. Default: from `schema-table` stream names, else public.",
    )
    # None: upsert for streams with keys, append for streams without
    load_method: LoadMethod | None = Field(
        default=None,
        description="Default: upsert for streams with key properties, append-only for the others. "
        "overwrite loads a new table and swaps it in at the end.",
    )
    batch_size_rows: int = Field(default=10_000, description="Rows per COPY batch.")
    batch_size_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="Input bytes per COPY batch: bounds memory whatever the record size.",
    )
    validate_records: bool = Field(
        default=True,
        description="Reject values that do not match the schema (types, nullability, bounds).",
    )
    add_record_metadata: bool = Field(
        default=True, description="Add the _sdc_* metadata columns, as singer-sdk targets do."
    )
    # Documented as `activate_version`; singer-sdk's own name, process_activate_version_messages, wins.
    process_activate_version_messages: bool = Field(
        default=True,
        alias="activate_version",
        description="Process ACTIVATE_VERSION messages (alias: process_activate_version_messages).",
    )
    hard_delete: bool = Field(
        default=False,
        description="On ACTIVATE_VERSION delete old rows instead of setting _sdc_deleted_at.",
    )
    interpret_content_encoding: bool = Field(
        default=False,
        description="Load strings with contentEncoding base16 or base64 into bytea columns "
        "(as MeltanoLabs target-postgres does for base16).",
    )
    sanitize_null_text_characters: bool = Field(
        default=False,
        description="Remove NUL (U+0000) characters, which PostgreSQL text cannot hold, instead of failing.",
    )
    on_invalid_record: Literal["fail", "quarantine"] = Field(
        default="fail",
        description="fail: stop at the first invalid record. quarantine: keep it in the control "
        "schema's quarantine table and go on.",
    )
    state_flush_seconds: float = Field(
        default=30.0, description="Commit buffered records at least this often once a STATE is waiting."
    )
    max_parallelism: int = Field(default=4, description="Connections used to load streams concurrently.")
    connection_retry_seconds: float = Field(
        default=60.0,
        description="After losing the connection to PostgreSQL (restart, failover), keep retrying the "
        "batch on a new connection for this long before failing the run. 0: fail at once.",
    )
    lock_timeout_seconds: float | None = Field(
        default=None,
        description="Fail a batch that waits longer than this for a table lock held by another session. "
        "Default: wait (a line is logged every 10 seconds of waiting).",
    )
    # A database setting (documented by DatabaseSettings), so without a description of its own here.
    control_schema: str = Field(default=DatabaseSettings.model_fields["control_schema"].default)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LoadSettings:
        activate = config.get(
            "process_activate_version_messages",
            config.get("activate_version", _default("process_activate_version_messages")),
        )
        lock_timeout = _number(config, "lock_timeout_seconds", minimum=0)
        return cls(
            default_target_schema=config.get("default_target_schema") or None,
            load_method=config.get("load_method") or None,
            batch_size_rows=int(_number(config, "batch_size_rows", minimum=1, integer=True)),
            batch_size_bytes=int(_number(config, "batch_size_bytes", minimum=1, integer=True)),
            validate_records=bool(config.get("validate_records", _default("validate_records"))),
            add_record_metadata=bool(config.get("add_record_metadata", _default("add_record_metadata"))),
            activate_version=bool(activate),
            hard_delete=bool(config.get("hard_delete", _default("hard_delete"))),
            interpret_content_encoding=bool(
                config.get("interpret_content_encoding", _default("interpret_content_encoding"))
            ),
            sanitize_null_text_characters=bool(
                config.get("sanitize_null_text_characters", _default("sanitize_null_text_characters"))
            ),
            on_invalid_record=config.get("on_invalid_record") or _default("on_invalid_record"),
            state_flush_seconds=float(_number(config, "state_flush_seconds", minimum=0)),
            max_parallelism=int(_number(config, "max_parallelism", minimum=1, integer=True)),
            connection_retry_seconds=float(_number(config, "connection_retry_seconds", minimum=0)),
            lock_timeout_seconds=float(lock_timeout) if lock_timeout else None,
            control_schema=str(config.get("control_schema") or _default("control_schema")),
        )

    def method_for(self, has_keys: bool) -> LoadMethod:
        if self.load_method == "upsert" and not has_keys:
            return "append-only"
        if self.load_method:
            return self.load_method
        return "upsert" if has_keys else "append-only"


# pydantic's field declarations of the dataclass (its stub does not show the attribute)
_FIELDS: dict[str, FieldInfo] = LoadSettings.__pydantic_fields__  # type: ignore[attr-defined]


def _default(name: str) -> Any:
    """A setting's declared default (by field name)."""
    return _FIELDS[name].default


def _number(config: Mapping[str, Any], name: str, *, minimum: float, integer: bool = False) -> float:
    """A numeric setting, refused in one line when it is not a number or below `minimum`; unset, its
    declared default (0 for none)."""
    default: float | None = _default(name)
    value = config.get(name)
    if value is None or value == "":
        return default or 0
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
