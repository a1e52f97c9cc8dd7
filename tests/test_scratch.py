"""Working buffers handed from split to split (``buffers.ScratchPool``).

The pool's rules (sizes, bounds, threads), and that reads use it: a read's
windows and decompression buffers come back for the next split and the next
read, whatever thread reads it, and never while a split still decodes from
them (results stay exact when many threads share the pool).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import jetliner_dist as jd
import jetliner_dist.avro.buffers as buffers
from jetliner_dist.avro.buffers import ScratchPool
from jetliner_dist.reading import _SCRATCH  # imported before any test patches buffers
from s3_fixtures import repeat_blocks, write_avro

MiB = 1024 * 1024


@pytest.fixture
def allocations(monkeypatch) -> list[int]:
    """Sizes of the buffers the pools allocate from now on (other buffers
    come from ``byte_buffer`` as the decoder's modules imported it)."""
    sizes: list[int] = []
    allocate = buffers.byte_buffer

    def counted(size: int) -> np.ndarray:
        sizes.append(size)
        return allocate(size)

    monkeypatch.setattr(buffers, "byte_buffer", counted)
    return sizes


def test_a_given_buffer_is_taken_again_for_a_similar_size(allocations):
    pool = ScratchPool(keep=64 * MiB)
    first = pool.take(3 * MiB + 5)
    assert len(first) >= 3 * MiB + 5 and first.dtype == np.uint8
    pool.give(first)
    again = pool.take(3 * MiB - 1000)  # a little smaller: the same buffer
    assert again.ctypes.data == first.ctypes.data
    assert len(allocations) == 1
    assert pool.idle_bytes == 0


def test_sizes_are_rounded_so_near_sizes_share_buffers(allocations):
    pool = ScratchPool(keep=64 * MiB)
    buffer = pool.take(3_695_501)
    assert len(buffer) == allocations[0] >= 3_695_501
    pool.give(buffer)
    assert pool.take(3_695_502 + 1000).ctypes.data == buffer.ctypes.data


def test_a_much_larger_buffer_is_not_spent_on_a_small_need(allocations):
    pool = ScratchPool(keep=64 * MiB)
    pool.give(pool.take(16 * MiB))
    small = pool.take(1 * MiB)
    assert len(small) < 2 * MiB
    assert pool.idle_bytes >= 16 * MiB  # still there for a large need
    assert len(allocations) == 2


def test_idle_bytes_are_bounded_and_the_oldest_go_first():
    pool = ScratchPool(keep=10 * MiB)
    held = [pool.take(4 * MiB) for _ in range(3)]
    for buffer in held:
        pool.give(buffer)
    assert pool.idle_bytes <= 10 * MiB
    # The oldest went: the last two given are the ones kept.
    kept = {pool.take(4 * MiB).ctypes.data, pool.take(4 * MiB).ctypes.data}
    assert kept == {held[1].ctypes.data, held[2].ctypes.data}
    pool.give(np.zeros(0, dtype=np.uint8))  # nothing to keep
    pool.give(pool.take(11 * MiB))  # larger than all it may keep
    assert pool.idle_bytes == 0


def test_threads_never_hold_the_same_buffer():
    pool = ScratchPool(keep=32 * MiB)
    held: set[int] = set()
    lock = threading.Lock()
    clashes = []

    def work(i: int) -> None:
        for _ in range(200):
            buffer = pool.take(256 * 1024 + i)
            with lock:
                if buffer.ctypes.data in held:
                    clashes.append(buffer.ctypes.data)
                held.add(buffer.ctypes.data)
            with lock:
                held.discard(buffer.ctypes.data)
            pool.give(buffer)

    with ThreadPoolExecutor(8) as threads:
        list(threads.map(work, range(8)))
    assert clashes == []


def test_a_forked_child_starts_with_an_empty_unlocked_pool():
    import os

    pool = ScratchPool(keep=8 * MiB)
    pool.give(pool.take(MiB))
    spare = np.zeros(MiB, dtype=np.uint8)  # the child allocates nothing
    with pool._lock:  # another thread is inside take() or give() at the fork
        pid = os.fork()
        if pid == 0:  # the child: must not wait for a lock nobody will release
            empty = pool.idle_bytes == 0
            pool.give(spare)
            os._exit(0 if empty and pool.take(MiB) is spare else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pool.idle_bytes >= MiB  # the parent keeps its buffers


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """About 6.5 MB of snappy blocks."""
    root = tmp_path_factory.mktemp("scratch")
    base = write_avro(root / "base.avro", 20_000, codec="snappy", block_rows=500).read_bytes()
    path = root / "big.avro"
    path.write_bytes(repeat_blocks(base, 6))
    return path


def test_reads_take_windows_from_the_pool_not_fresh_memory(big_file, allocations):
    """A read's splits hand their windows and decompression buffers on; the
    next read, on new threads, allocates none."""
    expected = jd.read_table(big_file, max_workers=1)
    assert len(jd.plan(big_file, split_size="1 MiB").splits) >= 6
    first = jd.read_table(big_file, max_workers=2, split_size="1 MiB")
    assert _SCRATCH.idle_bytes > 0
    allocations.clear()
    second = jd.read_table(big_file, max_workers=2, split_size="1 MiB")
    assert allocations == []
    assert first.equals(expected) and second.equals(expected)


def test_many_threads_sharing_the_pool_read_exactly(big_file):
    expected = jd.read_table(big_file, max_workers=1)
    with ThreadPoolExecutor(4) as threads:
        tables = list(threads.map(
            lambda size: jd.read_table(big_file, max_workers=3, split_size=size),
            ["1 MiB", "2 MiB", "700 KiB", "3 MiB"] * 2,
        ))  # fmt: skip
    assert all(table.equals(expected) for table in tables)


def test_a_read_stopped_early_gives_its_buffers_back(big_file):
    batches = jd.iter_batches(big_file, max_workers=1, batch_rows=1000)
    next(batches)
    held_before = _SCRATCH.idle_bytes
    batches.close()
    assert _SCRATCH.idle_bytes > held_before
