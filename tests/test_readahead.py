"""Read-ahead for object stores: windows fetched in the background, joined
without refetching, errors raised where the bytes are needed."""

from __future__ import annotations

import threading

import fsspec
import pyarrow as pa
import pytest

import jetliner_dist as jd
from blocks import write
from jetliner_dist import reading
from jetliner_dist.errors import SourceError
from jetliner_dist.readahead import ReadAhead
from jetliner_dist.sources import FsspecSource

DATA = bytes(range(256)) * 64  # 16 KiB
WINDOW = 1000


class Recorder:
    """A fetch over ``DATA`` that records each range and the thread it ran on."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[int, int, str]] = []
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def __call__(self, start: int, end: int) -> bytes:
        with self.lock:
            self.calls.append((start, end, threading.current_thread().name))
        if self.fail_at is not None and start <= self.fail_at < end:
            raise SourceError("injected failure", path="mem://x", offset=start)
        return DATA[start:end]

    def ranges(self) -> list[tuple[int, int]]:
        return [(start, end) for start, end, _ in self.calls]


def test_the_next_window_is_fetched_in_the_background_and_joined():
    fetch = Recorder()
    ahead = ReadAhead(fetch, WINDOW, stop=5000)
    first = ahead.window(0, WINDOW, b"", 0, limit=6000)
    assert bytes(first) == DATA[:WINDOW]
    # The window ends inside a block that starts at 900: the next window
    # starts there, from bytes in hand plus the range fetched ahead.
    second = ahead.window(900, 900 + WINDOW, first, 0, limit=6000)
    assert bytes(second) == DATA[900 : 2 * WINDOW]
    assert fetch.ranges()[:2] == [(0, WINDOW), (WINDOW, 2 * WINDOW)]
    assert fetch.calls[1][2] == "jetliner-dist-read-ahead"
    # No byte is fetched twice.
    ranges = fetch.ranges()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ranges, ranges[1:]))


def test_a_block_longer_than_the_window_fetches_the_rest():
    fetch = Recorder()
    ahead = ReadAhead(fetch, WINDOW, stop=8000)
    first = ahead.window(0, WINDOW, b"", 0, limit=9000)
    second = ahead.window(500, 500 + 3000, first, 0, limit=9000)
    assert bytes(second) == DATA[500:3500]
    assert fetch.ranges()[:3] == [(0, 1000), (1000, 2000), (2000, 3500)]


def test_nothing_is_fetched_ahead_past_the_splits_end():
    fetch = Recorder()
    ahead = ReadAhead(fetch, WINDOW, stop=1500)
    first = ahead.window(0, WINDOW, b"", 0, limit=1800)
    second = ahead.window(1000, 1800, first, 0, limit=1800)
    assert bytes(second) == DATA[1000:1800]  # fetched ahead, up to the limit
    third = ahead.window(1800, 2200, second, 1000, limit=2200)
    assert bytes(third) == DATA[1800:2200]
    # After the split's end (1500) nothing more was started ahead.
    assert fetch.ranges() == [(0, 1000), (1000, 1800), (1800, 2200)]


def test_a_failed_fetch_ahead_raises_where_its_bytes_are_needed():
    fetch = Recorder(fail_at=1500)
    ahead = ReadAhead(fetch, WINDOW, stop=5000)
    first = ahead.window(0, WINDOW, b"", 0, limit=6000)  # starts [1000, 2000) ahead: fails
    with pytest.raises(SourceError, match="injected failure"):
        ahead.window(950, 1950, first, 0, limit=6000)


def test_a_window_elsewhere_is_fetched_directly():
    fetch = Recorder()
    ahead = ReadAhead(fetch, WINDOW, stop=5000)
    first = ahead.window(0, WINDOW, b"", 0, limit=6000)
    assert bytes(ahead.window(3000, 3500, first, 0, limit=6000)) == DATA[3000:3500]
    assert (3000, 3500, "MainThread") in fetch.calls


# -- through the reader --------------------------------------------------------


@pytest.fixture
def small_windows(monkeypatch):
    """Remote sources read 64 KiB per request, so small files span many windows."""
    monkeypatch.setattr(FsspecSource, "read_size", 64 * 1024)
    fetched: list[tuple[int, int, str]] = []
    real = FsspecSource.fetch

    def recording(self, start, end):
        fetched.append((start, end, threading.current_thread().name))
        return real(self, start, end)

    monkeypatch.setattr(FsspecSource, "fetch", recording)
    return fetched


SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
}


def _remote_copy(name: str, rows: int, codec: str = "deflate") -> tuple[bytes, str]:
    """An Avro file of ``rows`` rows and its copy on fsspec's memory:// file system."""
    data = write(SCHEMA, [{"id": i, "name": f"row-{i}"} for i in range(rows)],
                 codec=codec, sync_interval=4000)  # fmt: skip
    url = f"memory://readahead/{name}.avro"
    with fsspec.open(url, "wb") as out:
        out.write(data)
    return data, url


@pytest.mark.parametrize("codec", ["null", "snappy", "deflate"])
@pytest.mark.parametrize("split_size", [None, 150_000, 1_000_000])
def test_remote_reads_with_read_ahead_equal_local_reads(small_windows, codec, split_size):
    data, url = _remote_copy(f"{codec}-{split_size}", 100_000, codec)
    expected = jd.read_table(data)
    table = jd.read_table(url, split_size=split_size, batch_rows=7_000)
    assert table.equals(expected)
    assert any(name == "jetliner-dist-read-ahead" for _, _, name in small_windows)
    streamed = pa.Table.from_batches(list(jd.iter_batches(url, split_size=split_size)))
    assert streamed.equals(expected)
    assert jd.count_rows(url) == expected.num_rows == 100_000


def test_each_split_fetches_its_bytes_once(small_windows):
    _, url = _remote_copy("once", 60_000, "null")
    plan = jd.plan(url, split_size=200_000)
    assert len(plan.splits) >= 2
    for split in plan.splits:
        del small_windows[:]
        batches = list(reading.read_split(split, plan.spec))
        assert sum(b.num_rows for b in batches) > 0
        ranges = sorted((start, end) for start, end, _ in small_windows)
        assert len(ranges) >= 3, "the split spans several windows"
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ranges, ranges[1:])), ranges


def test_joined_windows_are_one_buffer_of_both():
    import numpy as np

    from jetliner_dist.readahead import joined

    for head in (b"", DATA[:10], memoryview(DATA)[:300], np.frombuffer(DATA[:77], np.uint8)):
        for tail in (b"", DATA[300:999], np.frombuffer(DATA[5:5000], np.uint8)):
            out = joined(head, tail)
            assert out.dtype == np.uint8
            assert bytes(out) == bytes(head) + bytes(tail)
