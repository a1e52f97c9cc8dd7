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

import numpy as np
import pyarrow as pa


def byte_buffer(size: int) -> np.ndarray:
    """An uninitialised, writable uint8 array of ``size`` bytes from Arrow's pool.

    The array keeps its Arrow buffer alive; ``pa.py_buffer`` of it (or of a
    slice) shares the memory without copying.
    """
    return np.frombuffer(pa.allocate_buffer(size), dtype=np.uint8)
