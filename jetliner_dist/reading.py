"""Read the blocks of one file's byte range into Arrow record batches.

This is the streaming decoder every engine runs: fetch a window of bytes, frame
the blocks in it, decompress them, let the kernel decode their records into a
batch, and yield the batch when it is full. Memory stays near one batch plus one
window (two for object stores, which fetch the next window ahead), whatever the
file's size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

import cramjam
from isal.isal_zlib import crc32

from jetliner_dist.avro import opcodes as oc
from jetliner_dist.avro.assemble import BatchBuilder
from jetliner_dist.avro.buffers import ScratchPool, byte_buffer
from jetliner_dist.avro.codecs import get_codec, snappy_size
from jetliner_dist.avro.header import SYNC_SIZE
from jetliner_dist.avro.program import Program
from jetliner_dist.boundaries import MIN_TAIL, check_block, find_split_start
from jetliner_dist.planning import AvroFile, ReadSpec, Split
from jetliner_dist.errors import (
    CorruptBlockError,
    DecodeError,
    DecompressionError,
    JetlinerDistError,
    LimitExceededError,
    SyncMarkerError,
    TruncatedError,
)
from jetliner_dist.readahead import ReadAhead
from jetliner_dist.sources import Buffer, ByteSource, request_size, source_for

DEFAULT_BATCH_ROWS = 65_536
# Reads that collect a whole table ask for batches this large; they end at
# window ends instead (see ReadOptions.window_batches).
COLLECT_BATCH_ROWS = 1 << 20
# In a run of small files (read_splits), a batch that collects a table ends at
# a window's end once it holds this many rows.
RUN_BATCH_ROWS = 65_536
DEFAULT_MAX_BLOCK_SIZE = 512 * 1024 * 1024
DEFAULT_WINDOW = 4 * 1024 * 1024
# Items of zero encoded size (nulls, empty records) one window may produce.
ZERO_SIZE_ITEM_LIMIT = 1 << 28
MAX_NESTING = 4096
# Framing table rows: more blocks than this in one window are framed in turns.
_FRAME_ROWS = 8192
# A block's bytes beside its payload: count and size varints, sync marker.
_BLOCK_OVERHEAD = 20 + SYNC_SIZE
# Read windows and decompressed blocks idle between splits, kept for the next
# split on any thread: see buffers.ScratchPool. (The small tables stay with
# Arrow's pool: where they land in memory shows in the decoder's speed.)
SCRATCH_BYTES_KEPT = 64 * 1024 * 1024
_SCRATCH = ScratchPool(SCRATCH_BYTES_KEPT)


def read_window(source: ByteSource) -> int:
    """Bytes read per window from ``source``: a request's worth from object
    stores, :data:`DEFAULT_WINDOW` from local files and memory."""
    return request_size(source) or DEFAULT_WINDOW


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Knobs of the streaming decoder (all have safe defaults)."""

    batch_rows: int = DEFAULT_BATCH_ROWS
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE
    window: int = DEFAULT_WINDOW
    # End a batch at the end of each window too (once it holds at least
    # window_batch_rows rows). Reads that collect a table want this: each
    # batch's buffers are then sized once, never grown.
    window_batches: bool = False
    window_batch_rows: int = 1


def read_blocks(
    source: ByteSource,
    file: AvroFile,
    program: Program,
    options: ReadOptions = ReadOptions(),
    *,
    start: int | None = None,
    stop: int | None = None,
    n_rows: int | None = None,
    first_block_index: int | None = 0,
    on_bytes: Callable[[int], None] | None = None,
    prefetched: tuple[int, Buffer] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Decode the blocks of ``file`` that start at ``start`` and whose preceding
    sync marker begins before ``stop`` (DESIGN §3.1), as record batches.

    ``start`` must be the offset of a block (the header's end, or just after a
    validated sync marker); ``first_block_index`` is that block's index in the
    file, for error messages (None when unknown: a split that starts mid-file
    knows its byte offsets exactly but not how many blocks precede it). Yields at least one batch (an empty one if no rows).
    ``on_bytes`` is called with the file bytes of each run of blocks decoded.
    ``prefetched`` is ``(offset, bytes)`` already fetched from the file (a
    split's scan for its first block): decoding starts from them.
    """
    reader = _BlockReader(source, file, program, options, n_rows, first_block_index, on_bytes)
    try:
        yield from reader.run(
            file.header_end if start is None else start, file.size if stop is None else stop,
            prefetched,
        )  # fmt: skip
    finally:
        reader.release()


class BlockWalk:
    """The blocks of one file's byte range, a window at a time (DESIGN §3.1):
    fetch a window, frame its blocks and hand out those the range owns. Both
    decoding (:func:`read_blocks`) and counting (``counting.count_split_rows``)
    walk blocks through it, so they agree on ownership, windows and errors.
    """

    def __init__(self, source, file: AvroFile, window: int, max_block_size: int,
                 first_block_index: int | None = 0,
                 on_bytes: Callable[[int], None] | None = None,
                 reuse: "BlockWalk | None" = None) -> None:  # fmt: skip
        """``reuse``: a finished walk whose working tables this one takes over."""
        from jetliner_dist.avro import kernel

        self.kernel = kernel
        self.source = source
        self.file = file
        self.window = window
        self.max_block_size = max_block_size
        # The file index of the next block handed out (None: unknown).
        self.block_index = first_block_index
        self.on_bytes = on_bytes
        # Sources that say how much to read per request are object stores.
        self.remote = request_size(source) is not None
        self.sync = np.frombuffer(file.sync, dtype=np.uint8)
        if reuse is not None:
            self.frame_table, self.frame_state = reuse.frame_table, reuse.frame_state
            self._window = reuse._window
            return
        # Working tables come from Arrow's pool (see buffers.py): a split is
        # short, and fresh zeroed pages per split cost more than its set-up.
        self.frame_table = _int64_table(_FRAME_ROWS, 3)
        self.frame_state = np.zeros(oc.FRAME_STATE_SIZE, dtype=np.int64)
        self._window = np.zeros(0, dtype=np.uint8)  # reused raw bytes

    def owned(self, pos: int, stop: int, prefetched: tuple[int, Buffer] | None = None,
              going: Callable[[], bool] = lambda: True):  # fmt: skip
        """Yield ``(raw, buf, blocks, starts)`` per window: the window's bytes
        (and as uint8), the framing-table rows of the blocks from ``pos`` on
        whose preceding sync marker begins before ``stop``, and every framed
        block's file offset. The window stays valid until the next item is
        asked for. Stops early once ``going()`` is false; otherwise checks
        that the block after the range frames."""
        size = self.file.size
        window = self.window
        tail = MIN_TAIL
        raw, buf, buf_start = b"", np.zeros(0, dtype=np.uint8), pos
        if prefetched is not None and prefetched[0] <= pos < prefetched[0] + len(prefetched[1]):
            buf_start, raw = prefetched  # bytes the caller has: not fetched again
            buf = np.frombuffer(raw, dtype=np.uint8)
        # Object stores: the next window is fetched while this one is used.
        ahead = ReadAhead(self.source.fetch, window, stop) if self.remote else None
        if ahead is not None and len(raw):
            ahead.ahead(buf_start + len(raw), min(size, stop + tail))
        while pos < size and pos - SYNC_SIZE < stop and going():
            offset = pos - buf_start
            count = self.kernel.frame_blocks(
                buf, offset, self.sync, self.max_block_size, self.frame_table, self.frame_state
            )
            blocks = self.frame_table[:count]
            if count:
                tail = max(tail, 2 * (int(blocks[:, 2].max()) + _BLOCK_OVERHEAD))
            starts = _block_starts(blocks, offset) + buf_start
            owned = int(np.searchsorted(starts - SYNC_SIZE, stop, side="left"))
            if owned:
                yield raw, buf, blocks[:owned], starts
                last = blocks[owned - 1]
                after = buf_start + int(last[1] + last[2]) + SYNC_SIZE
                if self.on_bytes is not None:
                    self.on_bytes(after - pos)
                pos = after
                if self.block_index is not None:
                    self.block_index += owned
                continue
            if count:
                break  # the next block belongs to the next split
            status = int(self.frame_state[oc.FR_STATUS])
            if status not in (oc.FR_OK, oc.FR_MORE):
                raise framing_error(
                    status, self.frame_state, self.file.path, self.block_index, pos, buf_start,
                    self.max_block_size,
                )  # fmt: skip
            # The window is used up, or ends inside the next block: read on.
            if status == oc.FR_MORE and buf_start + len(buf) >= size:
                raise TruncatedError(
                    "file ends inside a block",
                    path=self.file.path, block=self.block_index, offset=pos,
                )  # fmt: skip
            needed = int(self.frame_state[oc.FR_NEEDED])
            if status == oc.FR_MORE and offset == 0:
                window = max(window * 2, needed)
            else:
                window = max(self.window, needed)
            end = pos + window
            if needed or status != oc.FR_MORE:
                # Past ``stop`` only the split's last block is wanted: read a
                # tail beyond ``stop`` (twice the largest block so far), not a
                # whole window. Object stores then fetch a small split in one
                # request and waste no bytes on the next split's blocks.
                end = min(end, max(stop + tail, pos + needed))
            if ahead is not None:
                raw = ahead.window(pos, min(end, size), raw, buf_start, min(size, stop + tail))
            else:
                raw = self._fetch(pos, min(end, size))
            buf = np.frombuffer(raw, dtype=np.uint8)
            buf_start = pos
        if going() and stop <= pos - SYNC_SIZE < size - SYNC_SIZE:
            # The next split owns the block at ``pos``; check that it frames.
            # Otherwise that split's scan would reject the sync marker before
            # it as a false match, and a corrupt block at the boundary would
            # vanish between the two splits instead of failing the read.
            check_block(self.source, self.file, pos, raw, buf_start, self.max_block_size)

    def _fetch(self, start: int, end: int):
        """Bytes [start, end), in a reused window buffer when the source allows.

        Reuse is safe: a window is used up before the next one is fetched.
        """
        readinto = getattr(self.source, "readinto", None)
        if readinto is None:
            return self.source.fetch(start, end)
        self._window = _at_least(self._window, end - start)
        return self._window[: readinto(start, self._window[: end - start])]

    def release(self) -> None:
        """Hand the walk's working buffers to the next split; the walk is done."""
        _SCRATCH.give(self._window)
        self._window = np.zeros(0, dtype=np.uint8)


class _BlockReader:
    def __init__(self, source, file, program, options, n_rows, first_block_index, on_bytes):
        # numba loads on the first decode, not at import
        from jetliner_dist.avro import kernel, snappy

        self.kernel = kernel
        self.snappy = snappy
        self.program = program
        self.rows_left = n_rows
        self.walk: BlockWalk | None = None
        self.retarget(source, file, options, first_block_index, on_bytes)
        batch_rows = options.batch_rows if n_rows is None else max(1, min(options.batch_rows, n_rows))
        self.builder = BatchBuilder(program, batch_rows)
        self.state = np.zeros(oc.STATE_SIZE, dtype=np.int64)
        self.stack = _int64_table(MAX_NESTING, oc.FRAME_SIZE)  # written before read
        self.limits = np.zeros(oc.LIMITS_SIZE, dtype=np.int64)
        self.limits[oc.L_ZERO_SIZE_ITEMS] = ZERO_SIZE_ITEM_LIMIT
        self.limits[oc.L_RECORD_MIN_BYTES] = program.record_min_bytes
        self.inflate_params = np.zeros(oc.INFLATE_PARAMS_SIZE, dtype=np.int64)
        self._inflated = np.zeros(0, dtype=np.uint8)  # reused decompressed bytes

    def retarget(self, source, file, options, first_block_index, on_bytes) -> None:
        """Set the file whose blocks to decode: at the start, and to go on with
        another file keeping the batch being built, the decoder's buffers and
        the row limit (a run of small files)."""
        self.source, self.file, self.options = source, file, options
        self.codec = get_codec(file.codec)
        self.walk = BlockWalk(
            source, file, options.window, options.max_block_size, first_block_index, on_bytes,
            reuse=self.walk,
        )  # fmt: skip

    def release(self) -> None:
        """Hand the decoder's working buffers to the next split; the reader is done."""
        _SCRATCH.give(self._inflated)
        self._inflated = np.zeros(0, dtype=np.uint8)
        if self.walk is not None:
            self.walk.release()

    def run(self, pos: int, stop: int, prefetched=None, last: bool = True) -> Iterator[pa.RecordBatch]:
        """Decode the blocks from ``pos`` up to ``stop``; unless ``last``, the
        batch being built stays open for the next file's rows."""
        yielded = False
        windows = self.walk.owned(pos, stop, prefetched, going=lambda: self.rows_left != 0)
        for raw, buf, blocks, starts in windows:
            for batch in self._decode(raw, buf, blocks, starts):
                yielded = True
                yield batch
        if last and (self.builder.rows or not yielded):
            yield self._finish()

    def _finish(self) -> pa.RecordBatch:
        """The builder's batch; errors of its last steps (recursive values
        rendered as JSON) name the file."""
        try:
            return self.builder.finish()
        except JetlinerDistError as exc:
            raise exc.with_context(path=self.file.path) from None

    def _decode(self, raw, buf: np.ndarray, blocks: np.ndarray, starts: np.ndarray):
        """Decompress ``blocks`` (rows of the framing table) and decode them.

        ``starts`` holds each block's file offset, for error messages.
        """
        table, inflating, keep = self._payloads(raw, buf, blocks, starts)
        state = self.state
        state[:] = 0
        state[oc.S_INFLATED] = -1
        builder = self.builder
        k = self.kernel
        p = self.program
        # Records left in the window from each block on: what a call can decode.
        left = np.cumsum(table[::-1, 2])[::-1]
        while int(state[oc.S_BLOCK]) < len(table) and self.rows_left != 0:
            room = builder.batch_rows - builder.rows
            if self.rows_left is not None:
                room = min(room, self.rows_left)
            block = int(state[oc.S_BLOCK])
            wanted = min(room, int(left[block]) - int(state[oc.S_RECORD]))
            builder.reserve(wanted)
            state[oc.S_ROW_BASE] = builder.rows
            builder.save()
            resume = state[oc.S_BLOCK : oc.S_POS + 1].copy()
            status = k.decode_blocks(
                table, p.instructions, p.sequences, p.root, p.unions, p.entries, p.fills,
                p.kinds, p.widths, builder.addrs, builder.caps, builder.lens, builder.dlens,
                builder.nulls, self.limits, self.stack, room, state, inflating,
                self.inflate_params,
            )  # fmt: skip
            if status == oc.ST_NEED_SPACE:
                # Grow from what the failed call filled, then roll back to its start.
                builder.make_room(
                    int(state[oc.S_COLUMN]), int(state[oc.S_WHICH]), int(state[oc.S_NEEDED]),
                    int(state[oc.S_ROWS]), wanted, self.options.max_block_size,
                )
                builder.restore()
                state[oc.S_BLOCK : oc.S_POS + 1] = resume
                continue
            rows = int(state[oc.S_ROWS])
            builder.add_rows(rows)
            if self.rows_left is not None:
                self.rows_left -= rows
            if status != oc.ST_OK:
                raise self._decode_error(status, starts)
            if builder.rows >= builder.batch_rows:
                yield self._finish()
        if self.options.window_batches and builder.rows >= max(1, self.options.window_batch_rows):
            yield self._finish()  # sized for this window: no growth, no copy
        del keep  # payload buffers live until their records are decoded

    def _block(self, i: int) -> int | None:
        """The file index of the window's block ``i``, if known."""
        index = self.walk.block_index
        return None if index is None else index + i

    def _payloads(self, raw, buf: np.ndarray, blocks: np.ndarray, starts: np.ndarray):
        """Rows of (address, length, count) for the kernel, the snappy blocks
        it is to inflate itself (rows of ``oc.IN_*``; none when the payloads
        are at hand), and the buffers behind them."""
        table = np.empty((len(blocks), 3), dtype=np.int64)
        table[:, 2] = blocks[:, 0]
        none = np.empty((0, 3), dtype=np.int64)
        if self.file.codec == "null":
            table[:, 0] = buf.ctypes.data + blocks[:, 1]
            table[:, 1] = blocks[:, 2]
            return table, none, raw
        limit = self.options.max_block_size
        try:
            if self.file.codec == "snappy":
                return table, self._snappy_payloads(buf, blocks, table, limit), self._inflated
            view = memoryview(raw)
            keep = []
            for block, (_, start, size) in enumerate(blocks.tolist()):
                try:
                    out = self.codec(view[start : start + size], limit)
                except JetlinerDistError as exc:
                    raise _Blame(block, exc) from None
                payload = np.frombuffer(out, np.uint8)
                keep.append(payload)
                table[block, 0] = payload.ctypes.data
                table[block, 1] = len(payload)
            return table, none, keep
        except _Blame as blame:
            raise blame.error.with_context(
                path=self.file.path,
                block=self._block(blame.block),
                offset=int(starts[blame.block]),
            ) from None

    def _snappy_payloads(self, buf: np.ndarray, blocks: np.ndarray, table, limit: int):
        """Prepare snappy blocks for the kernel: the rows of the blocks it is
        to inflate itself, one at a time into a scratch buffer just before
        decoding each (no rows if they were inflated here, block by block,
        where ISA-L's CRC32 cannot be called from compiled code).

        Sizes and checksums are read for all blocks in one kernel call, so
        oversized blocks are refused before anything is inflated.
        """
        count = len(blocks)
        sizes = np.empty(count, dtype=np.int64)
        checksums = np.empty(count, dtype=np.int64)
        bad = self.kernel.snappy_sizes(buf, blocks, sizes, checksums)
        if bad >= 0:
            _, start, size = blocks[bad]
            try:
                snappy_size(memoryview(buf)[start : start + size], limit)  # says why
            except JetlinerDistError as exc:
                raise _Blame(bad, exc) from None
            raise _Blame(bad, DecompressionError("snappy block preamble is corrupt"))
        too_large = np.flatnonzero(sizes > limit)
        if len(too_large):
            raise _Blame(int(too_large[0]), LimitExceededError(
                f"snappy block decompresses to {int(sizes[too_large[0]])} bytes, more than "
                f"max_block_size ({limit}); raise it if the file is trusted"
            ))  # fmt: skip
        table[:, 1] = sizes
        crc32_function = self.snappy.crc32_address()
        if crc32_function is not None:  # the kernel inflates each block as it decodes it
            self._inflated = scratch = _at_least(self._inflated, int(sizes.max()) + oc.SN_SLACK)
            table[:, 0] = scratch.ctypes.data
            inflating = np.empty((count, 3), dtype=np.int64)
            inflating[:, oc.IN_ADDRESS] = buf.ctypes.data + blocks[:, 1]
            inflating[:, oc.IN_SIZE] = blocks[:, 2]
            inflating[:, oc.IN_CHECKSUM] = checksums
            params = self.inflate_params
            params[oc.P_SCRATCH] = scratch.ctypes.data
            params[oc.P_SCRATCH_SIZE] = len(scratch)
            params[oc.P_CRC32] = crc32_function
            return inflating
        ends = np.cumsum(sizes)
        self._inflated = out = _at_least(self._inflated, int(ends[-1]))
        table[:, 0] = out.ctypes.data + ends - sizes
        view = memoryview(buf)
        first = 0
        for block, (start, size, last, checksum) in enumerate(
            zip(blocks[:, 1].tolist(), blocks[:, 2].tolist(), ends.tolist(), checksums.tolist())
        ):
            target = out[first:last]
            try:
                written = cramjam.snappy.decompress_raw_into(view[start : start + size - 4], target)
            except Exception as exc:  # cramjam's own error type
                raise _Blame(block, DecompressionError(f"snappy data is corrupt: {exc}")) from None
            if written != last - first:
                raise _Blame(block, DecompressionError(_SNAPPY_ERRORS[oc.SN_SHORT]))
            if crc32(target) != checksum:
                raise _Blame(block, DecompressionError(_SNAPPY_ERRORS[oc.SN_CHECKSUM]))
            first = last
        return np.empty((0, 3), dtype=np.int64)

    def _decode_error(self, status: int, starts: np.ndarray) -> JetlinerDistError:
        state = self.state
        i = int(state[oc.S_BLOCK])
        if status == oc.ST_SNAPPY:  # the block's data, not a record in it
            return DecompressionError(
                _SNAPPY_ERRORS[int(state[oc.S_COLUMN])],
                path=self.file.path, block=self._block(i), offset=int(starts[i]),
            )  # fmt: skip
        message, cls = _DECODE_ERRORS.get(status, ("invalid record data", DecodeError))
        return cls(
            message.format(detail=int(state[oc.S_COLUMN])),
            path=self.file.path,
            block=self._block(i),
            offset=int(starts[i]),
            record=int(state[oc.S_RECORD]),
        )


def framing_error(
    status: int, state: np.ndarray, path: str, block: int, pos: int, buf_start: int,
    max_block_size: int,
) -> JetlinerDistError:  # fmt: skip
    """The typed error for a frame_blocks failure at file offset ``pos``."""
    detail = int(state[oc.FR_DETAIL])
    where = dict(path=path, block=block, offset=pos)
    if status == oc.FR_SYNC:
        where["offset"] = buf_start + int(state[oc.FR_POS])
        return SyncMarkerError("block does not end with the file's sync marker", **where)
    if status == oc.FR_NEGATIVE_COUNT:
        return CorruptBlockError(f"block has a negative record count ({detail})", **where)
    if status == oc.FR_NEGATIVE_SIZE:
        return CorruptBlockError(f"block has a negative byte size ({detail})", **where)
    if status == oc.FR_TOO_LARGE:
        return LimitExceededError(
            f"block claims {detail} bytes, more than max_block_size "
            f"({max_block_size}); raise it if the file is trusted",
            **where,
        )
    return CorruptBlockError("block header has a varint longer than 10 bytes", **where)


_SNAPPY_ERRORS = {
    oc.SN_CORRUPT: "snappy data is corrupt",
    oc.SN_SHORT: "snappy data decompressed to fewer bytes than its preamble says",
    oc.SN_CHECKSUM: "snappy block checksum (CRC32) does not match its data",
}

_DECODE_ERRORS = {
    oc.ST_TRUNCATED: ("a value runs past the end of its block", DecodeError),
    oc.ST_VARINT: ("a varint is longer than 10 bytes", DecodeError),
    oc.ST_NEGATIVE_LENGTH: ("negative length {detail}", DecodeError),
    oc.ST_UNION_INDEX: ("union branch index {detail} is out of range", DecodeError),
    oc.ST_ENUM_INDEX: ("enum symbol index {detail} is out of range", DecodeError),
    oc.ST_UTF8: ("a string is not valid UTF-8", DecodeError),
    oc.ST_INT_RANGE: ("int value {detail} does not fit in 32 bits", DecodeError),
    oc.ST_BLOCK_END: ("records end {detail} bytes before the end of their block", CorruptBlockError),
    oc.ST_COUNT: ("count {detail} cannot fit in the bytes that remain", CorruptBlockError),
    oc.ST_DEPTH: (f"values nest more than {MAX_NESTING} levels deep", LimitExceededError),
    oc.ST_DECIMAL: ("a decimal value does not fit its Arrow type", DecodeError),
}


def _block_starts(blocks: np.ndarray, first: int) -> np.ndarray:
    """Buffer offsets where each framed block begins (blocks are contiguous)."""
    starts = np.empty(len(blocks), dtype=np.int64)
    if len(blocks):
        starts[0] = first
        starts[1:] = blocks[:-1, 1] + blocks[:-1, 2] + SYNC_SIZE
    return starts


def _int64_table(rows: int, columns: int) -> np.ndarray:
    """An uninitialised int64 table from Arrow's pool."""
    return byte_buffer(rows * columns * 8).view(np.int64).reshape(rows, columns)


def _at_least(buffer: np.ndarray, size: int) -> np.ndarray:
    """``buffer`` if it holds ``size`` bytes, else a larger one (grown by
    half); the caller no longer needs the contents of the one it had."""
    if len(buffer) >= size:
        return buffer
    _SCRATCH.give(buffer)
    return _SCRATCH.take(max(size, len(buffer) * 3 // 2))


class _Blame(Exception):
    """Carries a context-free error and the index of the block it belongs to."""

    def __init__(self, block: int, error: JetlinerDistError) -> None:
        super().__init__(block, error)
        self.block = block
        self.error = error


def read_split(
    split: Split,
    spec: ReadSpec,
    *,
    source: ByteSource | None = None,
    n_rows: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Decode one split: the worker-side entry point of every engine.

    Finds the split's first block (a validated sync marker at or after
    ``split.start``), decodes the blocks it owns and yields batches of the
    plan's schema; a split that owns no block yields one empty batch.
    ``source`` overrides opening ``split.file.path`` (in-memory sources).
    """
    file = split.file
    start = _SplitStart.find(split, spec, source)
    program = spec.program()
    if start.first is None:
        batches = read_blocks(start.source, file, program, start.options, start=file.size,
                              stop=split.end)  # fmt: skip
    else:
        batches = read_blocks(
            start.source, file, program, start.options, start=start.first, stop=split.end,
            n_rows=n_rows, first_block_index=start.block_index, on_bytes=on_bytes,
            prefetched=start.prefetched,
        )  # fmt: skip
    for batch in batches:
        yield with_file_path(batch, spec, file.path)


def read_splits(
    splits: Sequence[Split],
    spec: ReadSpec,
    *,
    sources: Mapping[str, ByteSource] | None = None,
    n_rows: int | None = None,
    on_bytes: Sequence[Callable[[int], None] | None] | None = None,
    on_batch_splits: Callable[[list[tuple[int, int]]], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Decode a run of splits (small files) into shared batches.

    The same rows as :func:`read_split` on each split in turn, but one decoder
    goes from file to file and a batch ends only when full or at the run's
    end, so a small file costs its decoding, not a decoder and a batch of its
    own. With ``include_file_paths``, each row carries its own file's path.
    ``sources`` overrides opening paths (in-memory sources); ``on_bytes``
    holds each split's progress callback; ``on_batch_splits`` is told, before
    each batch is yielded, which splits its rows come from, as
    ``[(position in splits, rows), ...]``.
    """
    sources = sources or {}
    paths = _RowPaths(spec)
    if len(splits) == 1:
        for batch in read_split(splits[0], spec, source=sources.get(splits[0].file.path),
                                n_rows=n_rows, on_bytes=on_bytes[0] if on_bytes else None):  # fmt: skip
            if on_batch_splits is not None:
                on_batch_splits([(0, batch.num_rows)])
            yield batch
        return
    program = spec.program()
    reader: _BlockReader | None = None
    yielded = False
    try:
        for i, split in enumerate(splits):
            start = _SplitStart.find(split, spec, sources.get(split.file.path))
            if start.first is None:
                continue
            # Rows of small files gather in one batch; files of many rows
            # still end their batch with their window, so buffers are not regrown.
            options = dataclasses.replace(start.options, window_batch_rows=RUN_BATCH_ROWS)
            callback = on_bytes[i] if on_bytes else None
            if reader is None:
                reader = _BlockReader(start.source, split.file, program, options, n_rows,
                                      start.block_index, callback)  # fmt: skip
            else:
                reader.retarget(start.source, split.file, options, start.block_index, callback)
            paths.start(i, split.file.path, reader.builder.rows)
            for batch in reader.run(start.first, split.end, start.prefetched, last=False):
                yielded = True
                yield paths.attach(batch, on_batch_splits)
            if reader.rows_left == 0:
                break
        if reader is not None and (reader.builder.rows or not yielded):
            yield paths.attach(reader._finish(), on_batch_splits)
        elif reader is None:
            if on_batch_splits is not None:
                on_batch_splits([])
            yield pa.RecordBatch.from_pylist([], schema=output_schema(spec))
    finally:
        if reader is not None:
            reader.release()


@dataclass(frozen=True, slots=True)
class _SplitStart:
    """Where a split's decoding starts: its source, read options and first
    block (None if it owns none), and the bytes its scan fetched."""

    source: ByteSource
    options: ReadOptions
    first: int | None
    block_index: int | None
    prefetched: tuple[int, Buffer] | None

    @classmethod
    def find(cls, split: Split, spec: ReadSpec, source: ByteSource | None) -> "_SplitStart":
        file = split.file
        if source is None:  # the version makes a read of a changed object fail
            source = source_for(file.path, file.size, spec.storage_options, file.version)
        # Sources with a read_size (object stores, where each request costs a
        # round trip) read in windows of that size, scan for the first block
        # with one such window (up to just past the split's end) and decode
        # from the scanned bytes: a small split costs one request. Local files
        # scan from 64 KiB (widening) and decode from their reused window buffer.
        read_size = request_size(source)
        options = ReadOptions(
            batch_rows=spec.batch_rows,
            max_block_size=spec.max_block_size,
            window=read_window(source),
            window_batches=spec.batch_rows >= COLLECT_BATCH_ROWS,
        )
        first, scanned = find_split_start(source, split, options.max_block_size)
        index = 0 if first == file.header_end else None
        return cls(source, options, first, index, scanned if read_size else None)


class _RowPaths:
    """Which split (and file path) each row of the batch being built comes
    from, as runs of rows."""

    def __init__(self, spec: ReadSpec) -> None:
        self.spec = spec
        self.runs: list[tuple[int, str, int]] = []  # (split, path, first row in the batch)

    def start(self, split: int, path: str, row: int) -> None:
        """Rows from ``row`` on come from split number ``split``, of file ``path``."""
        if self.runs and self.runs[-1][2] == row:
            self.runs[-1] = (split, path, row)
        else:
            self.runs.append((split, path, row))

    def attach(self, batch: pa.RecordBatch, on_batch_splits=None) -> pa.RecordBatch:
        """``batch`` with its path column (and its runs told to
        ``on_batch_splits``); the next batch goes on with the last file."""
        runs, self.runs = self.runs, [(*self.runs[-1][:2], 0)]
        ends = [row for *_, row in runs[1:]] + [batch.num_rows]
        if on_batch_splits is not None:
            on_batch_splits([(split, end - row) for (split, _, row), end in zip(runs, ends)])
        if len(runs) == 1 or not self.spec.include_file_paths:
            return with_file_path(batch, self.spec, runs[-1][1])
        kind = _path_type(self.spec)
        column = pa.concat_arrays([
            pa.repeat(pa.scalar(path, kind), end - row) for (_, path, row), end in zip(runs, ends)
        ])  # fmt: skip
        return _with_path_column(batch, self.spec, column)


def output_schema(spec: ReadSpec) -> pa.Schema:
    """The Arrow schema of the batches :func:`read_split` yields."""
    schema = spec.program().arrow_schema
    if spec.include_file_paths:
        schema = schema.append(pa.field(spec.include_file_paths, _path_type(spec), False))
    return schema


def with_file_path(batch: pa.RecordBatch, spec: ReadSpec, path: str) -> pa.RecordBatch:
    """``batch`` with the file path column, if the spec asks for one."""
    if not spec.include_file_paths:
        return batch
    return _with_path_column(batch, spec, pa.repeat(pa.scalar(path, _path_type(spec)), batch.num_rows))


def _with_path_column(batch: pa.RecordBatch, spec: ReadSpec, column: pa.Array) -> pa.RecordBatch:
    if batch.num_columns == 0:
        return pa.RecordBatch.from_arrays([column], schema=output_schema(spec))
    return batch.append_column(pa.field(spec.include_file_paths, column.type, False), column)


def _path_type(spec: ReadSpec) -> pa.DataType:
    return pa.string_view() if spec.views else pa.large_string()
