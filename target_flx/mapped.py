"""Stream maps and flattening: the one place records go through per-record dicts.

When `stream_maps` or `flattening_enabled` is configured, each RECORD is decoded (numbers kept exact as
Decimal), transformed by singer-sdk's own mapper exactly as any SDK target would, and re-encoded as a
RECORD line of the mapped stream, which then takes the same typed batch path as unmapped input: the
results are identical, only the transform's cost is added.
"""

from __future__ import annotations

import copy
import decimal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from singer_sdk.mapper import PluginMapper

_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")


def is_configured(config: dict[str, Any]) -> bool:
    return bool(config.get("stream_maps") or config.get("flattening_enabled"))


class MappedInput:
    def __init__(self, mapper: PluginMapper) -> None:
        self.mapper = mapper

    def schemas(
        self, stream: str, schema: dict[str, Any], keys: list[str]
    ) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        """(alias, schema, key properties) of every stream the input stream maps to."""
        self.mapper.register_raw_stream_schema(stream, schema, keys)
        for stream_map in self.mapper.stream_maps[stream]:
            yield (
                stream_map.stream_alias,
                stream_map.transformed_schema,
                list(stream_map.transformed_key_properties or []),
            )

    def records(self, stream: str, line: bytes) -> Iterator[tuple[str, bytes]]:
        """(alias, RECORD line) for every mapped stream that keeps the record."""
        message = _decoder.decode(line)
        for stream_map in self.mapper.stream_maps.get(stream, []):
            transformed = stream_map.transform(copy.deepcopy(message["record"]))
            if transformed is None:
                continue
            out = {"type": "RECORD", "stream": stream_map.stream_alias, "record": transformed}
            for key in ("time_extracted", "version"):
                if key in message:
                    out[key] = message[key]
            yield stream_map.stream_alias, _encoder.encode(out)
