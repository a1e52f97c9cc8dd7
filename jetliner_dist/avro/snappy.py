"""Snappy blocks inflated and checksummed in one GIL-free call per window.

cramjam's snappy releases the GIL for each call, but Avro's snappy blocks are
small (16-64 KiB): a window holds hundreds, and two threads handing the GIL
back and forth for every block decompressed no faster than one. This kernel
decompresses all of a window's blocks and checks their CRC32 in one call
(``nogil``), so threads decompress in parallel.

The CRC32 is ISA-L's ``crc32_gzip_refl``, which python-isal's extension
exports, called by address (:func:`crc32_address`); without it, readers fall
back to the per-block path.

Safety: every read stays inside the block's compressed bytes and every write
inside the output buffer, which has ``SN_SLACK`` bytes past the last block:
fast paths copy whole 8-byte words and may write up to 7 bytes past a copy's
end, into the next block's space (filled later) or the slack. A malformed
block stops the call with its index and a reason.
"""

from __future__ import annotations

import functools

from numba import njit, types

from jetliner_dist.avro.memory import call_crc32, copy_bytes, load_i64, load_u8, store_i8, store_i64
from jetliner_dist.avro.opcodes import SN_CHECKSUM, SN_CORRUPT, SN_OK, SN_SHORT

_I64_1D = types.Array(types.int64, 1, "C")
_I64_2D = types.Array(types.int64, 2, "C")


@functools.cache
def crc32_address() -> int | None:
    """The address of ISA-L's ``crc32_gzip_refl(init, buffer, length)``, or None."""
    import ctypes

    from isal import isal_zlib

    try:
        return ctypes.cast(ctypes.CDLL(isal_zlib.__file__).crc32_gzip_refl, ctypes.c_void_p).value
    except (OSError, AttributeError, TypeError):  # no such library or symbol here
        return None


@njit(inline="always")
def _tag_length(ip, end, extra):
    """A little-endian length of ``extra`` (1-4) bytes at ``ip``, or -1 past ``end``."""
    if ip + extra > end:
        return -1
    value = 0
    for k in range(extra):
        value |= load_u8(ip + k) << (8 * k)
    return value


@njit(inline="always")
def _inflate(ip, end, op, out_start, out_end, limit):
    """Decode the snappy elements in [ip, end) to ``op``; the block's output
    is [out_start, out_end) and nothing is written at or past ``limit``.
    Returns the output's end, or -1 if the data is malformed."""
    while ip < end:
        tag = load_u8(ip)
        ip += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:  # the length follows the tag, in 1-4 bytes
                extra = length - 59
                length = _tag_length(ip, end, extra)
                if length < 0:
                    return -1
                ip += extra
            length += 1
            if ip + length > end or op + length > out_end:
                return -1
            if length <= 16 and ip + 16 <= end and op + 16 <= limit:
                store_i64(op, load_i64(ip))
                store_i64(op + 8, load_i64(ip + 8))
            else:
                copy_bytes(op, ip, length)
            ip += length
            op += length
            continue
        if kind == 1:
            if ip + 1 > end:
                return -1
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | load_u8(ip)
            ip += 1
        elif kind == 2:
            if ip + 2 > end:
                return -1
            length = (tag >> 2) + 1
            offset = load_u8(ip) | (load_u8(ip + 1) << 8)
            ip += 2
        else:
            if ip + 4 > end:
                return -1
            length = (tag >> 2) + 1
            offset = _tag_length(ip, end, 4)
            ip += 4
        if offset == 0 or offset > op - out_start or op + length > out_end:
            return -1
        source = op - offset
        if offset >= 8 and op + length + 8 <= limit:
            # Whole words: each reads bytes already written (offset >= 8).
            for k in range(0, length, 8):
                store_i64(op + k, load_i64(source + k))
        else:
            for k in range(length):
                store_i8(op + k, load_u8(source + k))
        op += length
    return op


@njit(
    types.void(types.int64, _I64_2D, _I64_1D, _I64_1D, types.int64, types.int64, types.int64,
               _I64_1D),
    nogil=True,
    cache=True,
)
def inflate_blocks(base, blocks, sizes, checksums, out, out_size, crc32, status):
    """Inflate snappy blocks side by side into ``out``.

    ``blocks`` rows are (count, payload start, payload size) relative to
    ``base`` (the payload is the raw snappy data and its 4-byte CRC32);
    ``sizes`` and ``checksums`` are each block's preamble size and stored
    CRC32 (see ``kernel.snappy_sizes``). Block ``i`` goes to
    ``out + sum(sizes[:i])``; ``out_size`` counts the slack. ``status`` gets
    (SN_OK, -1) or (an SN_* reason, the index of the first bad block).
    """
    status[0] = SN_OK
    status[1] = -1
    op = out
    limit = out + out_size
    for i in range(blocks.shape[0]):
        ip = base + blocks[i, 1]
        end = ip + blocks[i, 2] - 4
        # Skip the preamble (a varint; its value is sizes[i]).
        while ip < end and load_u8(ip) >= 0x80:
            ip += 1
        ip += 1
        block_end = op + sizes[i]
        reached = _inflate(ip, end, op, op, block_end, limit)
        if reached < 0:
            status[0] = SN_CORRUPT
        elif reached != block_end:
            status[0] = SN_SHORT
        elif call_crc32(crc32, 0, op, sizes[i]) != checksums[i]:
            status[0] = SN_CHECKSUM
        if status[0] != SN_OK:
            status[1] = i
            return
        op = block_end
