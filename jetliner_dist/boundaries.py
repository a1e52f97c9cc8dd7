"""Where a split's blocks begin and end.

A split starts decoding at the first block whose preceding sync marker begins
in its range (DESIGN §3.1). The marker's 16 bytes may also occur by chance in
record data or header metadata, so a candidate counts only if a block frames
after it; and a split that reads past its end checks that the block there
frames, so a corrupt block at a boundary fails the read instead of vanishing
between two splits.
"""

from __future__ import annotations

from jetliner_dist.avro.header import SYNC_SIZE
from jetliner_dist.errors import (
    CorruptBlockError,
    JetlinerDistError,
    LimitExceededError,
    SyncMarkerError,
    TruncatedError,
)
from jetliner_dist.planning import AvroFile, Split
from jetliner_dist.sources import Buffer, ByteSource, request_size

# How far past its end a split reads at least to finish its last block, before
# it has seen a block to size that by (then: twice the largest block so far).
# Avro writers' blocks are mostly 16-64 KiB (fastavro, Java); a larger last
# block costs one more request.
MIN_TAIL = 256 * 1024


# How far a split scans for its first sync marker per request: local scans
# start at _SCAN_START and widen fourfold per request up to _SCAN_WINDOW.
_SCAN_START = 64 * 1024
_SCAN_WINDOW = 1024 * 1024


def find_split_start(
    source: ByteSource, split: Split, max_block_size: int
) -> tuple[int | None, tuple[int, Buffer] | None]:
    """:func:`_scan_first_block` for ``split``, sized for its source.

    A split scans no further than its own range plus a tail at first: tiny
    splits must not each read a whole scan window. Object stores scan one
    request's worth; local files start small (the first marker is usually
    within a block or two) and widen.
    """
    scan_size = min(request_size(source) or _SCAN_START, split.size + MIN_TAIL)
    return _scan_first_block(source, split.file, split.start, split.end, max_block_size, scan_size)


def find_first_block(
    source: ByteSource, file: AvroFile, start: int, end: int, max_block_size: int
) -> int | None:
    """The offset of the first block whose preceding sync marker begins in
    [start, end), or None when there is none (DESIGN §3.1).

    The 16 sync bytes can occur by chance inside record data or the header,
    so a candidate counts only if the block after it frames: sane count and
    size varints, and the sync marker again where that block ends.
    """
    return _scan_first_block(source, file, start, end, max_block_size, _SCAN_WINDOW)[0]


def _scan_first_block(
    source: ByteSource, file: AvroFile, start: int, end: int, max_block_size: int, scan_size: int
) -> tuple[int | None, tuple[int, Buffer] | None]:
    """:func:`find_first_block` reading ``scan_size`` bytes per request; also
    returns the window the first block was found in, as ``(offset, buffer)``
    (None if nothing was fetched), for the split's reader to start from."""
    if start <= file.header_end - SYNC_SIZE:
        return (file.header_end if file.header_end < file.size else None), None
    pos = start
    while pos < end:
        window_end = min(pos + scan_size, file.size)
        window = source.fetch(pos, window_end)
        found = _find(window, file.sync, 0)
        while found != -1 and pos + found < end:
            marker = pos + found
            if _frames_after(source, file, marker, window, pos, max_block_size):
                after = marker + SYNC_SIZE
                return (after if after < file.size else None), (pos, window)
            found = _find(window, file.sync, found + 1)
        if window_end >= file.size:
            return None, None
        pos = window_end - (SYNC_SIZE - 1)  # a marker may straddle two windows
        scan_size = max(scan_size, min(4 * scan_size, _SCAN_WINDOW))
    return None, None


# A window that is not ``bytes`` is searched a piece of this size at a time.
_FIND_PIECE = 1024 * 1024


def _find(window: Buffer, marker: bytes, start: int) -> int:
    """``window.find(marker, start)`` for any byte buffer. The first marker
    is usually within a block or two: a window of megabytes from an object
    store is searched a piece at a time, not copied whole into ``bytes``."""
    if isinstance(window, (bytes, bytearray)):  # bytearray: a local file's window
        return window.find(marker, start)
    view = memoryview(window)
    for at in range(start, len(view), _FIND_PIECE):
        found = bytes(view[at : at + _FIND_PIECE + len(marker) - 1]).find(marker)
        if found != -1:
            return at + found
    return -1


def _frames_after(source, file, marker, window, window_start, max_block_size) -> bool:
    """Whether the bytes after a candidate sync marker frame one block."""
    try:
        check_block(source, file, marker + SYNC_SIZE, window, window_start, max_block_size)
    except JetlinerDistError:
        return False
    return True


def check_block(
    source, file: AvroFile, block: int, window, window_start: int, max_block_size: int
) -> None:
    """Raise the typed error if the block at ``block`` does not frame: sane
    count and size, inside the file, ending in the sync marker. A block at the
    file's end (none) is fine. Reads only its header and its marker."""
    from jetliner_dist.avro.binary import read_long

    if block >= file.size:
        return
    where = dict(path=file.path, offset=block)
    head = _read_at(source, window, window_start, block, min(20, file.size - block))
    try:
        count, used = read_long(head, 0)
        size, used = read_long(head, used)
    except TruncatedError:
        raise TruncatedError("file ends inside a block header", **where) from None
    except JetlinerDistError:
        raise CorruptBlockError("block header has a varint longer than 10 bytes", **where) from None
    if count < 0 or size < 0:
        raise CorruptBlockError(f"block has a negative count or size ({count}, {size})", **where)
    if size > max_block_size:
        raise LimitExceededError(
            f"block claims {size} bytes, more than max_block_size ({max_block_size})", **where
        )
    tail = block + used + size
    if tail + SYNC_SIZE > file.size:
        raise TruncatedError("file ends inside a block", **where)
    if _read_at(source, window, window_start, tail, SYNC_SIZE) != file.sync:
        raise SyncMarkerError(
            "block does not end with the file's sync marker", path=file.path, offset=tail
        )


def _read_at(source, window: Buffer, window_start: int, offset: int, length: int) -> bytes:
    """Bytes [offset, offset + length) from the window when it has them."""
    local = offset - window_start
    if 0 <= local and local + length <= len(window):
        return bytes(window[local : local + length])
    return bytes(source.fetch(offset, offset + length))
