"""The object container file header: magic, metadata map, sync marker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from jetliner_dist.avro.binary import read_bytes, read_long
from jetliner_dist.errors import AvroFormatError, CodecError, HeaderError, TruncatedError

MAGIC = b"Obj\x01"
SYNC_SIZE = 16
# Headers are small; a first read this large almost always holds the whole header.
FIRST_READ = 64 * 1024
# A metadata map with more entries than this is corrupt, not a header.
MAX_METADATA_ENTRIES = 1 << 20

Fetch = Callable[[int, int], bytes]
"""Reads bytes ``[start, end)`` of one file (fewer at the end of the file)."""


@dataclass(frozen=True, slots=True)
class Header:
    """What the header tells: codec, writer schema (JSON text), sync marker.

    ``end`` is the offset of the first block, just after the sync marker.
    """

    codec: str
    schema_json: str
    sync: bytes
    end: int
    metadata: dict[str, bytes]


def parse_header(buf: bytes | memoryview) -> Header:
    """Parse a header from the start of a file; ``buf`` must hold all of it.

    Raises :class:`TruncatedError` when ``buf`` ends inside the header, so a
    caller can retry with more bytes, and :class:`HeaderError` when it is
    malformed.
    """
    try:
        return _parse_header(buf)
    except TruncatedError:
        raise
    except AvroFormatError as exc:
        if isinstance(exc, (HeaderError, CodecError)):
            raise
        raise HeaderError(f"malformed header: {exc.message}", offset=exc.offset) from None


def _parse_header(buf: bytes | memoryview) -> Header:
    if len(buf) < len(MAGIC):
        raise TruncatedError("file is shorter than the Avro magic", offset=0)
    if bytes(buf[:4]) != MAGIC:
        raise HeaderError(
            f"not an Avro object container file (magic {bytes(buf[:4])!r}, expected {MAGIC!r})",
            offset=0,
        )
    metadata: dict[str, bytes] = {}
    pos = len(MAGIC)
    while True:
        count, pos = read_long(buf, pos)
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _, pos = read_long(buf, pos)
        if count > MAX_METADATA_ENTRIES:
            raise HeaderError(f"header metadata claims {count} entries", offset=pos)
        for _ in range(count):
            key, pos = read_bytes(buf, pos)
            value, pos = read_bytes(buf, pos)
            metadata[_decode_key(key, pos)] = value
    if pos + SYNC_SIZE > len(buf):
        raise TruncatedError("file ends before the header's sync marker", offset=pos)
    sync = bytes(buf[pos : pos + SYNC_SIZE])
    return Header(
        codec=_codec_name(metadata),
        schema_json=_schema_text(metadata),
        sync=sync,
        end=pos + SYNC_SIZE,
        metadata=metadata,
    )


def read_header(fetch: Fetch, size: int | None = None) -> Header:
    """Read and parse a header through ``fetch``, growing the read as needed."""
    want = FIRST_READ if size is None else min(FIRST_READ, size)
    while True:
        buf = fetch(0, want)
        try:
            return parse_header(buf)
        except TruncatedError:
            if len(buf) < want or (size is not None and want >= size):
                raise
            want *= 4


def _decode_key(key: bytes, pos: int) -> str:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"header metadata key {key!r} is not UTF-8", offset=pos) from exc


def _codec_name(metadata: dict[str, bytes]) -> str:
    raw = metadata.get("avro.codec")
    if raw is None:
        return "null"
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"codec name {raw!r} is not UTF-8") from exc


def _schema_text(metadata: dict[str, bytes]) -> str:
    raw = metadata.get("avro.schema")
    if raw is None:
        raise HeaderError("header has no avro.schema entry")
    try:
        text = raw.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError(f"avro.schema is not valid JSON: {exc}") from exc
    except RecursionError:
        raise HeaderError("avro.schema nests too deeply to parse") from None
    return text

