"""Counting a split's rows from block headers alone: no decompression, no decoding."""

from __future__ import annotations

import functools

import numpy as np

from jetliner_dist.avro import opcodes as oc
from jetliner_dist.boundaries import check_block, find_split_start
from jetliner_dist.errors import SourceError, TruncatedError
from jetliner_dist.planning import Split
from jetliner_dist.reading import (
    DEFAULT_MAX_BLOCK_SIZE,
    BlockWalk,
    framing_error,
    read_window,
)
from jetliner_dist.sources import ByteSource


def count_split_rows(source: ByteSource, split: Split) -> int:
    """Rows in the blocks ``split`` owns, from block headers alone: payloads
    are neither fetched, decompressed nor decoded.

    Local files are walked with one positioned read of a few dozen bytes per
    block, on any thread (the walk releases the GIL). Other sources fetch the
    split's bytes in windows and frame them.
    """
    file = split.file
    pread = _libc_pread()
    descriptor = getattr(source, "descriptor", None)
    if pread is None or descriptor is None:
        return _count_windows(source, split)
    first, _ = find_split_start(source, split, DEFAULT_MAX_BLOCK_SIZE)
    if first is None:
        return 0
    from jetliner_dist.avro import kernel

    state = np.zeros(oc.FRAME_STATE_SIZE, dtype=np.int64)
    sync = np.frombuffer(file.sync, dtype=np.uint8)
    with descriptor() as fd:
        rows = kernel.walk_blocks(
            pread, fd, first, split.end, file.size, sync, DEFAULT_MAX_BLOCK_SIZE, state
        )
    pos = int(state[oc.FR_POS])
    block = 0 if first == file.header_end else None
    status = int(state[oc.FR_STATUS])
    if status == oc.FR_READ:
        raise SourceError(f"cannot read {file.path!r}", path=file.path, offset=pos)
    if status == oc.FR_MORE:
        raise TruncatedError("file ends inside a block", path=file.path, block=block, offset=pos)
    if status != oc.FR_OK:
        raise framing_error(status, state, file.path, block, pos, 0, DEFAULT_MAX_BLOCK_SIZE)
    if pos < file.size:  # as read_blocks does: the next split's first block must frame
        check_block(source, file, pos, b"", pos, DEFAULT_MAX_BLOCK_SIZE)
    return int(rows)


@functools.cache
def _libc_pread() -> int | None:
    """The address of the C library's ``pread``, where there is one."""
    import ctypes

    try:
        return ctypes.cast(ctypes.CDLL(None).pread, ctypes.c_void_p).value
    except (OSError, AttributeError, TypeError):  # no such library or symbol here
        return None


def _count_windows(source: ByteSource, split: Split) -> int:
    """:func:`count_split_rows` for sources without a file descriptor."""
    first, scanned = find_split_start(source, split, DEFAULT_MAX_BLOCK_SIZE)
    if first is None:
        return 0
    walk = BlockWalk(
        source, split.file, read_window(source),
        DEFAULT_MAX_BLOCK_SIZE, 0 if first == split.file.header_end else None,
    )  # fmt: skip
    try:
        return sum(int(blocks[:, 0].sum()) for _, _, blocks, _ in walk.owned(first, split.end, scanned))
    finally:
        walk.release()
