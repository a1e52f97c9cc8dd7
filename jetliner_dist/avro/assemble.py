"""Column buffers the kernel writes into, and their assembly into Arrow.

A :class:`BatchBuilder` owns one batch's worth of buffers (numpy arrays whose
addresses go to the kernel). Before each kernel call the reader reserves room
for the rows that call will decode (block headers tell how many), sized by
per-row figures learnt from earlier batches of the same program; if the kernel
still runs out of space, the buffers grow and the call is retried. Full
batches go to Arrow without copying.
"""

from __future__ import annotations

import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jetliner_dist.avro import opcodes as oc
from jetliner_dist.avro.buffers import byte_buffer
from jetliner_dist.avro.datum import to_json_text
from jetliner_dist.avro.program import ColumnSpec, Program
from jetliner_dist.errors import DecodeError, LimitExceededError

# Headroom over the learnt per-row sizes.
_HEADROOM = 1.15
# Growth factor when a buffer must grow inside a batch (amortizes copies).
_GROWTH = 1.5
_MIN_SLOTS = 16
_MIN_DATA = 256
SLACK = 16
_DATA_KINDS = (oc.K_VAR, oc.K_VIEW)
_VIEW_DATA_MAX = 2**31 - 1


class SizeHints:
    """Slots and data bytes per row of each column of one program.

    Shared by every builder of the program (all splits, all threads): a new
    split starts with what earlier batches learnt. Updates swap whole arrays,
    so concurrent readers see one version or the other.
    """

    def __init__(self, columns: int) -> None:
        self.slots_per_row = np.ones(columns)
        self.data_per_row = np.full(columns, 16.0)

    def learn(self, lens: np.ndarray, dlens: np.ndarray, rows: int) -> None:
        self.slots_per_row = np.maximum(lens / rows, 1.0 / rows)
        self.data_per_row = np.maximum(dlens / rows, 1.0 / rows)


_HINTS: "weakref.WeakKeyDictionary[Program, SizeHints]" = weakref.WeakKeyDictionary()


def _hints_for(program: Program) -> SizeHints:
    hints = _HINTS.get(program)
    if hints is None:
        hints = _HINTS.setdefault(program, SizeHints(len(program.columns)))
    return hints


class BatchBuilder:
    """Buffers for one batch of rows of one program."""

    def __init__(self, program: Program, batch_rows: int) -> None:
        self.program = program
        self.batch_rows = batch_rows
        self.hints = _hints_for(program)
        n = len(program.columns)
        self.addrs = np.zeros((n, 3), dtype=np.int64)
        self.caps = np.zeros((n, 3), dtype=np.int64)
        self.lens = np.zeros(n, dtype=np.int64)
        self.dlens = np.zeros(n, dtype=np.int64)
        self.nulls = np.zeros(n, dtype=np.int64)
        self.rows = 0
        self._buffers: list[list[np.ndarray | None]] = [[None, None, None] for _ in range(n)]
        self._saved = (self.lens.copy(), self.dlens.copy(), self.nulls.copy())

    # -- the kernel's side ---------------------------------------------------

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` more rows, by the learnt per-row sizes.

        Aligned columns get a slot for every row (and at least a few): the
        kernel writes them by row number without checking their capacity.
        """
        hints = self.hints
        slots = self.lens + np.ceil(hints.slots_per_row * (rows * _HEADROOM)).astype(np.int64)
        slots[self.program.aligned] = self.rows + rows
        data = self.dlens + np.ceil(hints.data_per_row * (rows * _HEADROOM)).astype(np.int64)
        self._grow_to(np.maximum(slots, _MIN_SLOTS), np.maximum(data, _MIN_DATA))

    def add_rows(self, rows: int) -> None:
        """Count ``rows`` decoded rows; aligned columns' lengths follow the rows."""
        self.rows += rows
        self.lens[self.program.aligned] = self.rows

    def save(self) -> None:
        """Remember lengths before a kernel call (restored if it runs out of space)."""
        np.copyto(self._saved[0], self.lens)
        np.copyto(self._saved[1], self.dlens)
        np.copyto(self._saved[2], self.nulls)

    def restore(self) -> None:
        np.copyto(self.lens, self._saved[0])
        np.copyto(self.dlens, self._saved[1])
        np.copyto(self.nulls, self._saved[2])

    def make_room(
        self, column: int, which: int, needed: int, rows_done: int, rows_wanted: int, limit: int
    ) -> None:
        """Grow buffers after the kernel ran out of space, before :meth:`restore`.

        The failed call decoded ``rows_done`` of the ``rows_wanted`` rows asked
        of it; every column is projected from what it took for those, so the
        columns that fill up together (the items of several lists) grow
        together and one retry usually suffices. ``column`` gets at least
        ``needed`` slots or data bytes (``which``); data beyond ``limit`` means
        a corrupt or hostile file.
        """
        if which == oc.BUF_DATA and needed > limit:
            raise LimitExceededError(
                f"a batch needs more than {limit} bytes for one column; "
                "lower batch_rows or raise max_block_size"
            )
        base_slots, base_data = self._saved[0], self._saved[1]
        scale = rows_wanted / max(rows_done, 1) * _HEADROOM
        slots = base_slots + ((self.lens - base_slots) * scale).astype(np.int64)
        data = base_data + ((self.dlens - base_data) * scale).astype(np.int64)
        floor = max(needed, int(self.caps[column, which] * _GROWTH))
        if which == oc.BUF_DATA:
            data[column] = max(data[column], floor)
        else:
            slots[column] = max(slots[column], floor)
        self._grow_to(slots, data)

    # -- the caller's side ---------------------------------------------------

    def finish(self) -> pa.RecordBatch:
        """Turn the filled buffers into a RecordBatch and start a fresh batch."""
        self.reserve(0)  # an empty batch still needs (small) buffers
        rows = self.rows
        arrays = [self._array(c) for _, c in self.program.outputs]
        if arrays:
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.program.arrow_schema)
        else:  # a record with no fields still has rows
            empty = pa.Array.from_buffers(pa.struct([]), rows, [None], children=[])
            batch = pa.RecordBatch.from_struct_array(empty)
        if rows:
            self.hints.learn(self.lens, self.dlens, rows)
        self.rows = 0
        self.lens[:] = 0
        self.dlens[:] = 0
        self.nulls[:] = 0
        self._release()
        return batch

    # -- buffers ---------------------------------------------------------------

    def _release(self) -> None:
        """Hand the buffers to the finished batch: the next one gets fresh
        buffers when it first reserves room, sized for its rows."""
        for column in range(len(self.program.columns)):
            self._buffers[column] = [None, None, None]
        self.addrs[:] = 0
        self.caps[:] = 0

    def _grow_to(self, slots: np.ndarray, data: np.ndarray) -> None:
        short_slots = np.flatnonzero(slots > self.caps[:, oc.BUF_VALUES])
        for column in short_slots.tolist():
            self._resize_slots(column, int(max(slots[column], self.caps[column, oc.BUF_VALUES] * _GROWTH)))
        short_data = np.flatnonzero(data > self.caps[:, oc.BUF_DATA])
        for column in short_data.tolist():
            if self.program.columns[column].kind in _DATA_KINDS:
                self._resize_data(column, int(max(data[column], self.caps[column, oc.BUF_DATA] * _GROWTH)))

    def _resize_slots(self, column: int, slots: int) -> None:
        spec = self.program.columns[column]
        used = int(self.lens[column])
        buffers = self._buffers[column]
        if spec.nullable and spec.kind != oc.K_NULL:
            buffers[0] = _resized(buffers[0], (slots + 7) // 8, (used + 7) // 8)
            self.addrs[column, oc.BUF_VALIDITY] = buffers[0].ctypes.data
        if spec.kind == oc.K_BITS:
            buffers[1] = _resized(buffers[1], (slots + 7) // 8, (used + 7) // 8)
        elif spec.kind in (oc.K_FIXED, oc.K_VIEW):
            buffers[1] = _resized(buffers[1], slots * spec.width, used * spec.width)
        elif spec.kind in (oc.K_VAR, oc.K_LIST):
            fresh = buffers[1] is None
            buffers[1] = _resized(buffers[1], (slots + 1) * 8, (used + 1) * 8)
            if fresh:
                buffers[1][:8] = 0  # offsets[0] = 0
        if buffers[1] is not None:
            self.addrs[column, oc.BUF_VALUES] = buffers[1].ctypes.data
        self.caps[column, oc.BUF_VALUES] = slots

    def _resize_data(self, column: int, size: int) -> None:
        if self.program.columns[column].kind == oc.K_VIEW:
            if size > _VIEW_DATA_MAX:  # views address data with 32-bit offsets
                if self.dlens[column] >= _VIEW_DATA_MAX:
                    raise LimitExceededError(
                        "a batch holds more than 2 GiB of strings in one column; lower batch_rows"
                    )
                size = _VIEW_DATA_MAX
        buffers = self._buffers[column]
        buffers[2] = _resized(buffers[2], size, int(self.dlens[column]))
        self.addrs[column, oc.BUF_DATA] = buffers[2].ctypes.data
        self.caps[column, oc.BUF_DATA] = size

    # -- Arrow -------------------------------------------------------------------

    def _array(self, column: int) -> pa.Array:
        spec = self.program.columns[column]
        length = int(self.lens[column])
        nulls = int(self.nulls[column])
        buffers = self._buffers[column]
        validity = pa.py_buffer(buffers[0]) if buffers[0] is not None and nulls else None
        if spec.kind == oc.K_NULL:
            return pa.nulls(length)
        if spec.kind == oc.K_STRUCT:
            children = [self._array(c) for c in spec.children]
            return pa.Array.from_buffers(
                spec.arrow, length, [validity], nulls, children=children
            )
        if spec.kind == oc.K_LIST:
            return self._list(spec, column, length, nulls, validity)
        values = pa.py_buffer(buffers[1])
        if spec.kind == oc.K_VIEW:
            data = pa.py_buffer(buffers[2])
            return pa.Array.from_buffers(spec.arrow, length, [validity, values, data], nulls)
        if spec.kind == oc.K_VAR:
            textual = spec.arrow == pa.large_string() and spec.finish != "json"
            physical = pa.large_string() if textual else pa.large_binary()
            array = pa.Array.from_buffers(
                physical, length, [validity, values, pa.py_buffer(buffers[2])], nulls
            )
            return _finish_var(spec, array)
        if spec.finish == "enum":
            indices = pa.Array.from_buffers(pa.int32(), length, [validity, values], nulls)
            symbols = pa.array(spec.detail, type=pa.string())
            return pa.DictionaryArray.from_arrays(indices, symbols)
        return pa.Array.from_buffers(spec.arrow, length, [validity, values], nulls)

    def _list(self, spec: ColumnSpec, column: int, length: int, nulls: int, validity) -> pa.Array:
        child = self._array(spec.children[0])
        offsets = self._buffers[column][1]
        if spec.finish != "map":
            return pa.Array.from_buffers(
                spec.arrow, length, [validity, pa.py_buffer(offsets)], nulls, children=[child]
            )
        # Arrow maps have 32-bit offsets.
        wide = offsets[: (length + 1) * 8].view(np.int64)
        if length and wide[-1] > np.iinfo(np.int32).max:
            raise LimitExceededError("a batch holds more than 2**31 map entries; lower batch_rows")
        narrow = pa.py_buffer(wide.astype(np.int32))
        return pa.Array.from_buffers(spec.arrow, length, [validity, narrow], nulls, children=[child])


def _finish_var(spec: ColumnSpec, array: pa.Array) -> pa.Array:
    if spec.finish == "uuid":
        return pc.utf8_lower(array)
    if spec.finish == "json":
        node = spec.detail
        texts = [
            None if raw is None else _json_or_error(node, raw)
            for raw in array.to_pylist()
        ]
        return pa.array(texts, type=pa.large_string())
    return array


def _json_or_error(node, raw: bytes) -> str:
    try:
        return to_json_text(node, raw)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-8 in a recursive value: {exc}") from None


def _resized(old: np.ndarray | None, size: int, keep: int) -> np.ndarray:
    """A uint8 buffer of ``size`` bytes (plus slack) holding the first ``keep`` bytes of ``old``.

    The kernel copies strings in whole 8-byte words, so it may write a few
    bytes past what it claims; the slack keeps that inside the buffer.
    """
    new = byte_buffer(size + SLACK)
    if old is not None and keep:
        new[:keep] = old[:keep]
    return new
