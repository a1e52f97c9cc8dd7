"""Corrupt input gives a typed error with file, block and offset — never a crash,
hang or absurd allocation (DESIGN §3.2, §4 "Safe").

Every case is a file that is wrong in one place, built byte by byte (see
``corruption.py``). A strict read must raise the exact class of
``jetliner_dist.errors`` that names the failure, with ``path``, ``block``,
``offset`` (inside the failing block) and, for record data, ``record`` filled
in, through ``read_table``, ``read_avro`` and ``iter_batches`` alike.

Cases that could hang, crash or allocate without bound (absurd counts,
decompression bombs, deep recursion) run in a child process with a timeout,
and the child's peak memory growth is checked: a 2**40 count must be refused,
not allocated.

Valid edge cases (odd but legal headers, zero-record blocks, invalid UTF-8 in
``bytes``, extreme ints and wide decimals) must read correctly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import pytest

import jetliner_dist as jd
from corruption import (
    CODECS,
    MAGIC,
    OTHER_SYNC,
    SYNC,
    avro_bytes,
    avro_string,
    block,
    compress,
    header,
    metadata_block,
    overlong_varint,
    run_isolated,
    schema_text,
    snappy_with_preamble,
    split_file,
    write_file,
    zigzag,
    zstd_lying_size,
    zstd_without_size,
)
from jetliner_dist.errors import (
    CodecError,
    CorruptBlockError,
    DecodeError,
    DecompressionError,
    HeaderError,
    JetlinerDistError,
    LimitExceededError,
    SchemaError,
    SyncMarkerError,
    TruncatedError,
)

MiB = 1 << 20
# Peak memory a refused read may add: a few MiB of buffers and batches, far
# below what any of the absurd counts or bombs below would need.
RSS_LIMIT = 64 * MiB
# Virtual memory too (a lazily touched allocation does not show in the RSS);
# thread pools and allocator arenas reserve some, a 2**40 count would need TiBs.
VM_LIMIT = 4096 * MiB


def record_schema(*types, name: str = "r") -> dict:
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": f"f{i}", "type": t} for i, t in enumerate(types)],
    }


LONG = record_schema("long")
STRING = record_schema("string")
BYTES = record_schema("bytes")
INT = record_schema("int")
NULLABLE = record_schema(["null", "string"])
UNION = record_schema(["int", "string", "null"])
ENUM = record_schema({"type": "enum", "name": "e", "symbols": ["A", "B", "C"]})
DECIMAL = record_schema({"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 0})
EMPTY = {"type": "record", "name": "empty", "fields": []}
NULL_ONLY = record_schema("null")
NODE = {
    "type": "record",
    "name": "Node",
    "fields": [{"name": "v", "type": "long"}, {"name": "next", "type": ["null", "Node"]}],
}
TREE = {
    "type": "record",
    "name": "Tree",
    "fields": [{"name": "kids", "type": {"type": "array", "items": "Tree"}}],
}


def longs(*values: int) -> bytes:
    return b"".join(zigzag(v) for v in values)


# -- case model ---------------------------------------------------------------


@dataclass(frozen=True)
class Parts:
    """A file as its header bytes plus the bytes of each (possibly broken) block."""

    head: bytes
    blocks: tuple[bytes, ...] = ()

    @property
    def data(self) -> bytes:
        return self.head + b"".join(self.blocks)

    def span(self, index: int) -> tuple[int, int]:
        start = len(self.head) + sum(len(b) for b in self.blocks[:index])
        return start, start + len(self.blocks[index])


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], Parts]
    error: type | tuple[type, ...]
    block: int | None = None  # None: a header error, which must not name a block
    record: int | None = None  # checked when given
    words: tuple[str, ...] = ()  # the message must contain each (case-insensitive)
    options: dict = field(default_factory=dict)
    offset: int | None = None  # exact offset, checked when given (header errors)
    # False where the file is read as several splits: a split that starts
    # mid-file reports block=None (errors.JetlinerDistError); the offset still
    # places the error in the file.
    block_in_file: bool = True

    @property
    def allowed(self) -> tuple[type, ...]:
        return self.error if isinstance(self.error, tuple) else (self.error,)


def one_block(schema, payload: bytes, count: int = 1, codec: str | None = None) -> Callable:
    return lambda: Parts(header(schema, codec=codec), (block(count, payload),))


def blocks_of(schema, *raw_blocks: bytes, codec: str | None = None) -> Callable:
    return lambda: Parts(header(schema, codec=codec), tuple(raw_blocks))


def good_blocks(schema, n: int, codec: str = "null", per_block: int = 10) -> list[bytes]:
    """``n`` valid blocks of longs (values 0, 1, 2, ... across blocks)."""
    return [
        block(per_block, compress(codec, longs(*range(b * per_block, (b + 1) * per_block))))
        for b in range(n)
    ]


def raw(data: bytes) -> Callable:
    return lambda: Parts(data)


# -- header cases -------------------------------------------------------------

HEADER_CASES = [
    Case("bad-magic", raw(b"Obj\x02" + header(LONG)[4:]), HeaderError, words=("magic",), offset=0),
    Case("not-avro-at-all", raw(b"PAR1" + bytes(200)), HeaderError, words=("magic",), offset=0),
    Case("empty-file", raw(b""), TruncatedError, words=("magic",)),
    Case("shorter-than-magic", raw(b"Ob"), TruncatedError, words=("magic",)),
    Case("magic-only", raw(MAGIC), TruncatedError),
    Case("truncated-in-metadata", raw(header(LONG)[:20]), TruncatedError),
    Case("truncated-in-sync", raw(header(LONG)[:-5]), TruncatedError, words=("sync",)),
    Case("unknown-codec", raw(header(LONG, codec="lz4")), CodecError, words=("lz4", "snappy")),
    Case("empty-codec-name", raw(header(LONG, codec="")), CodecError, words=("codec",)),
    Case("non-utf8-codec-name", raw(header(LONG, codec=b"\xff\xfe")), (CodecError, HeaderError),
         words=("codec",)),  # fmt: skip
    Case("missing-schema", raw(header(None)), HeaderError, words=("avro.schema",)),
    Case("schema-not-json", raw(header(b'{"type": ')), HeaderError, words=("avro.schema",)),
    Case("schema-not-utf8", raw(header(b'"\xff"')), HeaderError, words=("avro.schema",)),
    Case("schema-unknown-type", raw(header({"type": "wat"})), SchemaError, words=("wat",)),
    Case("metadata-key-not-utf8", raw(header(LONG, extra=[(b"\xff", b"x")])), HeaderError),
    Case(
        "metadata-2**40-entries", raw(MAGIC + zigzag(2**40) + bytes(64)), HeaderError,
        words=("metadata",),
    ),  # fmt: skip
    # Unreadable metadata is a header problem: HeaderError, not a bare AvroFormatError.
    Case("metadata-negative-length", raw(MAGIC + zigzag(1) + zigzag(-3) + b"abc" + bytes(32)),
         HeaderError, words=("negative",)),  # fmt: skip
    Case("metadata-overlong-varint", raw(MAGIC + overlong_varint(11) + bytes(32)), HeaderError,
         words=("varint",)),  # fmt: skip
]


# -- block framing cases ------------------------------------------------------

FRAMING_CASES = [
    Case("negative-record-count", blocks_of(LONG, block(-1, longs(5))), CorruptBlockError,
         block=0, words=("negative", "count")),  # fmt: skip
    Case("negative-block-size",
         blocks_of(LONG, zigzag(1) + zigzag(-1) + longs(5) + SYNC),
         CorruptBlockError, block=0, words=("negative", "size")),  # fmt: skip
    Case("overlong-varint-block-count",
         blocks_of(LONG, overlong_varint(11) + zigzag(1) + longs(5) + SYNC),
         CorruptBlockError, block=0, words=("varint",)),  # fmt: skip
    Case("overlong-varint-block-size",
         blocks_of(LONG, zigzag(1) + overlong_varint(12) + longs(5) + SYNC),
         CorruptBlockError, block=0, words=("varint",)),  # fmt: skip
    Case("overlong-varint-later-block",
         blocks_of(LONG, *good_blocks(LONG, 2), overlong_varint(11) + zigzag(1) + longs(5) + SYNC),
         CorruptBlockError, block=2, words=("varint",)),  # fmt: skip
    Case("block-size-past-end-of-file", blocks_of(LONG, block(1, longs(5), size=100)),
         TruncatedError, block=0),  # fmt: skip
    Case("file-ends-mid-payload",
         blocks_of(LONG, *good_blocks(LONG, 2), block(10, longs(*range(10)))[:8]),
         TruncatedError, block=2),  # fmt: skip
    Case("file-ends-mid-sync", blocks_of(LONG, *good_blocks(LONG, 2), block(1, longs(5))[:-7]),
         TruncatedError, block=2),  # fmt: skip
    Case("file-ends-mid-block-header", blocks_of(LONG, *good_blocks(LONG, 1), zigzag(1) + b"\x80"),
         TruncatedError, block=1),  # fmt: skip
    Case("trailing-byte-after-last-block", blocks_of(LONG, *good_blocks(LONG, 1), zigzag(1)),
         TruncatedError, block=1),  # fmt: skip
    Case("block-size-above-max_block_size", blocks_of(LONG, block(100, longs(*[5] * 100))),
         LimitExceededError, block=0, words=("max_block_size",),
         options={"max_block_size": 64}),  # fmt: skip
    Case("later-block-above-max_block_size",
         blocks_of(LONG, block(10, longs(*range(10))), block(100, longs(*[5] * 100))),
         LimitExceededError, block=1, words=("max_block_size",),
         options={"max_block_size": 64}),  # fmt: skip
    Case("sync-mismatch-first-block", blocks_of(LONG, block(1, longs(5), sync=OTHER_SYNC)),
         SyncMarkerError, block=0, words=("sync marker",)),  # fmt: skip
    Case("sync-mismatch-third-block",
         blocks_of(LONG, *good_blocks(LONG, 2), block(1, longs(5), sync=OTHER_SYNC),
                   *good_blocks(LONG, 2)),
         SyncMarkerError, block=2, words=("sync marker",)),  # fmt: skip
    Case("sync-off-by-one-byte",  # size one short: the marker check lands a byte early
         blocks_of(LONG, *good_blocks(LONG, 1), block(2, longs(5, 6), size=1)),
         SyncMarkerError, block=1, words=("sync marker",)),  # fmt: skip
    Case("records-end-before-block-end", blocks_of(LONG, block(1, longs(5, 6))),
         CorruptBlockError, block=0, words=("end",)),  # fmt: skip
    Case("zero-count-block-with-bytes",
         blocks_of(LONG, *good_blocks(LONG, 1), block(0, longs(5))),
         CorruptBlockError, block=1, words=("end",)),  # fmt: skip
    Case("count-3-data-for-2", blocks_of(LONG, block(3, longs(5, 6))),
         (CorruptBlockError, DecodeError), block=0),  # fmt: skip
    Case("count-3-strings-for-2", blocks_of(STRING, block(3, avro_string("a") + avro_string("b"))),
         (CorruptBlockError, DecodeError), block=0),  # fmt: skip
]


# -- record data cases --------------------------------------------------------


def utf8_case(name: str, raw_bytes: bytes) -> Case:
    return Case(f"invalid-utf8-{name}", one_block(STRING, avro_bytes(raw_bytes)), DecodeError,
                block=0, record=0, words=("utf-8",))  # fmt: skip


INVALID_UTF8 = {
    "overlong-2-byte-slash": b"\xc0\xaf",
    "overlong-3-byte": b"\xe0\x80\xaf",
    "overlong-4-byte": b"\xf0\x80\x80\x80",
    "surrogate-high": b"\xed\xa0\x80",
    "surrogate-low": b"\xed\xbf\xbf",
    "above-u10ffff": b"\xf4\x90\x80\x80",
    "lead-f5": b"\xf5\x80\x80\x80",
    "byte-ff": b"\xff",
    "lone-continuation": b"\x80",
    "cut-3-byte-sequence": b"\xe2\x82",
    "cut-at-end-after-ascii": b"abc\xe2\x82",
    "bad-byte-after-8-ascii": b"abcdefghij\xfe",
    "bad-byte-inside-ascii-run": b"abcdefghijklmnop\xc3qrstuvwxyz0123456789",
    "missing-continuation": b"\xe2\x28\xa1",
}

DATA_CASES = [
    Case("overlong-varint-in-record", one_block(LONG, overlong_varint(11)), DecodeError,
         block=0, record=0, words=("varint",)),  # fmt: skip
    Case("overlong-varint-in-third-record", one_block(LONG, longs(1, 2) + overlong_varint(11), 3),
         DecodeError, block=0, record=2, words=("varint",)),  # fmt: skip
    # Ten bytes whose last carries bits past 64: Avro Java refuses it, so must we.
    Case("varint-overflows-64-bits-in-record", one_block(LONG, b"\xff" * 9 + b"\x7f"),
         DecodeError, block=0, record=0, words=("varint",)),  # fmt: skip
    Case("negative-string-length", one_block(STRING, zigzag(-1)), DecodeError, block=0,
         record=0, words=("negative",)),  # fmt: skip
    Case("negative-bytes-length", one_block(BYTES, zigzag(-5) + b"abcde"), DecodeError, block=0,
         record=0, words=("negative",)),  # fmt: skip
    Case("string-longer-than-block", one_block(STRING, zigzag(10) + b"abc"), DecodeError,
         block=0, record=0),  # fmt: skip
    Case("string-length-2**62", one_block(STRING, zigzag(2**62) + b"abc"), DecodeError, block=0,
         record=0),  # fmt: skip
    Case("bytes-longer-than-later-block",
         blocks_of(BYTES, block(1, avro_bytes(b"ok")), block(1, zigzag(100) + b"abc")),
         DecodeError, block=1, record=0),  # fmt: skip
    Case("nullable-union-index-2", one_block(NULLABLE, zigzag(2)), DecodeError, block=0,
         record=0, words=("union",)),  # fmt: skip
    Case("nullable-union-index-negative", one_block(NULLABLE, zigzag(-1)), DecodeError, block=0,
         record=0, words=("union",)),  # fmt: skip
    Case("union-index-3", one_block(UNION, zigzag(3)), DecodeError, block=0, record=0,
         words=("union",)),  # fmt: skip
    Case("union-index-negative", one_block(UNION, zigzag(-1)), DecodeError, block=0, record=0,
         words=("union",)),  # fmt: skip
    Case("union-index-2**40", one_block(UNION, zigzag(2**40)), DecodeError, block=0, record=0,
         words=("union",)),  # fmt: skip
    Case("enum-index-3", one_block(ENUM, zigzag(3)), DecodeError, block=0, record=0,
         words=("enum",)),  # fmt: skip
    Case("enum-index-negative", one_block(ENUM, zigzag(-1)), DecodeError, block=0, record=0,
         words=("enum",)),  # fmt: skip
    Case("enum-index-in-second-record", one_block(ENUM, zigzag(1) + zigzag(7), 2), DecodeError,
         block=0, record=1, words=("enum",)),  # fmt: skip
    Case("int-2**31", one_block(INT, zigzag(2**31)), DecodeError, block=0, record=0,
         words=("32 bits",)),  # fmt: skip
    Case("int-below-minus-2**31", one_block(INT, zigzag(-(2**31) - 1)), DecodeError, block=0,
         record=0, words=("32 bits",)),  # fmt: skip
    Case("decimal-17-bytes-too-wide", one_block(DECIMAL, avro_bytes(b"\x01" + bytes(16))),
         DecodeError, block=0, record=0, words=("decimal",)),  # fmt: skip
    Case("decimal-17-bytes-sign-flips",  # 0x00 then 0x80: not a sign extension
         one_block(DECIMAL, avro_bytes(b"\x00\x80" + bytes(15))),
         DecodeError, block=0, record=0, words=("decimal",)),  # fmt: skip
    Case("decimal-40-bytes", one_block(DECIMAL, avro_bytes(b"\x7f" * 40)), DecodeError, block=0,
         record=0, words=("decimal",)),  # fmt: skip
    *[utf8_case(name, value) for name, value in INVALID_UTF8.items()],
]


# -- codec cases --------------------------------------------------------------

PAYLOAD_ROWS = 1000


@lru_cache(maxsize=None)
def payload() -> bytes:
    return longs(*range(PAYLOAD_ROWS))


def codec_block(codec: str, stored: bytes, *, before: int = 0) -> Callable:
    """A file of ``before`` good blocks, then one block storing ``stored``."""
    return lambda: Parts(
        header(LONG, codec=codec),
        (*good_blocks(LONG, before, codec), block(PAYLOAD_ROWS, stored)),
    )


def snappy_cut_short() -> bytes:
    """A snappy block cut after 500 bytes, its checksum kept."""
    whole = compress("snappy", payload())
    return whole[:500] + whole[-4:]


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def zstd_with_checksum(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


CODEC_CASES = [
    Case("snappy-bad-crc", codec_block("snappy", compress("snappy", payload())[:-4] + bytes(4)),
         DecompressionError, block=0, words=("snappy", "checksum")),  # fmt: skip
    Case("snappy-bad-crc-third-block",
         codec_block("snappy", compress("snappy", payload())[:-4] + bytes(4), before=2),
         DecompressionError, block=2, words=("snappy", "checksum")),  # fmt: skip
    Case("snappy-truncated",
         codec_block("snappy", snappy_cut_short()),
         DecompressionError, block=0, words=("snappy",)),  # fmt: skip
    Case("snappy-claims-fewer-bytes", codec_block("snappy", snappy_with_preamble(10, payload())),
         DecompressionError, block=0, words=("snappy",)),  # fmt: skip
    Case("snappy-claims-more-bytes",
         codec_block("snappy", snappy_with_preamble(len(payload()) + 100, payload())),
         DecompressionError, block=0, words=("snappy",)),  # fmt: skip
    # These three fail before decompression starts; they still need their block.
    Case("snappy-block-of-2-bytes", codec_block("snappy", b"\x01\x02"), DecompressionError,
         block=0, words=("snappy",)),  # fmt: skip
    Case("snappy-empty-block", codec_block("snappy", b"", before=1), DecompressionError, block=1,
         words=("snappy",)),  # fmt: skip
    Case("snappy-overlong-preamble", codec_block("snappy", b"\xff" * 11 + bytes(4)),
         DecompressionError, block=0, words=("snappy",)),  # fmt: skip
    Case("deflate-garbage", codec_block("deflate", b"\x07garbage" * 5), DecompressionError,
         block=0, words=("deflate",)),  # fmt: skip
    Case("deflate-truncated", codec_block("deflate", compress("deflate", payload())[:100]),
         DecompressionError, block=0, words=("deflate",)),  # fmt: skip
    Case("deflate-empty-third-block", codec_block("deflate", b"", before=2), DecompressionError,
         block=2, words=("deflate",)),  # fmt: skip
    Case("zstandard-garbage", codec_block("zstandard", b"\x07garbage" * 5), DecompressionError,
         block=0, words=("zstandard",)),  # fmt: skip
    Case("zstandard-truncated", codec_block("zstandard", compress("zstandard", payload())[:100]),
         DecompressionError, block=0, words=("zstandard",)),  # fmt: skip
    Case("zstandard-bad-checksum",
         codec_block("zstandard", flip(zstd_with_checksum(payload()), 200)),
         DecompressionError, block=0, words=("zstandard",)),  # fmt: skip
    Case("zstandard-claims-fewer-bytes", codec_block("zstandard", zstd_lying_size(10, payload())),
         DecompressionError, block=0, words=("zstandard",)),  # fmt: skip
    Case("zstandard-claims-more-bytes",
         codec_block("zstandard", zstd_lying_size(len(payload()) + 10, payload())),
         DecompressionError, block=0, words=("zstandard",)),  # fmt: skip
    Case("bzip2-garbage", codec_block("bzip2", b"\x07garbage" * 5), DecompressionError, block=0,
         words=("bzip2",)),  # fmt: skip
    Case("bzip2-truncated", codec_block("bzip2", compress("bzip2", payload())[:100]),
         DecompressionError, block=0, words=("bzip2",)),  # fmt: skip
    Case("bzip2-bit-flip", codec_block("bzip2", flip(compress("bzip2", payload()), 100), before=1),
         DecompressionError, block=1, words=("bzip2",)),  # fmt: skip
    Case("xz-garbage", codec_block("xz", b"\x07garbage" * 5), DecompressionError, block=0,
         words=("xz",)),  # fmt: skip
    Case("xz-truncated", codec_block("xz", compress("xz", payload())[:100]), DecompressionError,
         block=0, words=("xz",)),  # fmt: skip
    Case("xz-bit-flip", codec_block("xz", flip(compress("xz", payload()), 100)),
         DecompressionError, block=0, words=("xz",)),  # fmt: skip
]


# -- later windows: errors in blocks past the first read window (8 MiB) ------

FIXED_KIB = record_schema({"type": "fixed", "name": "kib", "size": 1024})
BIG_BLOCK_ROWS = 5 * 1024  # 5 MiB of 1 KiB values per block


def big_blocks(bad: bytes, n_good: int = 2) -> Callable:
    """``n_good`` blocks of 5 MiB each, then ``bad``: the damage is past 10 MiB."""

    def build() -> Parts:
        good = block(BIG_BLOCK_ROWS, bytes(1024 * BIG_BLOCK_ROWS))
        return Parts(header(FIXED_KIB), (good,) * n_good + (bad,))

    return build


WINDOW_CASES = [
    Case("sync-mismatch-after-10MiB", big_blocks(block(1, bytes(1024), sync=OTHER_SYNC)),
         SyncMarkerError, block=2, words=("sync marker",), block_in_file=False),  # fmt: skip
    Case("records-end-early-after-10MiB", big_blocks(block(1, bytes(1025))), CorruptBlockError,
         block=2, words=("end",), block_in_file=False),  # fmt: skip
    Case("count-too-large-after-10MiB", big_blocks(block(2, bytes(1500))), CorruptBlockError,
         block=2, words=("count",), block_in_file=False),  # fmt: skip
    Case("truncated-after-10MiB", big_blocks(block(1, bytes(1024))[:50]), TruncatedError,
         block=2, block_in_file=False),  # fmt: skip
]

# Through in-memory bytes and an open file object too (the path is then theirs).
SOURCE_CASES = FRAMING_CASES + DATA_CASES[:6]
IN_PROCESS = HEADER_CASES + FRAMING_CASES + DATA_CASES + CODEC_CASES + WINDOW_CASES


# -- isolated cases: absurd counts, bombs, deep recursion ---------------------


def array_count_case(item_name: str, items, count: int, negative: bool = False) -> Case:
    schema = record_schema({"type": "array", "items": items})
    if negative:  # a negative count is followed by the items' byte size
        body = zigzag(-count) + zigzag(1) + zigzag(0) + zigzag(0)
    else:
        body = zigzag(count) + zigzag(0) + zigzag(0)
    sign = "-" if negative else ""
    return Case(f"array-of-{item_name}-count-{sign}2**{count.bit_length() - 1}",
                one_block(schema, body), (CorruptBlockError, LimitExceededError), block=0,
                record=0)  # fmt: skip


def map_count_case(value_name: str, values, count: int) -> Case:
    schema = record_schema({"type": "map", "values": values})
    return Case(f"map-of-{value_name}-count-2**{count.bit_length() - 1}",
                one_block(schema, zigzag(count) + avro_string("k") + zigzag(0)),
                (CorruptBlockError, LimitExceededError), block=0, record=0)  # fmt: skip


@lru_cache(maxsize=None)
def zeros_value(size: int) -> bytes:
    """One ``bytes`` record holding ``size`` zero bytes (compresses to almost nothing)."""
    return avro_bytes(bytes(size))


BOMB = 64 * MiB  # decompressed size of each bomb
BOMB_LIMIT = 1 * MiB  # max_block_size the bombs are read with


def bomb_case(name: str, make_stored: Callable[[], bytes], options=None, error=LimitExceededError):
    return Case(
        f"bomb-{name}",
        lambda: Parts(header(BYTES, codec=name.split("-")[0]), (block(1, make_stored()),)),
        error, block=0,
        options={"max_block_size": BOMB_LIMIT} if options is None else options,
    )  # fmt: skip


def chain(depth: int) -> bytes:
    """A linked list of ``depth`` Node records (each v=7) as one record's bytes."""
    return (zigzag(7) + zigzag(1)) * (depth - 1) + zigzag(7) + zigzag(0)


def tree(depth: int) -> bytes:
    """A Tree whose each level has one child, ``depth`` levels deep."""
    return zigzag(1) * (depth - 1) + zigzag(0) + zigzag(0) * (depth - 1)


COUNT = (CorruptBlockError, LimitExceededError)

ISOLATED = [
    Case("record-count-2**40", one_block(LONG, longs(5, 6), 2**40), COUNT, block=0),
    Case("record-count-2**62", one_block(LONG, longs(5, 6), 2**62), COUNT, block=0),
    Case("record-count-2**63-1", one_block(LONG, longs(5, 6), 2**63 - 1), COUNT, block=0),
    Case("record-count-2**62-third-block", blocks_of(LONG, *good_blocks(LONG, 2),
         block(2**62, longs(5, 6))), COUNT, block=2),  # fmt: skip
    Case("empty-records-count-2**40", one_block(EMPTY, b"", 2**40), COUNT, block=0),
    Case("null-records-count-2**62", one_block(NULL_ONLY, b"", 2**62), COUNT, block=0),
    Case("string-records-count-2**40", one_block(STRING, avro_string("a"), 2**40), COUNT, block=0),
    *[array_count_case("null", "null", 2**e) for e in (40, 62)],
    array_count_case("null", "null", 2**40, negative=True),
    *[array_count_case("empty-record", EMPTY, 2**e) for e in (40, 62)],
    *[array_count_case("long", "long", 2**e) for e in (40, 62)],
    array_count_case("long", "long", 2**40, negative=True),
    array_count_case("long", "long", 2**63, negative=True),  # -(-2**63) overflows int64
    array_count_case("string", "string", 2**40),
    map_count_case("null", "null", 2**40),
    map_count_case("long", "long", 2**62),
    Case("array-of-null-count-2**40-in-later-item",
         one_block(record_schema({"type": "array", "items": "null"}),
                   zigzag(3) + zigzag(2**40) + zigzag(0)),
         COUNT, block=0, record=0),  # fmt: skip
    bomb_case("deflate", lambda: compress("deflate", zeros_value(BOMB))),
    bomb_case("snappy", lambda: compress("snappy", zeros_value(16 * MiB))),
    bomb_case("snappy-claims-2**40", lambda: snappy_with_preamble(2**40, bytes(100)), options={}),
    bomb_case("snappy-claims-fewer-bytes",
              lambda: snappy_with_preamble(100, zeros_value(16 * MiB)),
              error=(DecompressionError, LimitExceededError)),  # fmt: skip
    bomb_case("zstandard", lambda: compress("zstandard", zeros_value(BOMB))),
    bomb_case("zstandard-unsized", lambda: zstd_without_size(zeros_value(BOMB))),
    bomb_case("zstandard-claims-2**40", lambda: zstd_lying_size(2**40, bytes(100)), options={}),
    bomb_case("zstandard-claims-fewer-bytes", lambda: zstd_lying_size(100, zeros_value(BOMB)),
              error=(DecompressionError, LimitExceededError)),  # fmt: skip
    bomb_case("bzip2", lambda: compress("bzip2", zeros_value(BOMB))),
    bomb_case("xz", lambda: compress("xz", zeros_value(BOMB))),
    Case("linked-list-100k-deep", one_block(NODE, chain(100_000)), LimitExceededError, block=0,
         record=0, words=("nest",)),  # fmt: skip
    Case("tree-100k-deep", one_block(TREE, tree(100_000)), LimitExceededError, block=0,
         record=0, words=("nest",)),  # fmt: skip
    Case("linked-list-100k-deep-second-record",
         one_block(NODE, chain(3) + chain(100_000), 2), LimitExceededError, block=0,
         record=1, words=("nest",)),  # fmt: skip
]


# -- checks -------------------------------------------------------------------

READERS = ["read_table", "read_avro", "iter_batches"]


def read(reader: str, source, **options):
    """Read all of ``source`` with one of the public readers."""
    if reader == "iter_batches":
        return [batch for batch in jd.iter_batches(source, **options)]
    return getattr(jd, reader)(source, **options)


def check_error(case: Case, parts: Parts, path: str, name: str, message: str, fields: dict):
    """The error matches the case: class, location fields, message."""
    allowed = {cls.__name__ for cls in case.allowed}
    assert name in allowed, f"{case.id}: raised {name}: {message}; expected one of {allowed}"
    assert fields["path"] == path, f"{case.id}: path {fields['path']!r}: {message}"
    assert path in message, f"{case.id}: the message does not name the file: {message}"
    if case.block is None:
        assert fields["block"] is None, f"{case.id}: a header error names block {fields['block']}"
        if case.offset is not None:
            assert fields["offset"] == case.offset, message
        if fields["offset"] is not None:
            assert 0 <= fields["offset"] <= len(parts.head), message
    else:
        if case.block_in_file:
            assert fields["block"] == case.block, f"{case.id}: block {fields['block']}: {message}"
        else:  # a split that starts mid-file does not know the index (errors.py)
            assert fields["block"] in (None, case.block), f"{case.id}: {message}"
        start, end = parts.span(case.block)
        assert fields["offset"] is not None and start <= fields["offset"] < end, (
            f"{case.id}: offset {fields['offset']} is outside block {case.block} "
            f"[{start}, {end}): {message}"
        )
        assert str(fields["offset"]) in message, message
        if fields["block"] is not None:
            assert f"block {fields['block']}" in message, message
    if case.record is not None:
        assert fields["record"] == case.record, f"{case.id}: record {fields['record']}: {message}"
    for word in case.words:
        assert word.lower() in message.lower(), f"{case.id}: {word!r} not in {message!r}"


def error_fields(exc: JetlinerDistError) -> dict:
    return {name: getattr(exc, name) for name in ("path", "block", "offset", "record")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Build a case's file once per module; returns (parts, path)."""
    folder = tmp_path_factory.mktemp("corrupt")
    built: dict[str, tuple[Parts, str]] = {}

    def get(case: Case) -> tuple[Parts, str]:
        if case.id not in built:
            parts = case.build()
            path = folder / f"{case.id}.avro"
            path.write_bytes(parts.data)
            built[case.id] = (parts, str(path))
        return built[case.id]

    return get


def _ids(cases):
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return ids


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", IN_PROCESS, ids=_ids(IN_PROCESS))
def test_corrupt_file_raises_typed_error(case: Case, reader: str, files):
    parts, path = files(case)
    with pytest.raises(JetlinerDistError) as info:
        read(reader, path, **case.options)
    exc = info.value
    check_error(case, parts, path, type(exc).__name__, str(exc), error_fields(exc))


@pytest.mark.parametrize("case", HEADER_CASES, ids=_ids(HEADER_CASES))
def test_corrupt_header_fails_schema_read(case: Case, files):
    parts, path = files(case)
    with pytest.raises(JetlinerDistError) as info:
        jd.read_avro_schema(path)
    exc = info.value
    check_error(case, parts, path, type(exc).__name__, str(exc), error_fields(exc))


@pytest.mark.parametrize("case", SOURCE_CASES, ids=_ids(SOURCE_CASES))
def test_corrupt_bytes_and_file_object_sources(case: Case, files):
    """The same errors from in-memory bytes and from an open file object."""
    parts, path = files(case)
    with open(path, "rb") as fileobj:
        for source, name in ((parts.data, "<bytes>"), (fileobj, path)):
            with pytest.raises(JetlinerDistError) as info:
                read("read_table", source, **case.options)
            exc = info.value
            assert type(exc) in case.allowed, f"{type(exc).__name__}: {exc}"
            assert (exc.path, exc.block) == (name, case.block), str(exc)
            start, end = parts.span(case.block)
            assert start <= exc.offset < end, str(exc)


@pytest.mark.parametrize("reader", ["read_table", "iter_batches", "read_avro"])
@pytest.mark.parametrize("case", ISOLATED, ids=_ids(ISOLATED))
def test_absurd_input_fails_fast_in_bounded_memory(case: Case, reader: str, files):
    """Run in a child process: a crash or a hang fails this test, not the run."""
    parts, path = files(case)
    outcome = run_isolated(path, reader=reader, **case.options)
    assert outcome.error is not None, f"{case.id}: read {outcome.rows} rows, expected an error"
    check_error(case, parts, path, outcome.error, outcome.message, outcome.fields)
    assert outcome.seconds < 10, f"{case.id}: took {outcome.seconds:.1f} s to refuse"
    grew = f"{outcome.rss_growth >> 20} MiB resident, {outcome.vm_growth >> 20} MiB virtual"
    assert outcome.rss_growth < RSS_LIMIT, f"{case.id}: memory grew {grew}"
    assert outcome.vm_growth < VM_LIMIT, f"{case.id}: memory grew {grew}"


# -- streaming: good batches first, then the error ----------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_iter_batches_yields_good_blocks_then_raises(codec: str, tmp_path):
    blocks = good_blocks(LONG, 5, codec)
    blocks[3] = blocks[3][: -len(SYNC)] + OTHER_SYNC
    parts = Parts(header(LONG, codec=codec), tuple(blocks))
    path = tmp_path / "f.avro"
    path.write_bytes(parts.data)
    seen = []
    with pytest.raises(SyncMarkerError) as info:
        for batch in jd.iter_batches(str(path), batch_rows=10):
            seen.append(batch.column(0).to_pylist())
    assert seen == [list(range(0, 10)), list(range(10, 20)), list(range(20, 30))]
    assert info.value.block == 3 and info.value.path == str(path)
    start, end = parts.span(3)
    assert start <= info.value.offset < end
    with pytest.raises(SyncMarkerError):
        jd.read_avro(str(path))
    with pytest.raises(SyncMarkerError):
        jd.read_table(parts.data)


def test_iter_batches_decode_error_in_later_block():
    blocks = good_blocks(LONG, 4)
    blocks[2] = block(10, longs(*[1] * 9) + overlong_varint())
    parts = Parts(header(LONG), tuple(blocks))
    batches = jd.iter_batches(parts.data, batch_rows=10)
    assert next(batches).column(0).to_pylist() == list(range(10))
    assert next(batches).column(0).to_pylist() == list(range(10, 20))
    with pytest.raises(DecodeError) as info:
        next(batches)
    assert (info.value.block, info.value.record) == (2, 9)
    assert info.value.offset == parts.span(2)[0]
    with pytest.raises(DecodeError):
        jd.read_avro(parts.data)


def test_n_rows_before_the_corrupt_block_reads_fine():
    """Rows wanted end before the damage: nothing to complain about."""
    blocks = good_blocks(LONG, 4)
    blocks[3] = block(10, longs(*[1] * 9) + overlong_varint())
    data = header(LONG) + b"".join(blocks)
    assert jd.read_table(data, n_rows=25).column(0).to_pylist() == list(range(25))
    with pytest.raises(DecodeError):
        jd.read_table(data, n_rows=40)  # record 9 of block 3 is the broken one


# -- valid edge cases ---------------------------------------------------------


@dataclass(frozen=True)
class Valid:
    id: str
    build: Callable[[], bytes]
    rows: list


def odd_metadata() -> bytes:
    """Metadata in three map blocks, two with negative counts, values not UTF-8."""
    blocks = [
        metadata_block([(b"avro.schema", schema_text(LONG))], negative=True),
        metadata_block(
            [(b"user.binary", b"\xff\xfe\x00\x80"), (b"user.empty", b"")], negative=True
        ),
        metadata_block([(b"avro.codec", b"null"), (b"user.latin1", "é".encode("latin-1"))]),
    ]
    return header(map_blocks=blocks) + block(2, longs(5, 6))


def zero_blocks(codec: str) -> Callable[[], bytes]:
    def build() -> bytes:
        blocks = [(0, b""), (2, longs(1, 2)), (0, b""), (0, b""), (1, longs(3)), (0, b"")]
        return header(LONG, codec=codec) + b"".join(
            block(count, compress(codec, data)) for count, data in blocks
        )

    return build


def utf8_ok(text: str) -> Valid:
    return Valid(
        f"valid-utf8-{text.encode().hex()}",
        lambda: header(STRING) + block(1, avro_string(text)),
        [{"f0": text}],
    )


VALID = [
    Valid("header-only-no-blocks", lambda: header(LONG), []),
    Valid("metadata-negative-counts-several-blocks-binary-values", odd_metadata,
          [{"f0": 5}, {"f0": 6}]),  # fmt: skip
    *[Valid(f"zero-record-blocks-{codec}", zero_blocks(codec), [{"f0": v} for v in (1, 2, 3)])
      for codec in CODECS],  # fmt: skip
    Valid("invalid-utf8-in-bytes-is-fine",
          lambda: header(BYTES) + block(len(INVALID_UTF8), b"".join(
              avro_bytes(v) for v in INVALID_UTF8.values())),
          [{"f0": v} for v in INVALID_UTF8.values()]),  # fmt: skip
    *[utf8_ok(t) for t in ("é", "€", "\U0010ffff", "\ufffd", "\ud7ff", "\ue000", "a" * 20 + "𝄞")],
    Valid("int-edges", lambda: header(INT) + block(2, longs(2**31 - 1, -(2**31))),
          [{"f0": 2**31 - 1}, {"f0": -(2**31)}]),  # fmt: skip
    Valid("long-edges", lambda: header(LONG) + block(2, longs(2**63 - 1, -(2**63))),
          [{"f0": 2**63 - 1}, {"f0": -(2**63)}]),  # fmt: skip
    Valid("decimal-sign-extended-to-17-and-40-bytes",
          lambda: header(DECIMAL) + block(3, avro_bytes(bytes(16) + b"\x01")
                                         + avro_bytes(b"\xff" * 17)
                                         + avro_bytes(b"\xff" * 39 + b"\x85")),
          [{"f0": __import__("decimal").Decimal(v)} for v in (1, -1, -123)]),  # fmt: skip
    Valid("empty-records-100k", lambda: header(EMPTY) + block(100_000, b""), [{}] * 100_000),
    Valid("array-of-100k-nulls",
          lambda: header(record_schema({"type": "array", "items": "null"}))
          + block(1, zigzag(100_000) + zigzag(0)),
          [{"f0": [None] * 100_000}]),  # fmt: skip
    Valid("array-negative-count-with-size",
          lambda: header(record_schema({"type": "array", "items": "long"}))
          + block(1, zigzag(-2) + zigzag(2) + longs(4, 5) + zigzag(0)),
          [{"f0": [4, 5]}]),  # fmt: skip
]


@pytest.mark.parametrize("case", VALID, ids=[v.id for v in VALID])
def test_valid_edge_cases_read(case: Valid):
    data = case.build()
    assert jd.read_table(data).to_pylist() == case.rows
    assert sum(b.num_rows for b in jd.iter_batches(data, batch_rows=7)) == len(case.rows)
    assert jd.read_avro(data).height == len(case.rows)


def test_empty_records_keep_their_count_in_polars():
    frame = jd.read_avro(header(EMPTY) + block(3, b"") + block(0, b"") + block(2, b""))
    assert frame.shape == (5, 0)


def test_fastavro_file_with_zero_record_blocks_matches_fastavro():
    """A file fastavro wrote, with empty blocks spliced in between its blocks."""
    import fastavro

    records = [{"f0": i} for i in range(30)]
    layout = split_file(write_file(LONG, records, block_records=10))
    empty = block(0, b"")
    spliced = [empty]
    for original in layout.blocks:
        spliced += [block(original.count, original.payload), empty]
    data = layout.assemble(spliced)
    assert list(fastavro.reader(io.BytesIO(data))) == records
    assert jd.read_table(data).to_pylist() == records


# -- recursion: deep, but within the kernel's limit ---------------------------


def node_json(nodes: int) -> str:
    return '{"v":7,"next":' * (nodes - 1) + '{"v":7,"next":null}' + "}" * (nodes - 1)


@pytest.mark.parametrize("depth", [3, 100, 1000, 3000])
def test_deep_linked_list_reads_or_hits_the_limit(depth: int, tmp_path):
    """A recursive value the kernel accepts renders as JSON, or is refused as a
    limit (LimitExceededError with its place) — valid data is never a DecodeError."""
    parts = Parts(header(NODE), (block(1, chain(depth)),))
    path = tmp_path / "list.avro"
    path.write_bytes(parts.data)
    try:
        table = jd.read_table(str(path))
    except LimitExceededError as exc:
        assert exc.path == str(path) and exc.block == 0 and exc.record == 0
        assert parts.span(0)[0] <= exc.offset < parts.span(0)[1]
        assert depth > 100, "a list 100 deep is well within any sensible limit"
        return
    assert table.to_pylist() == [{"v": 7, "next": node_json(depth - 1)}]


def deep_schema(depth: int) -> bytes:
    text = '"long"'
    for _ in range(depth):
        text = '{"type":"array","items":%s}' % text
    return ('{"type":"record","name":"r","fields":[{"name":"a","type":%s}]}' % text).encode()


@pytest.mark.parametrize("depth", [200, 600, 5000])
def test_deeply_nested_schema_reads_or_raises_typed_error(depth: int, tmp_path):
    """Never a bare RecursionError: read it, or refuse it as a schema problem."""
    data = header(deep_schema(depth)) + block(1, zigzag(1) * depth + zigzag(3) + zigzag(0) * depth)
    path = tmp_path / "deep.avro"
    path.write_bytes(data)
    try:
        table = jd.read_table(str(path))
    except JetlinerDistError as exc:
        assert type(exc) in (SchemaError, HeaderError, LimitExceededError), repr(exc)
        assert exc.path == str(path), str(exc)
        return
    value = table.column(0)[0].as_py()
    for _ in range(depth - 1):
        value = value[0]
    assert value == [3]


# -- valid but large: memory follows the data, not a guess --------------------


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("schema", [BYTES, STRING], ids=["bytes", "string"])
def test_large_values_read_in_bounded_memory(schema, reader: str, tmp_path):
    """Three blocks of one 5 MiB value each: a 15 MiB file must not make the
    reader reserve memory for a whole default batch of such rows (~330 GiB)."""
    value = b"x" * (5 * MiB)
    path = tmp_path / "big.avro"
    path.write_bytes(header(schema) + block(1, avro_bytes(value)) * 3)
    outcome = run_isolated(str(path), reader=reader)
    assert outcome.error is None, f"{outcome.error}: {outcome.message}"
    assert outcome.rows == 3
    assert outcome.vm_growth < VM_LIMIT, f"virtual memory grew {outcome.vm_growth >> 20} MiB"
    assert outcome.rss_growth < 256 * MiB, f"resident memory grew {outcome.rss_growth >> 20} MiB"


# -- splits: damage near a split boundary is reported, never skipped ----------

SPLIT_BLOCKS = 30
SPLIT_ROWS = 100  # longs of 2 bytes each: about 220 bytes per block


def split_blocks() -> list[bytes]:
    return [
        block(SPLIT_ROWS, longs(*range(1000 + b * SPLIT_ROWS, 1000 + (b + 1) * SPLIT_ROWS)))
        for b in range(SPLIT_BLOCKS)
    ]


def damaged(index: int, make: Callable[[bytes], bytes]) -> Callable[[], Parts]:
    """The split test file with block ``index`` replaced by ``make(good block)``;
    blocks after it are kept unless the damage is a truncation."""

    def build() -> Parts:
        blocks = split_blocks()
        blocks[index] = make(blocks[index])
        return Parts(header(LONG), tuple(blocks))

    return build


def with_sync(other: bytes) -> Callable[[bytes], bytes]:
    return lambda good: good[: -len(SYNC)] + other


LAST = SPLIT_BLOCKS - 1
SPLIT_CASES = [
    *[Case(f"sync-mismatch-block-{i}", damaged(i, with_sync(OTHER_SYNC)), SyncMarkerError,
           block=i, block_in_file=False) for i in (1, 7, 14, LAST)],  # fmt: skip
    Case("negative-count-block-9", damaged(9, lambda g: zigzag(-1) + g[1:]), CorruptBlockError,
         block=9, block_in_file=False),  # fmt: skip
    Case("overlong-varint-header-block-9", damaged(9, lambda g: overlong_varint(11) + g),
         CorruptBlockError, block=9, block_in_file=False),  # fmt: skip
    Case("records-end-early-block-9",
         damaged(9, lambda g: block(SPLIT_ROWS - 1, longs(*range(SPLIT_ROWS)))),
         CorruptBlockError, block=9, block_in_file=False),  # fmt: skip
    Case("overlong-varint-record-block-9",
         damaged(9, lambda g: block(SPLIT_ROWS, longs(*range(SPLIT_ROWS - 1)) + overlong_varint())),
         DecodeError, block=9, block_in_file=False),  # fmt: skip
    Case("truncated-in-last-block", damaged(LAST, lambda g: g[: len(g) // 2]), TruncatedError,
         block=LAST, block_in_file=False),  # fmt: skip
    Case("truncated-in-last-sync", damaged(LAST, lambda g: g[:-3]), TruncatedError,
         block=LAST, block_in_file=False),  # fmt: skip
    Case("partial-block-after-last", damaged(LAST, lambda g: g + zigzag(5)), TruncatedError,
         block=SPLIT_BLOCKS, block_in_file=False),  # fmt: skip
]


def _split_parts(case: Case) -> Parts:
    parts = case.build()
    if case.id == "partial-block-after-last":  # the tail is a block of its own here
        last = parts.blocks[LAST]
        tail = zigzag(5)
        parts = Parts(parts.head, parts.blocks[:LAST] + (last[: -len(tail)], tail))
    return parts


@pytest.mark.parametrize("max_workers", [1, 2])
@pytest.mark.parametrize("split_size", [512, 1000, 2048])
@pytest.mark.parametrize("case", SPLIT_CASES, ids=_ids(SPLIT_CASES))
def test_damage_at_split_boundaries_is_reported(case: Case, split_size, max_workers, tmp_path):
    """A corrupt or truncated block must raise whichever split meets it — a
    split that rejects a candidate sync marker must not drop the block silently."""
    parts = _split_parts(case)
    path = tmp_path / "split.avro"
    path.write_bytes(parts.data)
    for reader in ("read_table", "iter_batches"):
        try:
            result = read(reader, str(path), split_size=split_size, max_workers=max_workers)
        except JetlinerDistError as exc:
            check_error(case, parts, str(path), type(exc).__name__, str(exc), error_fields(exc))
        else:
            rows = result.num_rows if reader == "read_table" else sum(b.num_rows for b in result)
            pytest.fail(f"{case.id}: {reader} returned {rows} rows, expected an error")


def test_valid_file_reads_the_same_for_any_split_size():
    data = header(LONG) + b"".join(split_blocks())
    expected = list(range(1000, 1000 + SPLIT_BLOCKS * SPLIT_ROWS))
    for split_size in (100, 512, 1000, 2048, None):
        for max_workers in (1, 2):
            table = jd.read_table(data, split_size=split_size, max_workers=max_workers)
            assert table.column(0).to_pylist() == expected, (split_size, max_workers)
