"""Per-stream decoding of RECORD lines into rows for binary COPY: validation and parsing in one step.

A whole batch of RECORD lines is decoded by one msgspec call into typed structs (C code: no per-record
dicts, no jsonschema), then a generated comprehension turns them into the tuples asyncpg copies. A
validation error carries the batch index and the field, which map back to the input line number.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Raw

from target_flx import copybin
from target_flx.convert import Converter, converter, raw_to_jsonb
from target_flx.copybin import CONST, EXTRACTED, FIELD, VERSION, PlanColumn
from target_flx.errors import InputError, MissingKeyProperty
from target_flx.types import (
    UUID_PATTERN,
    UUID_TEXT,
    ColumnType,
    allows_null,
    constrained,
    normalize,
    python_type,
)

# Columns singer-sdk targets add with `add_record_metadata` (same names, same meaning).
COMPUTED_METADATA = (
    ("_sdc_extracted_at", "timestamp with time zone"),
    ("_sdc_received_at", "timestamp with time zone"),
    ("_sdc_batched_at", "timestamp with time zone"),
    ("_sdc_sequence", "bigint"),
    ("_sdc_table_version", "bigint"),
    ("_sdc_sync_started_at", "bigint"),
)
DELETED_AT = "_sdc_deleted_at"
_ERROR_AT = re.compile(
    r"^(?P<msg>.*?)(?: - at `\$\[(?P<index>\d+)\](?:\.record)?(?:\.(?P<field>.*))?`)?$", re.S
)


@dataclass(frozen=True)
class Column:
    """One destination column: where its value comes from and how it is typed."""

    name: str
    pg_type: str
    prop: str | None  # the record property, or None for computed metadata
    json_kind: str
    nullable: bool = True


@dataclass(frozen=True)
class BatchMeta:
    """Per-batch metadata values (singer-sdk sets them per record; within a batch they are equal)."""

    received_at: datetime.datetime
    sequence: int
    sync_started_at: int


@dataclass
class DecodeFailure:
    index: int
    field: str | None
    message: str


class RecordCodec:
    """Decodes one stream's RECORD lines; rebuilt whenever the stream's schema or columns change."""

    def __init__(
        self,
        stream: str,
        columns: Sequence[Column],
        property_schemas: dict[str, dict[str, Any]],
        key_properties: Sequence[str],
        required: Sequence[str],
        *,
        validate: bool,
    ) -> None:
        self.stream = stream
        self.validate = validate
        self.columns = list(columns)
        record_columns = [c for c in self.columns if c.prop is not None]
        strict: list[tuple[Any, ...]] = []
        rename: dict[str, str] = {}
        converters: dict[int, Converter] = {}
        self.key_attributes = [f"f{i}" for i, c in enumerate(record_columns) if c.prop in key_properties]
        self._number_fields: list[str] = []  # attributes holding a number's raw JSON text
        # Numbers are decoded as their exact JSON text and encoded to numeric's binary form from it (see
        # copybin.py): no Decimal object. Not keys: upserts keep the last record per key by comparing
        # values, and 1.0 is the same key as 1.
        raw_number_columns = {
            c.name for c in self.columns if _as_raw_number(c) and c.prop not in key_properties
        }
        text_fields: set[int] = set()
        not_null: set[int] = set()
        for i, col in enumerate(record_columns):
            assert col.prop is not None
            schema = property_schemas.get(col.prop, {})
            decode_type = _decode_type(col, schema)
            if (conv := _converter(col)) is not None:
                converters[i] = conv
            is_key = col.prop in key_properties
            if (validate and not allows_null(schema)) or is_key or col.json_kind == "json":
                typ: Any = decode_type  # msgspec.Raw cannot be in a union: JSON null arrives as Raw b"null"
            else:
                typ = decode_type | None
            if is_key or (validate and col.prop in required):
                strict.append((f"f{i}", typ))
            else:
                strict.append((f"f{i}", typ, None))
            rename[f"f{i}"] = col.prop
            if col.name in raw_number_columns:
                self._number_fields.append(f"f{i}")
                text_fields.add(i)
                if validate and not allows_null(schema):
                    not_null.add(i)  # msgspec.Raw takes JSON null too: the encoder refuses it here
        # The batch decoder checks only a UUID's length; the encoder parses it (refusing what the schema's
        # pattern refuses), faster than a regex per value inside msgspec. One-line decodes stay fully strict.
        batch = [(f[0], Raw if i in text_fields else _loosen(f[1]), *f[2:]) for i, f in enumerate(strict)]
        self.record_type = msgspec.defstruct(
            f"{_safe(stream)}Record", batch, rename=rename, kw_only=True, gc=False
        )
        strict_record = msgspec.defstruct(
            f"{_safe(stream)}Record", strict, rename=rename, kw_only=True, gc=False
        )
        message_type = _message_struct(stream, self.record_type)
        self.message_type = message_type
        self._decoder = msgspec.json.Decoder(list[message_type])  # type: ignore[valid-type]
        self._one = msgspec.json.Decoder(_message_struct(stream, strict_record))
        self._plan = _plan(self.columns, converters, not_null)

    def decode(self, lines: Sequence[bytes]) -> tuple[list[Any], DecodeFailure | None]:
        """Decode as many leading lines as are valid; report the first invalid one."""
        failure = None
        try:
            messages = self._decoder.decode(b"[" + b",".join(lines) + b"]")
        except msgspec.ValidationError as exc:
            failure = parse_error(str(exc))
        except msgspec.DecodeError:
            failure = _first_malformed(lines)
        if failure is not None:
            good = lines[: failure.index]
            messages = self._decoder.decode(b"[" + b",".join(good) + b"]") if good else []
        return messages, failure

    def decode_lenient(self, line: bytes) -> Any:
        """The slow path for one line the strict decoder refused, accepting what JSON Schema accepts and
        msgspec does not: 1.0 for an integer, ISO 8601 date-times without the RFC 3339 'T' or colon.
        What the strict decoder accepts (a value only a batch check refused) is read as it reads it."""
        try:
            return self._as_batch_layout(self._one.decode(line))
        except msgspec.ValidationError:
            pass
        generic = _LENIENT.decode(line)
        record = generic.get("record") if isinstance(generic, dict) else None
        if isinstance(record, dict):
            for column in self.columns:
                if column.prop in record:
                    record[column.prop] = _relax(column.json_kind, record[column.prop], self.validate)
        message = self._one.decode(_EXACT.encode(generic))  # re-encoded: JSON columns stay raw JSON text
        return self._as_batch_layout(message)

    def _as_batch_layout(self, message: Any) -> Any:
        for attr in self._number_fields:  # the batch layout carries numbers as their JSON text
            if (value := getattr(message.record, attr)) is not None:
                setattr(message.record, attr, Raw(str(value).encode()))
        return message

    def encode(self, messages: list[Any], meta: BatchMeta) -> bytes | DecodeFailure:
        """The batch's binary COPY stream, or the first record holding a value its column cannot take."""
        received = _encode_timestamptz(meta.received_at)  # one value for the whole batch: encode it once
        values = {
            "_sdc_extracted_at": _Extracted(self.stream),
            "_sdc_received_at": received,
            "_sdc_batched_at": received,
            "_sdc_sequence": meta.sequence,
            "_sdc_sync_started_at": meta.sync_started_at,
        }
        plan = [p._replace(arg=values[p.arg]) if p.source in (EXTRACTED, CONST) else p for p in self._plan]
        result = copybin.encode(messages, plan)
        if isinstance(result, bytes):
            return result
        index, column_index, message = result
        column = self.columns[column_index]
        if column.prop is None:
            return DecodeFailure(index, column.name, message)
        value = getattr(messages[index].record, plan[column_index].arg)
        if message == "not a UUID":
            message = f"Expected str matching regex {UUID_PATTERN!r}"
        elif message.startswith("Expected a number"):
            got = "null" if value is None else bytes(value)[:40].decode(errors="replace")
            message = f"Expected a number, got {got}"
        return DecodeFailure(index, column.prop, message)


class _Extracted(dict[str | None, bytes | None]):
    """time_extracted is usually one value for many records: parse and encode each distinct one once."""

    def __init__(self, stream: str) -> None:
        super().__init__()
        self.stream = stream
        self[None] = None  # the usual case (no time_extracted): a dict hit, not a __missing__ call

    def __missing__(self, key: str | None) -> bytes | None:
        try:
            value = msgspec.convert(key, datetime.datetime)
        except msgspec.ValidationError:
            raise InputError(f"time_extracted {key!r} is not a date-time", stream=self.stream) from None
        self[key] = encoded = _encode_timestamptz(value)
        return encoded


def _encode_timestamptz(value: datetime.datetime) -> bytes:
    encoded = copybin.encode_value(copybin.kind_of("timestamptz"), value)
    assert encoded is not None
    return encoded


_LENIENT = msgspec.json.Decoder(float_hook=decimal.Decimal)
# A value holding a newline cannot pass as two: each piece would be shorter than a UUID.
_UUID_SHAPE = Annotated[str, msgspec.Meta(max_length=36)]


def _as_raw_number(col: Column) -> bool:
    """Columns decoded as their JSON text: JSON numbers into numeric."""
    return col.prop is not None and col.json_kind == "number" and normalize(col.pg_type) == "numeric"


def _loosen(typ: Any) -> Any:
    if typ is UUID_TEXT:
        return _UUID_SHAPE
    if typ == UUID_TEXT | None:
        return _UUID_SHAPE | None
    return typ


def _message_struct(stream: str, record_type: Any) -> Any:
    return msgspec.defstruct(
        f"{_safe(stream)}Message",
        [
            ("record", record_type),
            ("time_extracted", str | None, None),
            ("version", int | None, None),
        ],
        kw_only=True,
        gc=False,
    )


_EXACT = msgspec.json.Encoder(decimal_format="number")


def _relax(kind: str, value: Any, validate: bool) -> Any:
    if kind == "integer" and isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    if kind == "date-time" and isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return decimal.Decimal(value)
    if kind == "string" and not validate and isinstance(value, int | decimal.Decimal | bool):
        return msgspec.json.encode(value).decode()  # what a text column holds for it, as SDK targets do
    return value


def parse_error(text: str) -> DecodeFailure:
    match = _ERROR_AT.match(text)
    assert match is not None
    index = int(match.group("index") or 0)
    message, field = match.group("msg"), match.group("field")
    if field is None and (missing := re.search(r"missing required field `([^`]*)`", message)):
        field = missing.group(1)
    return DecodeFailure(index=index, field=field, message=_humane(message))


def _first_malformed(lines: Sequence[bytes]) -> DecodeFailure:
    """The batch is not valid JSON: find which line (rare, so one at a time is fine)."""
    for index, line in enumerate(lines):
        try:
            msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return DecodeFailure(index=index, field=None, message=f"malformed JSON ({exc})")
    raise AssertionError("a batch failed to decode but every line is valid JSON")


def input_error(stream: str, line: int, failure: DecodeFailure, keys: Sequence[str] = ()) -> InputError:
    if failure.field in keys and (
        "missing required field" in failure.message or "got null" in failure.message
    ):
        return MissingKeyProperty(
            f"key property missing or null ({failure.message})", stream=stream, line=line, field=failure.field
        )
    return InputError(failure.message, stream=stream, line=line, field=failure.field)


def _humane(message: str) -> str:
    return message.replace("`", "")


def _safe(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned.isidentifier() else f"S_{cleaned}"


def _decode_type(col: Column, schema: dict[str, Any]) -> Any:
    """The column's own Python type when the JSON kind maps to it directly, else the JSON kind's type."""
    natural = ColumnType(col.pg_type, col.json_kind)
    column_python = python_type(col.pg_type)
    kind_python = natural.decode_type
    if col.json_kind == "integer" and normalize(col.pg_type) in ("smallint", "integer", "bigint"):
        return column_python  # bounded int: an out-of-range value is reported, and the column widened
    return constrained(kind_python, schema)


def _converter(col: Column) -> Converter | None:
    return converter(col.json_kind, col.pg_type)


def _plan(
    columns: Sequence[Column], converters: dict[int, Converter], not_null: set[int]
) -> list[PlanColumn]:
    """Where each column's value comes from; metadata columns name their per-batch value (see `encode`)."""
    sources = {
        "_sdc_extracted_at": EXTRACTED,
        "_sdc_received_at": CONST,
        "_sdc_batched_at": CONST,
        "_sdc_sequence": CONST,
        "_sdc_table_version": VERSION,
        "_sdc_sync_started_at": CONST,
    }
    plan, i = [], 0  # i: the record field's number, as in the struct (f0, f1, …)
    for col in columns:
        if col.prop is None:
            plan.append(PlanColumn(sources[col.name], col.name, copybin.kind_of(col.pg_type), None))
            continue
        conv = converters.get(i)
        kind = copybin.NUMERIC_NOT_NULL if i in not_null else copybin.kind_of(col.pg_type)
        # JSON null in a jsonb column is SQL NULL: the encoder does that itself, no call per value
        plan.append(PlanColumn(FIELD, f"f{i}", kind, None if conv is raw_to_jsonb else conv))
        i += 1
    return plan
