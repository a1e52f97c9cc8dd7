"""The decoder kernel: one numba function that interprets a decoder program.

A program (see :mod:`jetliner_dist.avro.program`) is a table of instructions
grouped in sequences; the kernel walks it once per record with an explicit
stack (arrays, maps, union branches and recursive values push frames), reading
block bytes and appending to Arrow buffers through raw addresses. It is compiled
once for all schemas, with ``nogil=True`` so threads decode in parallel and
``cache=True`` so a new process loads it from disk.

Safety: every read is checked against the block's end and every write against
the buffer's capacity. When a buffer is full the kernel stops with
``ST_NEED_SPACE``; the caller grows the buffer, rolls lengths back and calls
again. Counts are checked against the bytes left before any loop runs, so a
corrupt count cannot hang the process or size an allocation.

numba keys the on-disk cache of these functions on this file alone: after a
change to what they compile in from elsewhere (``snappy``, ``memory``, the
constants of ``opcodes``), touch this file, or the cached old code runs on.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from jetliner_dist.avro.memory import (
    call_pread,
    copy_bytes,
    load_i64,
    load_u8,
    load_u32,
    store_i8,
    store_i32,
    store_i64,
)
from jetliner_dist.avro.opcodes import (
    ALIGNED,
    COLUMN_MASK,
    FR_DETAIL,
    FR_MORE,
    FR_NEEDED,
    FR_NEGATIVE_COUNT,
    FR_NEGATIVE_SIZE,
    FR_OK,
    FR_POS,
    FR_READ,
    FR_STATUS,
    FR_SYNC,
    FR_TOO_LARGE,
    FR_VARINT,
    BUF_DATA,
    BUF_VALUES,
    F_COLUMN,
    F_END,
    F_ITEMS,
    F_KIND,
    F_MIN_BYTES,
    F_PC,
    F_REMAINING,
    F_SEQ,
    FRAME_CALL,
    FRAME_LOOP,
    FRAME_RAW,
    FRAME_SIZE,
    K_BITS,
    K_FIXED,
    K_LIST,
    K_VAR,
    K_VIEW,
    L_RECORD_MIN_BYTES,
    L_ZERO_SIZE_ITEMS,
    OP_ARRAY,
    OP_BOOLEAN,
    OP_BYTES,
    OP_CALL,
    OP_DECIMAL_BYTES,
    OP_DECIMAL_FIXED,
    OP_DOUBLE,
    OP_DURATION,
    OP_ENUM,
    OP_FIXED,
    OP_FLOAT,
    OP_JUMP,
    OP_INT,
    OP_LONG,
    OP_MAP,
    OP_NULL,
    OP_RAW,
    OP_RECORD,
    OP_UNION,
    OP_UUID_FIXED,
    IN_ADDRESS,
    IN_CHECKSUM,
    IN_SIZE,
    P_CRC32,
    P_SCRATCH,
    P_SCRATCH_SIZE,
    S_BLOCK,
    S_COLUMN,
    S_INFLATED,
    S_NEEDED,
    S_POS,
    S_RECORD,
    S_ROW_BASE,
    S_ROWS,
    S_STATUS,
    S_WHICH,
    SN_OK,
    ST_BLOCK_END,
    ST_COUNT,
    ST_DECIMAL,
    ST_DEPTH,
    ST_ENUM_INDEX,
    ST_INT_RANGE,
    ST_NEED_SPACE,
    ST_NEGATIVE_LENGTH,
    ST_OK,
    ST_SNAPPY,
    ST_TRUNCATED,
    ST_UNION_INDEX,
    ST_UTF8,
    ST_VARINT,
)
from jetliner_dist.avro.snappy import inflate_block

_I64_1D = types.Array(types.int64, 1, "C")
_I64_2D = types.Array(types.int64, 2, "C")


@njit(inline="always")
def _get(table, index):
    """table[index] of an int64 table given by its address."""
    return load_i64(table + 8 * index)


@njit(inline="always")
def _put(table, index, value):
    store_i64(table + 8 * index, value)


@njit(inline="always")
def _read_long(base, pos, end):
    """Zig-zag varint at ``base + pos``: (value, next pos), or (0, -status)."""
    if pos >= end:
        return 0, -ST_TRUNCATED
    byte = load_u8(base + pos)
    pos += 1
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos
    value = byte & 0x7F
    shift = 7
    while True:
        if pos >= end:
            return 0, -ST_TRUNCATED
        if shift > 63:
            return 0, -ST_VARINT
        byte = load_u8(base + pos)
        pos += 1
        if shift == 63 and byte > 1:  # the tenth byte holds only bit 63
            return 0, -ST_VARINT
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return ((value >> 1) & 0x7FFFFFFFFFFFFFFF) ^ -(value & 1), pos


@njit(inline="always")
def _read_count(base, pos, end):
    """An array or map block's item count: (count, byte size, next pos).

    A negative count is followed by the block's byte size (else size is -1).
    Errors come back as a negative pos (-status); a count of -2**63, whose
    negation overflows, as -ST_COUNT.
    """
    count, pos = _read_long(base, pos, end)
    size = -1
    if pos >= 0 and count < 0:
        count = -count
        size, pos = _read_long(base, pos, end)
        if pos >= 0 and count < 0:
            return count, size, -ST_COUNT
    return count, size, pos


@njit(inline="always")
def _set_bit(address, index, bit):
    target = address + (index >> 3)
    mask = 1 << (index & 7)
    old = load_u8(target)
    store_i8(target, (old | mask) if bit else (old & ~mask))


@njit(inline="always")
def _need(state, column, needed, which):
    _put(state, S_STATUS, ST_NEED_SPACE)
    _put(state, S_COLUMN, column)
    _put(state, S_NEEDED, needed)
    _put(state, S_WHICH, which)


@njit(inline="always")
def _slot(column, row, addrs, caps, lens, state):
    """Reserve the next slot of ``column`` as valid: its index, or -1 if full.

    An aligned column's slot is the row (its capacity was reserved up front).
    """
    if column >= ALIGNED:
        validity = _get(addrs, 3 * (column - ALIGNED))
        if validity != 0:
            _set_bit(validity, row, 1)
        return row
    index = _get(lens, column)
    if index >= _get(caps, 3 * column + BUF_VALUES):
        _need(state, column, index + 1, BUF_VALUES)
        return -1
    validity = _get(addrs, 3 * column)
    if validity != 0:
        _set_bit(validity, index, 1)
    _put(lens, column, index + 1)
    return index


@njit
def _fill_null(column, row, kinds, widths, addrs, caps, lens, nulls, state):
    """Append a null slot to ``column`` (a branch not taken, a null union)."""
    if column >= ALIGNED:
        column -= ALIGNED
        index = row
    else:
        index = _get(lens, column)
        if index >= _get(caps, 3 * column + BUF_VALUES):
            _need(state, column, index + 1, BUF_VALUES)
            return False
        _put(lens, column, index + 1)
    kind = _get(kinds, column)
    values = _get(addrs, 3 * column + BUF_VALUES)
    if kind == K_BITS:
        _set_bit(values, index, 0)
    elif kind == K_FIXED or kind == K_VIEW:  # a view of zeros is the empty string
        width = _get(widths, column)
        start = values + index * width
        for k in range(width):
            store_i8(start + k, 0)
    elif kind == K_VAR or kind == K_LIST:
        _put(values, index + 1, _get(values, index))
    validity = _get(addrs, 3 * column)
    if validity != 0:
        _set_bit(validity, index, 0)
        _put(nulls, column, _get(nulls, column) + 1)
    return True


@njit
def _valid_utf8(start, stop):
    """True when the bytes at addresses [start, stop) are UTF-8 (RFC 3629)."""
    pos = start
    while pos < stop:
        # Fast path over ASCII, eight bytes at a time.
        while pos + 8 <= stop and (load_i64(pos) & -0x7F7F7F7F7F7F7F80) == 0:
            pos += 8
        if pos >= stop:
            return True
        byte = load_u8(pos)
        if byte < 0x80:
            pos += 1
            continue
        if 0xC2 <= byte <= 0xDF:
            need, low, high = 1, 0x80, 0xBF
        elif 0xE0 <= byte <= 0xEF:
            need = 2
            low = 0xA0 if byte == 0xE0 else 0x80
            high = 0x9F if byte == 0xED else 0xBF
        elif 0xF0 <= byte <= 0xF4:
            need = 3
            low = 0x90 if byte == 0xF0 else 0x80
            high = 0x8F if byte == 0xF4 else 0xBF
        else:
            return False
        if pos + need >= stop:
            return False
        second = load_u8(pos + 1)
        if second < low or second > high:
            return False
        for k in range(2, need + 1):
            follow = load_u8(pos + k)
            if follow < 0x80 or follow > 0xBF:
                return False
        pos += need + 1
    return True


_HIGH_BITS = -0x7F7F7F7F7F7F7F80  # 0x8080808080808080: a non-ASCII byte in a word
# Buffers have this many spare bytes past their capacity, so copies can move
# whole 8-byte words (see assemble.SLACK).
_SLACK = 8


@njit(inline="always")
def _copy_words(target, source, count, source_end):
    """Copy ``count`` bytes in 8-byte words; returns the OR of the bytes copied.

    May write up to 7 bytes past ``target + count`` (buffers have slack) but
    never reads at or past ``source_end``. The high bits of the result tell
    whether any byte was non-ASCII.
    """
    seen = 0
    k = 0
    while k + 8 <= count:
        word = load_i64(source + k)
        seen |= word
        store_i64(target + k, word)
        k += 8
    rest = count - k
    if rest > 0:
        if source + k + 8 <= source_end:
            word = load_i64(source + k) & ((1 << (8 * rest)) - 1)
        else:
            word = 0
            for j in range(rest):
                word |= load_u8(source + k + j) << (8 * j)
        seen |= word
        store_i64(target + k, word)
    return seen


@njit(inline="always")
def _append_bytes(
    column, row, source, count, source_end, view, text, addrs, caps, lens, dlens, state
):
    """Append ``count`` bytes at ``source`` as one slot of a K_VAR or K_VIEW column.

    Returns ST_OK, ST_NEED_SPACE or (``text``) ST_UTF8. K_VIEW follows Arrow's
    view layout: the length, then the bytes inline when they fit in 12, else a
    4-byte prefix, buffer 0 and the offset into the data buffer.
    """
    c = column & COLUMN_MASK
    used = _get(dlens, c)
    stored = 0 if view and count <= 12 else count
    if used + stored > _get(caps, 3 * c + BUF_DATA):
        _need(state, c, used + stored, BUF_DATA)
        return ST_NEED_SPACE
    index = _slot(column, row, addrs, caps, lens, state)
    if index < 0:
        return ST_NEED_SPACE
    values = _get(addrs, 3 * c + BUF_VALUES)
    if view:
        slot = values + 16 * index
        store_i64(slot, count)  # length, then zeroed inline bytes
        store_i64(slot + 8, 0)
        if count <= 12:
            seen = _copy_words(slot + 4, source, count, source_end)
        else:
            store_i32(slot + 4, load_u32(source))  # prefix
            store_i32(slot + 12, used)  # buffer 0, this offset
            seen = _copy_words(_get(addrs, 3 * c + BUF_DATA) + used, source, count, source_end)
    else:
        seen = _copy_words(_get(addrs, 3 * c + BUF_DATA) + used, source, count, source_end)
        _put(values, index + 1, used + count)
    if text and (seen & _HIGH_BITS) != 0 and not _valid_utf8(source, source + count):
        return ST_UTF8
    _put(dlens, c, used + stored)
    return ST_OK


@njit
def _write_decimal(source, size, target, width):
    """Big-endian two's complement (``size`` bytes) → little-endian ``width`` bytes."""
    negative = size > 0 and load_u8(source) >= 0x80
    pad = 0xFF if negative else 0
    extra = size - width
    for k in range(extra):  # leading bytes beyond the width must be sign extension
        if load_u8(source + k) != pad:
            return False
    if extra > 0 and (load_u8(source + extra) >= 0x80) != negative:
        return False
    kept = size if extra <= 0 else width
    for k in range(kept):
        store_i8(target + k, load_u8(source + size - 1 - k))
    for k in range(kept, width):
        store_i8(target + k, pad)
    return True


@njit(inline="always")
def _hex_digit(nibble):
    return nibble + 48 if nibble < 10 else nibble + 87


@njit
def _write_uuid(source, column, row, addrs, caps, lens, dlens, state):
    """16 bytes → the 36-character canonical lowercase form."""
    c = column & COLUMN_MASK
    used = _get(dlens, c)
    if used + 36 > _get(caps, 3 * c + BUF_DATA):
        _need(state, c, used + 36, BUF_DATA)
        return False
    index = _slot(column, row, addrs, caps, lens, state)
    if index < 0:
        return False
    out = _get(addrs, 3 * c + BUF_DATA) + used
    written = 0
    for k in range(16):
        if k == 4 or k == 6 or k == 8 or k == 10:
            store_i8(out + written, 45)  # '-'
            written += 1
        byte = load_u8(source + k)
        store_i8(out + written, _hex_digit(byte >> 4))
        store_i8(out + written + 1, _hex_digit(byte & 15))
        written += 2
    _put(dlens, c, used + 36)
    _put(_get(addrs, 3 * c + BUF_VALUES), index + 1, used + 36)
    return True


@njit(inline="always")
def _push(stack, sp, kind, pc, stop):
    frame = stack + 8 * FRAME_SIZE * sp
    store_i64(frame + 8 * F_KIND, kind)
    store_i64(frame + 8 * F_PC, pc)
    store_i64(frame + 8 * F_END, stop)
    return frame


@njit(inline="always")
def _list_index(column, row, lens):
    """The slot of a list being closed: reserved when it opened."""
    return row if column >= ALIGNED else _get(lens, column) - 1


@njit(inline="always")
def _budget(count, bytes_left, min_bytes, zero_items):
    """Charge ``count`` values against what the bytes can hold.

    Values of ``min_bytes`` > 0 bytes: at most ``bytes_left // min_bytes`` fit
    (-1 means too many). Values of no size (nulls, empty records) are counted
    in ``zero_items`` against the call's limit instead; returns the new total.
    """
    if min_bytes > 0:
        return zero_items if count <= bytes_left // min_bytes else -1
    return zero_items + count


_SIGNATURE = types.int64(
    _I64_2D,  # blocks: rows of (address, length, record count)
    _I64_2D,  # instructions: rows of (op, column, a, b)
    _I64_2D,  # sequences: rows of (first instruction, end)
    types.int64,  # root sequence
    _I64_2D,  # unions: rows of (branches, struct column or -1, first entry)
    _I64_2D,  # union entries: rows of (body offset, is null, fill start, fill end)
    _I64_1D,  # fills: column indices to null-fill
    _I64_1D,  # column kinds
    _I64_1D,  # column widths (K_FIXED)
    _I64_2D,  # column buffer addresses (validity, values/offsets, data)
    _I64_2D,  # column capacities (unused, slots, data bytes)
    _I64_1D,  # column lengths (slots)
    _I64_1D,  # column data lengths (bytes)
    _I64_1D,  # column null counts
    _I64_1D,  # limits
    _I64_2D,  # stack: rows of frames
    types.int64,  # rows this call may produce
    _I64_1D,  # state: in/out, see opcodes.S_*
    _I64_2D,  # snappy blocks to inflate first: rows of opcodes.IN_* (no rows: none)
    _I64_1D,  # inflation parameters, opcodes.P_*
)


@njit(_SIGNATURE, nogil=True, cache=True)
def decode_blocks(
    blocks_array, ins_array, seqs_array, root, unions_array, entries_array, fills_array,
    kinds_array, widths_array, addrs_array, caps_array, lens_array, dlens_array,
    nulls_array, limits_array, stack_array, max_rows, state_array, inflating_array,
    inflate_params,
):  # fmt: skip
    """Decode records of ``blocks`` into the column buffers; returns a status.

    Every table is used through its address: helpers that took arrays would
    pay reference counting on each call, which dominated the loop.

    With rows in ``inflating_array`` (snappy blocks), each block is inflated
    into the scratch buffer of ``inflate_params`` just before its records are
    decoded (every ``blocks`` row then points at that buffer), so its bytes are
    decoded while still in cache; ``state[S_INFLATED]`` says which block the
    buffer holds, so a call that resumes inside a block does not inflate it
    again.
    """
    blocks = blocks_array.ctypes.data
    ins = ins_array.ctypes.data
    seqs = seqs_array.ctypes.data
    unions = unions_array.ctypes.data
    entries = entries_array.ctypes.data
    fills = fills_array.ctypes.data
    kinds = kinds_array.ctypes.data
    widths = widths_array.ctypes.data
    addrs = addrs_array.ctypes.data
    caps = caps_array.ctypes.data
    lens = lens_array.ctypes.data
    dlens = dlens_array.ctypes.data
    nulls = nulls_array.ctypes.data
    stack = stack_array.ctypes.data
    state = state_array.ctypes.data
    nblocks = blocks_array.shape[0]
    depth = stack_array.shape[0]
    record_min = limits_array[L_RECORD_MIN_BYTES]
    zero_limit = limits_array[L_ZERO_SIZE_ITEMS]

    row_base = state_array[S_ROW_BASE]
    block = state_array[S_BLOCK]
    record = state_array[S_RECORD]
    pos = state_array[S_POS]
    state_array[S_STATUS] = ST_OK
    rows = 0
    zero_items = 0
    status = ST_OK
    detail = 0
    record_pos = pos

    inflating = inflating_array.shape[0] > 0
    while block < nblocks and rows < max_rows and status == ST_OK:
        if inflating and state_array[S_INFLATED] != block:
            state_array[S_INFLATED] = -1  # the buffer is being overwritten
            detail = inflate_block(
                inflating_array[block, IN_ADDRESS], inflating_array[block, IN_SIZE],
                inflate_params[P_SCRATCH], _get(blocks, 3 * block + 1),
                inflate_params[P_SCRATCH] + inflate_params[P_SCRATCH_SIZE],
                inflate_params[P_CRC32], inflating_array[block, IN_CHECKSUM],
            )  # fmt: skip
            if detail != SN_OK:
                status = ST_SNAPPY
                break
            state_array[S_INFLATED] = block
        base = _get(blocks, 3 * block)
        end = _get(blocks, 3 * block + 1)
        count = _get(blocks, 3 * block + 2)
        if record == 0 and pos == 0:
            # A count the bytes cannot hold is corrupt; refuse it before looping.
            zero_items = _budget(count, end, record_min, zero_items)
            if zero_items < 0 or zero_items > zero_limit:
                status = ST_COUNT
                detail = count
                break
        while record < count and rows < max_rows:
            record_pos = pos
            row = row_base + rows
            sp = 0
            pc = _get(seqs, 2 * root)
            stop = _get(seqs, 2 * root + 1)
            while True:
                if pc == stop:
                    if sp == 0:
                        break
                    sp -= 1
                    frame = stack + 8 * FRAME_SIZE * sp
                    kind = load_i64(frame + 8 * F_KIND)
                    if kind == FRAME_CALL:
                        pc = load_i64(frame + 8 * F_PC)
                        stop = load_i64(frame + 8 * F_END)
                        continue
                    if kind == FRAME_RAW:
                        column = load_i64(frame + 8 * F_COLUMN)
                        start = load_i64(frame + 8 * F_REMAINING)
                        status = _append_bytes(
                            column, row, base + start, pos - start, base + end, False, False,
                            addrs, caps, lens, dlens, state,
                        )  # fmt: skip
                        if status != ST_OK:
                            break
                        pc = load_i64(frame + 8 * F_PC)
                        stop = load_i64(frame + 8 * F_END)
                        continue
                    # FRAME_LOOP: one array item or map entry is done.
                    items = load_i64(frame + 8 * F_ITEMS) + 1
                    remaining = load_i64(frame + 8 * F_REMAINING) - 1
                    seq = load_i64(frame + 8 * F_SEQ)
                    if remaining == 0:
                        remaining, size, pos = _read_count(base, pos, end)
                        if pos < 0:
                            status = -pos
                            detail = remaining
                            break
                        min_bytes = load_i64(frame + 8 * F_MIN_BYTES)
                        zero_items = _budget(remaining, end - pos, min_bytes, zero_items)
                        if zero_items < 0 or zero_items > zero_limit:
                            status = ST_COUNT
                            detail = remaining
                            break
                    if remaining > 0:
                        store_i64(frame + 8 * F_REMAINING, remaining)
                        store_i64(frame + 8 * F_ITEMS, items)
                        sp += 1
                        pc = _get(seqs, 2 * seq)
                        stop = _get(seqs, 2 * seq + 1)
                        continue
                    column = load_i64(frame + 8 * F_COLUMN)
                    if column >= 0:
                        offsets = _get(addrs, 3 * (column & COLUMN_MASK) + BUF_VALUES)
                        index = _list_index(column, row, lens)
                        _put(offsets, index + 1, _get(offsets, index) + items)
                    pc = load_i64(frame + 8 * F_PC)
                    stop = load_i64(frame + 8 * F_END)
                    continue

                instruction = ins + 32 * pc
                op = load_i64(instruction)
                column = load_i64(instruction + 8)
                col = column & COLUMN_MASK  # meaningful when column >= 0
                pc += 1
                if op == OP_LONG or op == OP_INT:
                    value, pos = _read_long(base, pos, end)
                    if pos < 0:
                        status = -pos
                        break
                    if column >= 0:
                        index = _slot(column, row, addrs, caps, lens, state)
                        if index < 0:
                            status = ST_NEED_SPACE
                            break
                        values = _get(addrs, 3 * col + BUF_VALUES)
                        if op == OP_LONG:
                            store_i64(values + 8 * index, value)
                        else:
                            if value < -2147483648 or value > 2147483647:
                                status = ST_INT_RANGE
                                detail = value
                                break
                            store_i32(values + 4 * index, value)
                elif op == OP_BYTES:
                    size, pos = _read_long(base, pos, end)
                    if pos < 0:
                        status = -pos
                        break
                    if size < 0:
                        status = ST_NEGATIVE_LENGTH
                        detail = size
                        break
                    if size > end - pos:
                        status = ST_TRUNCATED
                        break
                    text = load_i64(instruction + 16) == 1
                    if column >= 0:
                        result = _append_bytes(
                            column, row, base + pos, size, base + end, load_i64(instruction + 24) == 1,
                            text, addrs, caps, lens, dlens, state,
                        )  # fmt: skip
                        if result != ST_OK:
                            status = result
                            break
                    elif text and not _valid_utf8(base + pos, base + pos + size):
                        status = ST_UTF8
                        break
                    pos += size
                elif op == OP_DOUBLE or op == OP_FLOAT:
                    size = 8 if op == OP_DOUBLE else 4
                    if pos + size > end:
                        status = ST_TRUNCATED
                        break
                    if column >= 0:
                        index = _slot(column, row, addrs, caps, lens, state)
                        if index < 0:
                            status = ST_NEED_SPACE
                            break
                        values = _get(addrs, 3 * col + BUF_VALUES)
                        if size == 8:
                            store_i64(values + 8 * index, load_i64(base + pos))
                        else:
                            store_i32(values + 4 * index, load_u32(base + pos))
                    pos += size
                elif op == OP_BOOLEAN:
                    if pos >= end:
                        status = ST_TRUNCATED
                        break
                    if column >= 0:
                        index = _slot(column, row, addrs, caps, lens, state)
                        if index < 0:
                            status = ST_NEED_SPACE
                            break
                        _set_bit(
                            _get(addrs, 3 * col + BUF_VALUES), index, load_u8(base + pos) != 0
                        )
                    pos += 1
                elif op == OP_UNION:
                    choice, pos = _read_long(base, pos, end)
                    if pos < 0:
                        status = -pos
                        break
                    union = load_i64(instruction + 16)
                    branches = _get(unions, 3 * union)
                    if choice < 0 or choice >= branches:
                        status = ST_UNION_INDEX
                        detail = choice
                        break
                    first = _get(unions, 3 * union + 2)
                    for branch in range(branches):
                        if branch == choice:
                            continue
                        entry = 4 * (first + branch)
                        for k in range(_get(entries, entry + 2), _get(entries, entry + 3)):
                            if not _fill_null(
                                _get(fills, k), row, kinds, widths, addrs, caps, lens, nulls, state
                            ):
                                status = ST_NEED_SPACE
                                break
                        if status != ST_OK:
                            break
                    if status != ST_OK:
                        break
                    entry = 4 * (first + choice)
                    struct = _get(unions, 3 * union + 1)
                    if struct >= 0:
                        if _get(entries, entry + 1) == 1:  # the null branch
                            if not _fill_null(
                                struct, row, kinds, widths, addrs, caps, lens, nulls, state
                            ):
                                status = ST_NEED_SPACE
                                break
                        elif _slot(struct, row, addrs, caps, lens, state) < 0:
                            status = ST_NEED_SPACE
                            break
                    pc += _get(entries, entry) - 1  # to the branch body, inline
                elif op == OP_JUMP:
                    pc += load_i64(instruction + 16) - 1
                elif op == OP_RECORD:
                    if _slot(column, row, addrs, caps, lens, state) < 0:
                        status = ST_NEED_SPACE
                        break
                elif op == OP_ARRAY or op == OP_MAP:
                    remaining, size, pos = _read_count(base, pos, end)
                    if pos < 0:
                        status = -pos
                        detail = remaining
                        break
                    if column < 0 and size >= 0:
                        # Projected away and the block says its size: skip it whole.
                        if size > end - pos:
                            status = ST_TRUNCATED
                            break
                        pos += size
                        pc -= 1  # read the next block count of this array
                        continue
                    if column >= 0:
                        if _slot(column, row, addrs, caps, lens, state) < 0:
                            status = ST_NEED_SPACE
                            break
                    min_bytes = load_i64(instruction + 24)
                    if remaining > 0:
                        zero_items = _budget(remaining, end - pos, min_bytes, zero_items)
                        if zero_items < 0 or zero_items > zero_limit:
                            status = ST_COUNT
                            detail = remaining
                            break
                        if sp >= depth:
                            status = ST_DEPTH
                            break
                        seq = load_i64(instruction + 16)
                        frame = _push(stack, sp, FRAME_LOOP, pc, stop)
                        store_i64(frame + 8 * F_REMAINING, remaining)
                        store_i64(frame + 8 * F_ITEMS, 0)
                        store_i64(frame + 8 * F_COLUMN, column)
                        store_i64(frame + 8 * F_SEQ, seq)
                        store_i64(frame + 8 * F_MIN_BYTES, min_bytes)
                        sp += 1
                        pc = _get(seqs, 2 * seq)
                        stop = _get(seqs, 2 * seq + 1)
                    elif column >= 0:  # empty: the end offset repeats the start
                        offsets = _get(addrs, 3 * col + BUF_VALUES)
                        index = _list_index(column, row, lens)
                        _put(offsets, index + 1, _get(offsets, index))
                elif op == OP_ENUM:
                    value, pos = _read_long(base, pos, end)
                    if pos < 0:
                        status = -pos
                        break
                    if value < 0 or value >= load_i64(instruction + 16):
                        status = ST_ENUM_INDEX
                        detail = value
                        break
                    if column >= 0:
                        index = _slot(column, row, addrs, caps, lens, state)
                        if index < 0:
                            status = ST_NEED_SPACE
                            break
                        store_i32(_get(addrs, 3 * col + BUF_VALUES) + 4 * index, value)
                elif op == OP_NULL:
                    if column >= 0:
                        if _slot(column, row, addrs, caps, lens, state) < 0:
                            status = ST_NEED_SPACE
                            break
                elif op == OP_FIXED:
                    size = load_i64(instruction + 16)
                    if size > end - pos:
                        status = ST_TRUNCATED
                        break
                    if column >= 0:
                        index = _slot(column, row, addrs, caps, lens, state)
                        if index < 0:
                            status = ST_NEED_SPACE
                            break
                        copy_bytes(
                            _get(addrs, 3 * col + BUF_VALUES) + index * size, base + pos, size
                        )
                    pos += size
                elif op == OP_DECIMAL_BYTES or op == OP_DECIMAL_FIXED:
                    if op == OP_DECIMAL_BYTES:
                        size, pos = _read_long(base, pos, end)
                        if pos < 0:
                            status = -pos
                            break
                        if size < 0:
                            status = ST_NEGATIVE_LENGTH
                            detail = size
                            break
                        width = load_i64(instruction + 16)
                    else:
                        size = load_i64(instruction + 16)
                        width = load_i64(instruction + 24)
                    if size > end - pos:
                        status = ST_TRUNCATED
                        break
                    if column >= 0:
                        index = _slot(column, row, addrs, caps, lens, state)
                        if index < 0:
                            status = ST_NEED_SPACE
                            break
                        target = _get(addrs, 3 * col + BUF_VALUES) + index * width
                        if not _write_decimal(base + pos, size, target, width):
                            status = ST_DECIMAL
                            break
                    pos += size
                elif op == OP_UUID_FIXED:
                    if 16 > end - pos:
                        status = ST_TRUNCATED
                        break
                    if column >= 0 and not _write_uuid(
                        base + pos, column, row, addrs, caps, lens, dlens, state
                    ):
                        status = ST_NEED_SPACE
                        break
                    pos += 16
                elif op == OP_DURATION:
                    if 12 > end - pos:
                        status = ST_TRUNCATED
                        break
                    if column >= 0:
                        if _slot(column, row, addrs, caps, lens, state) < 0:
                            status = ST_NEED_SPACE
                            break
                        first = load_i64(instruction + 24)
                        for part in range(3):
                            index = _slot(first + part, row, addrs, caps, lens, state)
                            if index < 0:
                                status = ST_NEED_SPACE
                                break
                            store_i32(
                                _get(addrs, 3 * ((first + part) & COLUMN_MASK) + BUF_VALUES)
                                + 4 * index,
                                load_u32(base + pos + 4 * part),
                            )
                        if status != ST_OK:
                            break
                    pos += 12
                elif op == OP_CALL or op == OP_RAW:
                    if sp >= depth:
                        status = ST_DEPTH
                        break
                    seq = load_i64(instruction + 16)
                    if op == OP_CALL:
                        _push(stack, sp, FRAME_CALL, pc, stop)
                    else:
                        frame = _push(stack, sp, FRAME_RAW, pc, stop)
                        store_i64(frame + 8 * F_REMAINING, pos)
                        store_i64(frame + 8 * F_COLUMN, column)
                    sp += 1
                    pc = _get(seqs, 2 * seq)
                    stop = _get(seqs, 2 * seq + 1)
            if status != ST_OK:
                break
            record += 1
            rows += 1
        if status != ST_OK:
            break
        if record == count:
            if pos != end:
                status = ST_BLOCK_END
                detail = end - pos
                break
            block += 1
            record = 0
            pos = 0

    state_array[S_STATUS] = status
    state_array[S_BLOCK] = block
    state_array[S_RECORD] = record
    # On an error the position is the start of the failing record: a varint
    # read that failed leaves no meaningful cursor.
    state_array[S_POS] = pos if status == ST_OK or status == ST_BLOCK_END else record_pos
    state_array[S_ROWS] = rows
    if status != ST_NEED_SPACE:
        state_array[S_COLUMN] = detail
    return status


_U8_READONLY = types.Array(types.uint8, 1, "C", readonly=True)


@njit(inline="always")
def _block_header(base, pos, end, max_size, state):
    """A block's count and size varints at ``base + pos``: (count, size, next
    pos, FR_* status); a bad value goes to ``state[FR_DETAIL]``."""
    count, after = _read_long(base, pos, end)
    size = 0
    if after >= 0:
        size, after = _read_long(base, after, end)
    if after < 0:
        return count, size, after, (FR_VARINT if after == -ST_VARINT else FR_MORE)
    if count < 0:
        state[FR_DETAIL] = count
        return count, size, after, FR_NEGATIVE_COUNT
    if size < 0:
        state[FR_DETAIL] = size
        return count, size, after, FR_NEGATIVE_SIZE
    if size > max_size:
        state[FR_DETAIL] = size
        return count, size, after, FR_TOO_LARGE
    return count, size, after, FR_OK


@njit(
    types.int64(_U8_READONLY, types.int64, _U8_READONLY, types.int64, _I64_2D, _I64_1D),
    nogil=True,
    cache=True,
)
def frame_blocks(buf, pos, sync, max_size, out, state):
    """Find the blocks in ``buf`` from ``pos``: rows of (count, payload start, size).

    Stops at the end of the buffer, when ``out`` is full, inside an incomplete
    block (FR_MORE, with the block's start and the bytes it needs) or at the
    first malformed block (an FR_* error at the offending position).
    """
    end = buf.shape[0]
    base = buf.ctypes.data
    n = 0
    status = FR_OK
    state[FR_NEEDED] = 0
    state[FR_DETAIL] = 0
    while n < out.shape[0] and pos < end:
        count, size, after, status = _block_header(base, pos, end, max_size, state)
        if status != FR_OK:
            break
        if after + size + 16 > end:
            status = FR_MORE
            state[FR_NEEDED] = after + size + 16 - pos
            break
        marker = after + size
        for k in range(16):
            if buf[marker + k] != sync[k]:
                status = FR_SYNC
                break
        if status != FR_OK:
            pos = marker
            break
        out[n, 0] = count
        out[n, 1] = after
        out[n, 2] = size
        n += 1
        pos = marker + 16
    state[FR_STATUS] = status
    state[FR_POS] = pos
    return n


@njit(
    types.int64(_U8_READONLY, _I64_2D, _I64_1D, _I64_1D),
    nogil=True,
    cache=True,
)
def snappy_sizes(buf, blocks, sizes, checksums):
    """Per snappy block: the decompressed size from its preamble and the CRC32
    stored after it. Returns the first block that is malformed, or -1.

    Reading these in one call spares a Python call per block.
    """
    base = buf.ctypes.data
    for i in range(blocks.shape[0]):
        start = blocks[i, 1]
        size = blocks[i, 2]
        if size < 4:
            return i
        body_end = start + size - 4
        value, after = _read_long(base, start, body_end)  # zig-zag-free varint below
        if after < 0:
            return i
        # The preamble is a plain (not zig-zag) varint: undo the zig-zag step.
        sizes[i] = (value << 1) ^ (value >> 63)
        checksums[i] = (
            (np.int64(buf[body_end]) << 24)
            | (np.int64(buf[body_end + 1]) << 16)
            | (np.int64(buf[body_end + 2]) << 8)
            | np.int64(buf[body_end + 3])
        )
    return -1


# What walk_blocks reads per block: the previous block's sync marker and this
# block's header (two varints of at most 10 bytes each).
_WALK_READ = 16 + 20


@njit(
    types.int64(types.int64, types.int64, types.int64, types.int64, types.int64,
                _U8_READONLY, types.int64, _I64_1D),
    nogil=True,
    cache=True,
)
def walk_blocks(pread, fd, pos, stop, size, sync, max_size, state):
    """Count the records of the blocks from ``pos`` (a block start) whose
    preceding sync marker begins before ``stop``, reading only block headers
    and sync markers from ``fd`` with one ``pread`` (libc's, by address) per
    block: no payload byte is read.

    Returns the record count; ``state`` holds an FR_* status and, in FR_POS,
    where the walk stopped (the next block's start, or the offending offset).
    FR_MORE means the file ends inside a block, FR_READ that a read failed.
    """
    scratch = np.empty(_WALK_READ, dtype=np.uint8)
    base = scratch.ctypes.data
    rows = 0
    status = FR_OK
    state[FR_DETAIL] = 0
    state[FR_NEEDED] = 0
    # The header of the block at ``pos`` is read with its predecessor's marker,
    # except for the first one.
    got = call_pread(pread, fd, base + 16, 20, pos)
    held = 16 + got
    while pos < size and pos - 16 < stop:
        if got < 0:
            status = FR_READ
            break
        count, block_size, after, status = _block_header(base, 16, held, max_size, state)
        if status != FR_OK:
            break
        marker = pos + (after - 16) + block_size
        if marker + 16 > size:
            status = FR_MORE
            break
        got = call_pread(pread, fd, base, _WALK_READ, marker)
        if got < 16:
            status = FR_READ if got < 0 else FR_MORE
            break
        for k in range(16):
            if scratch[k] != sync[k]:
                status = FR_SYNC
                break
        if status != FR_OK:
            pos = marker
            break
        rows += count
        pos = marker + 16
        held = got
        got -= 16
    state[FR_STATUS] = status
    state[FR_POS] = pos
    return rows
