"""Avro binary primitives for the pure-Python paths (header, recursive values).

The hot loop has its own numba versions in :mod:`jetliner_dist.avro.kernel`.
"""

from __future__ import annotations

from jetliner_dist.errors import AvroFormatError, TruncatedError

MAX_VARINT_BYTES = 10


def read_long(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode one zig-zag varint at ``pos``; return ``(value, next_pos)``."""
    result = 0
    shift = 0
    end = len(buf)
    for i in range(MAX_VARINT_BYTES):
        if pos >= end:
            raise TruncatedError("data ends inside a varint", offset=pos)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> 64:
                raise AvroFormatError("varint overflows 64 bits", offset=pos - i - 1)
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise AvroFormatError("varint longer than 10 bytes", offset=pos - MAX_VARINT_BYTES)


def read_bytes(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    """Decode a length-prefixed byte string; return ``(value, next_pos)``."""
    length, pos = read_long(buf, pos)
    if length < 0:
        raise AvroFormatError(f"negative length {length}", offset=pos)
    end = pos + length
    if end > len(buf):
        raise TruncatedError(f"length {length} runs past the end of the data", offset=pos)
    return bytes(buf[pos:end]), end
