"""Block codecs: a plain registry of name → decompress function.

Every function takes a block's payload and the largest decompressed size the
caller accepts, and returns a buffer. None of them allocates more than that
limit (plus a little), whatever the payload claims: a decompression bomb is a
:class:`LimitExceededError`, not an out-of-memory kill.

snappy and zstandard come from cramjam (fast, and the sizes they need are known
before decompressing); deflate, bzip2 and xz use the standard library, whose
streaming decompressors take a ``max_length`` that bounds the output. Readers
inflate snappy a window at a time in :mod:`jetliner_dist.avro.snappy` (one
GIL-free call); the per-block snappy function here is for single blocks and
for platforms where that kernel cannot call its CRC32.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Callable

import cramjam
from isal.isal_zlib import crc32  # 3× faster than zlib's on this machine class

from jetliner_dist.errors import CodecError, DecompressionError, LimitExceededError

Buffer = bytes | bytearray | memoryview
Decompress = Callable[[memoryview, int], Buffer]


def _null(payload: memoryview, max_size: int) -> Buffer:
    return payload


def _deflate(payload: memoryview, max_size: int) -> Buffer:
    # Avro's deflate is raw RFC 1951: no zlib header, hence negative wbits.
    return _stream(zlib.decompressobj(-15), zlib.error, "deflate", payload, max_size)


def _bzip2(payload: memoryview, max_size: int) -> Buffer:
    return _stream(bz2.BZ2Decompressor(), (OSError, ValueError), "bzip2", payload, max_size)


def _xz(payload: memoryview, max_size: int) -> Buffer:
    return _stream(lzma.LZMADecompressor(), lzma.LZMAError, "xz", payload, max_size)


def _stream(decompressor, errors, name: str, payload: memoryview, max_size: int) -> Buffer:
    """Run a standard-library streaming decompressor with a bounded output."""
    try:
        out = decompressor.decompress(payload, max_size + 1)
    except errors as exc:
        raise DecompressionError(f"{name} data is corrupt: {exc}") from exc
    if len(out) > max_size:
        raise LimitExceededError(_too_large(name, max_size))
    if not decompressor.eof:
        raise DecompressionError(f"{name} data is truncated")
    return out


def _snappy(payload: memoryview, max_size: int) -> Buffer:
    out = bytearray(snappy_size(payload, max_size))
    snappy_into(payload, out)
    return out


# Avro's snappy block is raw snappy followed by a big-endian CRC32 of the
# uncompressed bytes.


def snappy_size(payload: memoryview, max_size: int) -> int:
    """The decompressed size of a snappy block, checked against ``max_size``."""
    if len(payload) < 4:
        raise DecompressionError("snappy block is shorter than its 4-byte checksum")
    try:
        size = cramjam.snappy.decompress_raw_len(payload[:-4])
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise DecompressionError(f"snappy data is corrupt: {exc}") from exc
    if size > max_size:
        raise LimitExceededError(_too_large("snappy", max_size, size))
    return size


def snappy_into(payload: memoryview, out) -> None:
    """Decompress a snappy block into ``out`` (exactly its size) and check its CRC."""
    try:
        written = cramjam.snappy.decompress_raw_into(payload[:-4], out)
    except Exception as exc:
        raise DecompressionError(f"snappy data is corrupt: {exc}") from exc
    if written != len(out):
        raise DecompressionError(
            f"snappy data decompressed to {written} bytes, expected {len(out)}"
        )
    if crc32(out) != int.from_bytes(payload[-4:], "big"):
        raise DecompressionError("snappy block checksum (CRC32) does not match its data")


def _zstandard(payload: memoryview, max_size: int) -> Buffer:
    declared, bound = zstd_output_bounds(payload)
    if bound > max_size:
        raise LimitExceededError(_too_large("zstandard", max_size, declared))
    try:
        out = cramjam.zstd.decompress(payload, output_len=declared or None)
    except Exception as exc:
        raise DecompressionError(f"zstandard data is corrupt: {exc}") from exc
    if declared is not None and len(out) != declared:
        raise DecompressionError(
            f"zstandard data decompressed to {len(out)} bytes, its frames declare {declared}"
        )
    return memoryview(out)


_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_BLOCK_MAX = 128 * 1024


def zstd_output_bounds(data: memoryview) -> tuple[int | None, int]:
    """Walk the zstandard frames of ``data`` without decompressing.

    Returns ``(declared, bound)``: the sum of the frames' declared content sizes
    (None if a frame declares none) and an upper bound of the output size, so a
    bomb is refused before any allocation.
    """
    pos, end = 0, len(data)
    declared: int | None = 0
    bound = 0
    while pos < end:
        if end - pos < 4:
            raise DecompressionError("zstandard data ends inside a frame magic")
        magic = int.from_bytes(data[pos : pos + 4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # skippable frame
            if end - pos < 8:
                raise DecompressionError("zstandard skippable frame is truncated")
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            raise DecompressionError(f"not a zstandard frame (magic {magic:#010x})")
        pos, size, frame_bound = _zstd_frame(data, pos + 4)
        bound += frame_bound if size is None else size
        declared = None if size is None or declared is None else declared + size
    if pos > end:
        raise DecompressionError("zstandard frame runs past the end of the block")
    return declared, bound


def _zstd_frame(data: memoryview, pos: int) -> tuple[int, int | None, int]:
    """Parse one frame after its magic: return (end, declared size, bound)."""
    end = len(data)
    if pos >= end:
        raise DecompressionError("zstandard frame header is truncated")
    descriptor = data[pos]
    pos += 1
    fcs_flag = descriptor >> 6
    single_segment = (descriptor >> 5) & 1
    has_checksum = (descriptor >> 2) & 1
    dict_id_size = (0, 1, 2, 4)[descriptor & 3]
    fcs_size = (single_segment, 2, 4, 8)[fcs_flag]
    pos += (0 if single_segment else 1) + dict_id_size
    if pos + fcs_size > end:
        raise DecompressionError("zstandard frame header is truncated")
    size = None
    if fcs_size:
        size = int.from_bytes(data[pos : pos + fcs_size], "little")
        if fcs_size == 2:
            size += 256
    pos += fcs_size
    bound = 0
    while True:
        if pos + 3 > end:
            raise DecompressionError("zstandard block header is truncated")
        header = int.from_bytes(data[pos : pos + 3], "little")
        pos += 3
        block_type = (header >> 1) & 3
        block_size = header >> 3
        if block_type == 3:
            raise DecompressionError("zstandard block has the reserved type")
        # An RLE block stores one byte that expands to block_size bytes.
        pos += 1 if block_type == 1 else block_size
        bound += block_size if block_type != 2 else _ZSTD_BLOCK_MAX
        if header & 1:
            break
    pos += 4 * has_checksum
    return pos, size, bound


def _too_large(name: str, max_size: int, size: int | None = None) -> str:
    claimed = "" if size is None else f" ({size} bytes)"
    return (
        f"{name} block decompresses to more than the limit of {max_size} bytes{claimed}; "
        "raise max_block_size if the file is trusted"
    )


CODECS: dict[str, Decompress] = {
    "null": _null,
    "deflate": _deflate,
    "snappy": _snappy,
    "zstandard": _zstandard,
    "bzip2": _bzip2,
    "xz": _xz,
}


def get_codec(name: str) -> Decompress:
    """The decompress function for a codec name from a file header."""
    try:
        return CODECS[name]
    except KeyError:
        known = ", ".join(sorted(CODECS))
        raise CodecError(f"unknown codec {name!r} (supported: {known})") from None
