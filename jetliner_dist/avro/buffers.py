"""Byte buffers for windows, inflated blocks and Arrow columns.

They come from Arrow's memory pool, not from numpy's allocator: the pool keeps
freed pages mapped and hands them out again, so each window, block and batch
after the first reuses memory instead of page-faulting in fresh pages. Fresh
pages cost the kernel a fault and a zeroing per 4 KiB, and on several threads
those faults queue on the process's memory-map lock: they were the largest
cost of a small read beside decoding. Buffers also show in
``pyarrow.total_allocated_bytes()``.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pyarrow as pa


def byte_buffer(size: int) -> np.ndarray:
    """An uninitialised, writable uint8 array of ``size`` bytes from Arrow's pool.

    The array keeps its Arrow buffer alive; ``pa.py_buffer`` of it (or of a
    slice) shares the memory without copying.
    """
    return np.frombuffer(pa.allocate_buffer(size), dtype=np.uint8)


class ScratchPool:
    """Large working buffers (read windows, decompressed blocks) handed from
    one split to the next, across threads and reads.

    Arrow's pool reuses freed memory only within a thread's own heap, and an
    engine's worker threads live for one read: each read's fresh threads
    would page-fault and zero every window and decompression buffer anew (on
    two threads that took a fifth of a read's CPU). Kept here, a buffer comes
    back already mapped to whichever thread reads the next split. At most
    ``keep`` bytes stay idle; the oldest go first.
    """

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._reset()
        # A child forked while another thread held the lock would wait on it
        # for ever; it starts with an empty pool instead.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> np.ndarray:
        """A uint8 buffer of at least ``size`` bytes (contents undefined)."""
        with self._lock:
            fits = [i for i, b in enumerate(self._free) if size <= len(b) <= 2 * size + _GRAIN]
            if fits:
                return self._free.pop(min(fits, key=lambda i: len(self._free[i])))
        return byte_buffer(_rounded(size))

    def give(self, buffer: np.ndarray) -> None:
        """Keep ``buffer`` (from :meth:`take`) for a later :meth:`take`; its
        owner must not use it afterwards."""
        if not 0 < len(buffer) <= self._keep:
            return
        with self._lock:
            self._free.append(buffer)
            kept = sum(len(b) for b in self._free)
            while kept > self._keep:
                kept -= len(self._free.pop(0))

    @property
    def idle_bytes(self) -> int:
        with self._lock:
            return sum(len(b) for b in self._free)


# Buffers are allocated in sizes rounded up to an eighth of a power of two
# (and to 64 KiB), so splits of slightly different sizes reuse each other's.
_GRAIN = 64 * 1024


def _rounded(size: int) -> int:
    step = max(_GRAIN, 1 << max(0, size.bit_length() - 4))
    return -(-size // step) * step
