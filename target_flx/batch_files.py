"""singer-sdk BATCH messages: the records of the files a manifest names, as RECORD lines.

Each line of a jsonl file is one record; wrapped as `{"type":"RECORD","stream":…,"record":<line>}` it
goes through the stream's typed decoder like any RECORD line, so types, validation and errors are the
same. What target-flx cannot read (another format, a URL that is not a local file, a missing or corrupt
file) is one error line naming the file, never a skipped file.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

import orjson

from target_flx.errors import InputError

FORMATS = ("jsonl",)
COMPRESSIONS = ("none", "gzip")


def records(message: dict[str, Any], stream: str, line: int) -> Iterator[bytes]:
    """The RECORD lines of a BATCH message, file by file, in manifest order."""
    encoding = message.get("encoding")
    if not isinstance(encoding, dict):
        raise InputError("BATCH without an 'encoding' object", stream=stream, line=line)
    fmt = encoding.get("format")
    compression = encoding.get("compression") or "none"
    if fmt not in FORMATS:
        raise InputError(
            f"BATCH format {fmt!r} is not supported (target-flx reads {', '.join(FORMATS)});"
            " set the tap's batch_config encoding format to jsonl",
            stream=stream,
            line=line,
        )
    if compression not in COMPRESSIONS:
        raise InputError(
            f"BATCH compression {compression!r} is not supported (use none or gzip)", stream=stream, line=line
        )
    manifest = message.get("manifest")
    if not isinstance(manifest, list) or not all(isinstance(url, str) for url in manifest):
        raise InputError("BATCH 'manifest' must be a list of file URLs", stream=stream, line=line)
    prefix = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
    for url in manifest:
        path = _local_path(url, stream, line)
        try:
            with _open(path, compression) as source:
                for raw in source:
                    body = raw.strip()
                    if body:
                        yield prefix + body + b"}"
        except (OSError, EOFError, zlib.error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or "unreadable"
            raise InputError(f"cannot read BATCH file {url}: {reason}", stream=stream, line=line) from None


def _local_path(url: str, stream: str, line: int) -> Path:
    parsed = urlparse(url)
    if parsed.scheme not in ("file", ""):
        raise InputError(
            f"BATCH file {url}: only local files (file://) can be read", stream=stream, line=line
        )
    return Path(unquote(parsed.path))


def _open(path: Path, compression: str) -> IO[bytes]:
    if compression == "gzip":
        return io.BufferedReader(gzip.open(path, "rb"))
    return path.open("rb")
