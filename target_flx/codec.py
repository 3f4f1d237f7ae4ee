"""Per-stream decoding of RECORD lines into rows for binary COPY: validation and parsing in one step.

A whole batch of RECORD lines is decoded by one msgspec call into typed structs (C code: no per-record
dicts, no jsonschema), then the encoder (copybin.py) turns them into one binary COPY stream. A validation
error carries the batch index and the field, which map back to the input line number, and the value.

Only when msgspec refuses a batch are lines looked at one by one: bare `NaN`/`Infinity`/`-Infinity`
tokens (which Python's json and some taps write) are read there, so a batch without them costs nothing.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import msgspec
from msgspec import Raw

from target_flx import copybin, failures
from target_flx.convert import Converter, converter, raw_to_jsonb
from target_flx.copybin import CONST, EXTRACTED, FIELD, VERSION, PlanColumn
from target_flx.errors import InputError, MissingKeyProperty
from target_flx.failures import Failure
from target_flx.kinds import Kind
from target_flx.reasons import Reason
from target_flx.types import (
    INTEGER_RANGES,
    UUID_TEXT,
    ColumnType,
    allows_null,
    constrained,
    is_secret,
    normalize,
    python_type,
    resolved,
    wide_bounds,
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
class _Fields:
    """The record struct's fields (`f0`, `f1`, … one per record column, renamed to their properties) and
    what the encoder must know of them."""

    # (attribute, type[, default]) as one-line decodes check them
    strict: list[tuple[Any, ...]] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)  # attribute → property
    converters: dict[int, Converter] = field(default_factory=dict)
    # integer bounds beyond int64, which msgspec cannot check: (attribute, property, bounds)
    wide_bounds: list[tuple[str, str, tuple[Any, Any, Any, Any]]] = field(default_factory=list)
    number_fields: list[str] = field(default_factory=list)  # attributes holding a number's raw JSON text
    text_fields: set[int] = field(default_factory=set)
    not_null: set[int] = field(default_factory=set)  # raw numbers that must not be JSON null

    @classmethod
    def of(
        cls,
        record_columns: Sequence[Column],
        property_schemas: dict[str, dict[str, Any]],
        keys: set[str],
        required: set[str],
        validate: bool,
    ) -> _Fields:
        fields = cls()
        # Numbers are decoded as their exact JSON text and encoded to numeric's binary form from it (see
        # copybin.py): no Decimal object. Not keys: upserts keep the last record per key by comparing
        # values, and 1.0 is the same key as 1.
        for i, col in enumerate(record_columns):
            assert col.prop is not None
            attribute, is_key = f"f{i}", col.prop in keys
            schema = resolved(property_schemas.get(col.prop, {}))
            decode_type = _decode_type(col, schema)
            if col.json_kind == "integer" and (bounds := wide_bounds(schema)) is not None:
                fields.wide_bounds.append((attribute, col.prop, bounds))
            if (conv := _converter(col)) is not None:
                fields.converters[i] = conv
            if (validate and not allows_null(schema)) or is_key or col.json_kind == "json":
                typ: Any = decode_type  # msgspec.Raw cannot be in a union: JSON null arrives as Raw b"null"
            else:
                typ = decode_type | None
            if is_key or (validate and col.prop in required):
                fields.strict.append((attribute, typ))
            else:
                fields.strict.append((attribute, typ, None))
            fields.rename[attribute] = col.prop
            if _as_raw_number(col) and not is_key:
                fields.number_fields.append(attribute)
                fields.text_fields.add(i)
                if validate and not allows_null(schema):
                    fields.not_null.add(i)  # msgspec.Raw takes JSON null too: the encoder refuses it here
        return fields

    def batch(self) -> list[tuple[Any, ...]]:
        """The batch decoder's fields. It checks only a UUID's length; the encoder parses it (refusing
        what the schema's pattern refuses), faster than a regex per value inside msgspec. One-line
        decodes stay fully strict."""
        loose = [Raw if i in self.text_fields else _loosen(f[1]) for i, f in enumerate(self.strict)]
        return [(f[0], typ, *f[2:]) for f, typ in zip(self.strict, loose, strict=True)]


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
        self._attributes = {c.prop: f"f{i}" for i, c in enumerate(record_columns)}
        self._secret = {p for p, sch in property_schemas.items() if isinstance(sch, dict) and is_secret(sch)}
        self.key_attributes = [f"f{i}" for i, c in enumerate(record_columns) if c.prop in key_properties]
        self._key_props = set(key_properties)
        fields = _Fields.of(record_columns, property_schemas, self._key_props, set(required), validate)
        self._wide_bounds = fields.wide_bounds
        self._number_fields = fields.number_fields
        name = f"{_safe(stream)}Record"
        self.record_type = msgspec.defstruct(
            name, fields.batch(), rename=fields.rename, kw_only=True, gc=False
        )
        strict_record = msgspec.defstruct(name, fields.strict, rename=fields.rename, kw_only=True, gc=False)
        self.message_type = _message_struct(stream, self.record_type)
        self._decoder = msgspec.json.Decoder(list[self.message_type])  # type: ignore[name-defined]
        self._one = msgspec.json.Decoder(_message_struct(stream, strict_record))
        self._plan = _plan(self.columns, fields.converters, fields.not_null)

    def decode(self, lines: Sequence[bytes]) -> tuple[list[Any], Failure | None]:
        """Decode as many leading lines as are valid; report the first invalid one."""
        failure = None
        batch = b"[" + b",".join(lines) + b"]"
        try:
            messages = self._decoder.decode(batch)
        except msgspec.ValidationError as exc:
            failure = failures.from_msgspec(str(exc))
        except msgspec.DecodeError:
            if b"NaN" in batch or b"Infinity" in batch:
                return self._decode_specials(lines)
            failure = _first_malformed(lines)
        if failure is not None:
            good = lines[: failure.index]
            messages = self._decoder.decode(b"[" + b",".join(good) + b"]") if good else []
            failure = self._with_value(failure, lines[failure.index])
        if self._wide_bounds and (bad := self._check_wide_bounds(messages)) is not None:
            messages, failure = messages[: bad.index], bad
        return messages, failure

    def _decode_specials(self, lines: Sequence[bytes]) -> tuple[list[Any], Failure | None]:
        """`decode` for a batch holding lines with bare NaN/Infinity tokens: runs of other lines still in
        one call each, those lines one at a time."""
        messages: list[Any] = []
        i, n = 0, len(lines)
        while i < n:
            j = i
            while j < n and not _maybe_special(lines[j]):
                j += 1
            if j > i:
                good, failure = self.decode(lines[i:j])
                messages.extend(good)
                if failure is not None:
                    return messages, replace(failure, index=failure.index + i)
                i = j
                continue
            try:
                messages.append(self._decode_special_line(lines[i]))
            except msgspec.ValidationError as exc:
                if isinstance(exc, Refused):
                    return messages, replace(exc.failure, index=i)
                failure = replace(failures.from_msgspec(str(exc)), index=i)
                return messages, self._with_value(failure, lines[i])
            except msgspec.DecodeError as exc:
                return messages, Failure(i, None, Reason.MALFORMED_JSON, str(exc))
            i += 1
        return messages, None

    def _decode_special_line(self, line: bytes) -> Any:
        try:
            message = self._decoder.decode(b"[" + line + b"]")[0]  # the token text was inside a string
        except msgspec.DecodeError:
            return self._decode_generic(line, _special_json(line))
        if self._wide_bounds and (bad := self._check_wide_bounds([message])) is not None:
            raise Refused(bad)
        return message

    def decode_lenient(self, line: bytes) -> Any:
        """The slow path for one line the strict decoder refused, accepting what JSON Schema accepts and
        msgspec does not: 1.0 for an integer, ISO 8601 date-times without the RFC 3339 'T' or colon, UTC
        offsets with seconds, bare NaN/Infinity tokens where the column holds them. What the strict
        decoder accepts (a value only a batch check refused) is read as it reads it."""
        if self.validate:
            self._refuse_text_for_numbers(line)
        try:
            message = self._as_batch_layout(self._one.decode(line))
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError:
            if not _maybe_special(line):
                raise
            return self._decode_generic(line, _special_json(line))
        else:
            if self._wide_bounds and (bad := self._check_wide_bounds([message])) is not None:
                raise Refused(bad)
            return message
        return self._decode_generic(line, _LENIENT.decode(line))

    def _refuse_text_for_numbers(self, line: bytes) -> None:
        """A JSON string where the schema says number: msgspec's Decimal would read "12.50",
        JSON Schema does not."""
        try:
            generic = _LENIENT.decode(line)
        except msgspec.DecodeError:
            return  # the decoders below report it
        record = generic.get("record") if isinstance(generic, dict) else None
        if not isinstance(record, dict):
            return
        for column in self.columns:
            if column.json_kind == "number" and isinstance(record.get(column.prop), str):
                value = record[column.prop]
                shown = "a string" if column.prop in self._secret else _shown(value)
                raise Refused(Failure(0, column.prop, Reason.NOT_A_NUMBER, shown=shown))

    def _decode_generic(self, line: bytes, generic: Any) -> Any:
        """One line from its generic decoding (dicts, lists, Decimals): relaxed per column, re-encoded and
        decoded by the strict decoder; values JSON cannot carry (NaN, an offset with seconds) are put into
        the struct afterwards."""
        record = generic.get("record") if isinstance(generic, dict) else None
        exact: dict[str, Any] = {}  # attribute -> the value to put in after decoding
        if isinstance(record, dict):
            for column in self.columns:
                if column.prop not in record:
                    continue
                value = _relax(column.json_kind, record[column.prop], self.validate)
                attr = self._attributes[column.prop]
                if isinstance(value, decimal.Decimal) and not value.is_finite():
                    exact[attr] = self._special_number(column, value)
                    value = 0
                elif isinstance(value, datetime.datetime) and _sub_minute_offset(value):
                    exact[attr] = value  # msgspec would write the offset rounded to whole minutes
                    value = value.replace(tzinfo=datetime.UTC)
                elif isinstance(value, dict | list) and _holds_special(value):
                    raise Refused(Failure(0, column.prop, Reason.SPECIAL_IN_JSON, shown=_shown(value)))
                record[column.prop] = value
        message = self._one.decode(_EXACT.encode(generic))  # re-encoded: JSON columns stay raw JSON text
        message = self._as_batch_layout(message)
        for attr, value in exact.items():
            setattr(message.record, attr, value)
        if self._wide_bounds and (bad := self._check_wide_bounds([message])) is not None:
            raise Refused(bad)
        return message

    def _special_number(self, column: Column, value: decimal.Decimal) -> Any:
        """A NaN or ±Infinity for `column`: what its encoder takes, or a one-line refusal naming it."""
        shown = _special_text(value)
        pg_type = normalize(column.pg_type)
        if column.json_kind != "number" or pg_type not in ("numeric", "real", "double precision"):
            raise Refused(Failure(0, column.prop, Reason.SPECIAL_NUMBER, pg_type, column.json_kind, shown))
        if pg_type == "numeric" and _as_raw_number(column) and column.prop not in self._key_props:
            return Raw(shown.encode())
        return value

    def _check_wide_bounds(self, messages: list[Any]) -> Failure | None:
        """The first record breaking an integer bound beyond int64 (compared exactly: Python ints)."""
        for attr, prop, (lo, hi, lo_x, hi_x) in self._wide_bounds:
            for index, message in enumerate(messages):
                value = getattr(message.record, attr)
                if value is None or not isinstance(value, int):
                    continue
                for bound, broken, sign in (
                    (lo, lo is not None and value < lo, ">="),
                    (hi, hi is not None and value > hi, "<="),
                    (lo_x, lo_x is not None and value <= lo_x, ">"),
                    (hi_x, hi_x is not None and value >= hi_x, "<"),
                ):
                    if broken:
                        shown = None if prop in self._secret else str(value)
                        return Failure(index, prop, Reason.BOUND, f"{sign} {bound}", shown=shown)
        return None

    def _with_value(self, failure: Failure, line: bytes) -> Failure:
        """The failure with the offending value (cut short; never a secret property's)."""
        prop = failure.field
        if prop is None or prop not in self._attributes or prop in self._secret:
            return failure
        if failure.reason is Reason.MISSING_FIELD:
            return failure
        try:
            generic = _LENIENT.decode(line)
        except msgspec.DecodeError:
            try:
                generic = _special_json(line)
            except msgspec.DecodeError:
                return failure
        record = generic.get("record") if isinstance(generic, dict) else None
        if not isinstance(record, dict) or prop not in record:
            return failure
        return replace(failure, shown=_shown(record[prop]))

    def _as_batch_layout(self, message: Any) -> Any:
        for attr in self._number_fields:  # the batch layout carries numbers as their JSON text
            if (value := getattr(message.record, attr)) is not None:
                setattr(message.record, attr, Raw(str(value).encode()))
        return message

    def encode(self, messages: list[Any], meta: BatchMeta) -> bytes | Failure:
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
        column = self.columns[result.column]
        if column.prop is None:
            return failures.encoded(result, column.name, None)
        value = result.value
        shown = None if column.prop in self._secret else "null" if value is None else _shown(value)
        return failures.encoded(result, column.prop, shown)


class _Extracted(dict[str | None, bytes | None]):
    """time_extracted is usually one value for many records: parse and encode each distinct one once."""

    def __init__(self, stream: str) -> None:
        super().__init__()
        self.stream = stream
        self[None] = None  # the usual case (no time_extracted): a dict hit, not a __missing__ call

    def __missing__(self, key: str | None) -> bytes | None:
        value: datetime.datetime | None
        try:
            value = msgspec.convert(key, datetime.datetime)
        except msgspec.ValidationError:
            try:  # what RFC 3339 leaves out: an offset with seconds, a space for the 'T'
                value = datetime.datetime.fromisoformat(key) if isinstance(key, str) else None
            except ValueError:
                value = None
        if value is None:
            raise InputError(f"time_extracted {key!r} is not a date-time", stream=self.stream)
        self[key] = encoded = _encode_timestamptz(value)
        return encoded


def _encode_timestamptz(value: datetime.datetime) -> bytes:
    encoded = copybin.encode_value(Kind.TIMESTAMPTZ, value)
    assert encoded is not None
    return encoded


_LENIENT = msgspec.json.Decoder(float_hook=decimal.Decimal)
_SHOWN_LENGTH = 80


class Refused(msgspec.ValidationError):
    """A value no column type here can take (a NaN for an integer, say): its failure (as record 0; the
    catcher knows which record it is)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.field = failure.field


def _maybe_special(line: bytes) -> bool:
    return b"NaN" in line or b"Infinity" in line


def _special_json(line: bytes) -> Any:
    """A line holding bare NaN/Infinity tokens, read by Python's json (which writes them too); numbers
    as Decimal, so they stay exact."""
    try:
        return json.loads(line, parse_float=decimal.Decimal, parse_constant=decimal.Decimal)
    except (ValueError, RecursionError) as exc:
        raise msgspec.DecodeError(str(exc)) from None


def _special_text(value: decimal.Decimal) -> str:
    return "NaN" if value.is_nan() else "-Infinity" if value < 0 else "Infinity"


def _holds_special(value: Any) -> bool:
    if isinstance(value, decimal.Decimal):
        return not value.is_finite()
    if isinstance(value, dict):
        return any(_holds_special(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_special(v) for v in value)
    return False


def _sub_minute_offset(value: datetime.datetime) -> bool:
    offset = value.utcoffset()
    return offset is not None and offset % datetime.timedelta(minutes=1) != datetime.timedelta(0)


def _shown(value: Any) -> str:
    """A value as it would be written in JSON, cut to about 80 characters."""
    if isinstance(value, Raw | bytes | bytearray | memoryview):
        text = bytes(value).decode(errors="replace")
    elif isinstance(value, decimal.Decimal) and not value.is_finite():
        text = _special_text(value)
    else:
        try:
            text = _EXACT.encode(value).decode()
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 1] + "…"


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


_ONE_DIGIT_HOUR = re.compile(r"[0-9]:[0-5][0-9]:[0-5][0-9]")


def _relax(kind: str, value: Any, validate: bool) -> Any:
    if (
        kind == "integer"
        and isinstance(value, decimal.Decimal)
        and value.is_finite()
        and value == value.to_integral_value()
    ):
        return int(value)
    if kind == "date-time" and isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
    if kind == "time" and isinstance(value, str) and _ONE_DIGIT_HOUR.match(value):
        return "0" + value  # "0:00:00", as Python's str() of a timedelta writes it
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return decimal.Decimal(value)
    if kind == "string" and not validate and isinstance(value, int | decimal.Decimal | bool):
        return msgspec.json.encode(value).decode()  # what a text column holds for it, as SDK targets do
    return value


def _first_malformed(lines: Sequence[bytes]) -> Failure:
    """The batch is not valid JSON: find which line (rare, so one at a time is fine)."""
    for index, line in enumerate(lines):
        try:
            msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return Failure(index, None, Reason.MALFORMED_JSON, str(exc))
    raise AssertionError("a batch failed to decode but every line is valid JSON")


def input_error(stream: str, line: int, failure: Failure, keys: Sequence[str] = ()) -> InputError:
    """The error stopping the run at `line` (a missing or null key property is its own kind)."""
    if failure.field in keys and failure.null_or_missing:
        return MissingKeyProperty(
            f"key property missing or null ({failure.message})", stream=stream, line=line, field=failure.field
        )
    return InputError(failure.message, stream=stream, line=line, field=failure.field)


def _safe(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned.isidentifier() else f"S_{cleaned}"


_TEXT_KINDS = ("date-time", "date", "time", "uuid", "base16", "base64")


def _decode_type(col: Column, schema: dict[str, Any]) -> Any:
    """The column's own Python type when the JSON kind maps to it directly, else the JSON kind's type."""
    natural = ColumnType(col.pg_type, col.json_kind)
    column_python = python_type(col.pg_type)
    kind_python = natural.decode_type
    if col.json_kind in _TEXT_KINDS and normalize(col.pg_type) == "text":
        return constrained(str, schema)  # a text column keeps the string as sent, not a parsed value
    if col.json_kind == "integer" and normalize(col.pg_type) in INTEGER_RANGES:
        # bounded by the column and the schema: a value beyond the column's range (only) widens it
        lo, hi = INTEGER_RANGES[normalize(col.pg_type)]
        for key, bound in (("minimum", 0), ("exclusiveMinimum", 1)):
            if isinstance(value := schema.get(key), int | float) and not isinstance(value, bool):
                lo = max(lo, math.floor(value) + 1 if bound or value != math.floor(value) else int(value))
        for key, bound in (("maximum", 0), ("exclusiveMaximum", 1)):
            if isinstance(value := schema.get(key), int | float) and not isinstance(value, bool):
                hi = min(hi, math.ceil(value) - 1 if bound or value != math.ceil(value) else int(value))
        if (lo, hi) == INTEGER_RANGES[normalize(col.pg_type)]:
            return column_python
        return Annotated[int, msgspec.Meta(ge=lo, le=hi)]
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
        kind = Kind.NUMERIC_NOT_NULL if i in not_null else copybin.column_kind(col.pg_type, col.json_kind)
        # JSON null in a jsonb column is SQL NULL: the encoder does that itself, no call per value
        plan.append(PlanColumn(FIELD, f"f{i}", kind, None if conv is raw_to_jsonb else conv))
        i += 1
    return plan
