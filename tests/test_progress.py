"""Progress bars in bytes: the total bar (and each per-file bar) ends at
exactly its total and closes, whatever happens (many files, ``n_rows`` early
stop, a consumer that stops, files without blocks, zero-record blocks);
updates are positive deltas; ``progress=False`` makes no bar and no per-block
callback.

tqdm is replaced by a recording subclass that writes to a string buffer.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tqdm.auto
import tqdm.std

import jetliner_dist as jd
import jetliner_dist.local as local
from blocks import with_empty_blocks, write

SCHEMA = {"type": "record", "name": "R", "fields": [
    {"name": "id", "type": "long"}, {"name": "text", "type": "string"}]}  # fmt: skip
MODES = [True, "total", "per-file"]


class Bars:
    """Every bar made during a test, in creation order."""

    def __init__(self) -> None:
        self.made: list[RecordingBar] = []

    @property
    def total(self) -> "RecordingBar":
        return self.made[0]

    @property
    def per_file(self) -> list["RecordingBar"]:
        return self.made[1:]


@pytest.fixture
def bars(monkeypatch) -> Bars:
    record = Bars()

    class Recording(RecordingBar):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            record.made.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    return record


class RecordingBar(tqdm.std.tqdm):
    def __init__(self, *args, **kwargs):
        kwargs["file"] = io.StringIO()
        super().__init__(*args, **kwargs)
        self.deltas: list[int] = []
        self.closes = 0

    def update(self, n=1):
        self.deltas.append(n)
        return super().update(n)

    def close(self):
        self.closes += 1
        return super().close()


def _check_bar(bar: RecordingBar, total: int) -> None:
    assert bar.total == total
    assert bar.n == total, f"the bar stops at {bar.n} of {total}"
    assert all(isinstance(d, int) and d > 0 for d in bar.deltas), bar.deltas
    assert sum(bar.deltas) == total, "updates are deltas that add up to the total"
    assert bar.closes >= 1 and bar.disable, "the bar is closed"


def _check(bars: Bars, plan, mode, files_read: int | None = None) -> None:
    assert bars.made, "a bar was made"
    _check_bar(bars.total, plan.total_bytes)
    assert bars.total.unit == "B"
    if mode == "per-file":
        sizes = {f.path[-40:]: f.size for f in plan.files}
        assert bars.per_file, "per-file bars under the total bar"
        if files_read is not None:
            assert len(bars.per_file) == files_read
        for bar in bars.per_file:
            _check_bar(bar, sizes[bar.desc.rstrip(": ")])
    else:
        assert len(bars.made) == 1


def _files(folder: Path, counts: list[int], transform=None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for i, count in enumerate(counts):
        data = write(SCHEMA, [{"id": start + j, "text": f"t{j}" * 5} for j in range(count)],
                     codec="deflate", sync_interval=400)  # fmt: skip
        path = folder / f"f{i}.avro"
        path.write_bytes(transform(data) if transform else data)
        paths.append(str(path))
        start += count
    return paths


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_many_files(tmp_path, bars, mode, workers):
    paths = _files(tmp_path, [3000, 1000, 2000, 500])
    options = dict(split_size=2000, max_workers=workers)
    table = jd.read_table(paths, progress=mode, **options)
    assert table.num_rows == 6500
    _check(bars, jd.plan(paths, **options), mode, files_read=4)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_rows", [0, 1, 3500])
def test_n_rows_early_stop_ends_at_100_percent(tmp_path, bars, mode, workers, n_rows):
    paths = _files(tmp_path, [3000, 3000, 3000])
    options = dict(split_size=1500, max_workers=workers)
    assert jd.read_table(paths, n_rows=n_rows, progress=mode, **options).num_rows == n_rows
    _check(bars, jd.plan(paths, **options), mode)


@pytest.mark.parametrize("mode", MODES)
def test_stopped_consumers_close_the_bar(tmp_path, bars, mode):
    paths = _files(tmp_path, [4000, 4000])
    options = dict(split_size=1500, max_workers=2, batch_rows=100)
    plan = jd.plan(paths, **options)
    batches = jd.iter_batches(paths, progress=mode, **options)
    next(batches)
    batches.close()
    _check(bars, plan, mode)
    bars.made.clear()
    with jd.AvroReader(paths, progress=mode, **options) as reader:
        next(reader)
    _check(bars, plan, mode)
    bars.made.clear()
    assert jd.scan_avro(paths, progress=mode, **options).head(3).collect().height == 3
    _check(bars, plan, mode)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_files_without_blocks(tmp_path, bars, mode, workers):
    paths = _files(tmp_path, [0, 2000, 0, 0, 1000, 0])
    options = dict(split_size=1000, max_workers=workers)
    assert jd.read_table(paths, progress=mode, **options).num_rows == 3000
    _check(bars, jd.plan(paths, **options), mode, files_read=6)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_zero_record_blocks(tmp_path, bars, mode, workers):
    paths = _files(tmp_path, [2000, 1], lambda data: with_empty_blocks(data, "deflate"))
    paths += _files(tmp_path / "only-empty", [0], lambda data: with_empty_blocks(data, "deflate"))
    options = dict(split_size=700, max_workers=workers)
    assert jd.read_table(paths, progress=mode, **options).num_rows == 2001
    _check(bars, jd.plan(paths, **options), mode, files_read=3)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_listed_twice_has_two_file_bars(tmp_path, bars, workers):
    (path,) = _files(tmp_path, [3000])
    options = dict(split_size=2000, max_workers=workers)
    assert jd.read_table([path, path], progress="per-file", **options).num_rows == 6000
    _check(bars, jd.plan([path, path], **options), "per-file", files_read=2)


def test_bad_progress_mode_is_rejected(tmp_path):
    (path,) = _files(tmp_path, [10])
    with pytest.raises(ValueError, match="progress"):
        jd.read_table(path, progress="bytes")


def test_no_progress_makes_no_bar_and_no_callback(tmp_path, bars, monkeypatch):
    """The cost of ``progress=False`` is nothing: no tqdm bar is made and the
    decoder gets no per-block callback."""
    paths = _files(tmp_path, [3000, 2000])
    hooks = []
    real = local.read_splits

    def recording(run, spec, **kwargs):
        hooks.extend(kwargs.get("on_bytes") or [None] * len(run))
        return real(run, spec, **kwargs)

    monkeypatch.setattr(local, "read_splits", recording)
    for workers in (1, 2):
        jd.read_table(paths, split_size=2000, max_workers=workers)
        list(jd.iter_batches(paths, split_size=2000, max_workers=workers))
    jd.scan_avro(paths, split_size=2000).collect()
    assert hooks and all(hook is None for hook in hooks)
    assert bars.made == []
    jd.read_table(paths, split_size=2000, progress=True)
    assert hooks[-1] is not None and len(bars.made) == 1


def test_no_progress_does_not_import_tqdm(tmp_path):
    (path,) = _files(tmp_path, [100])
    code = textwrap.dedent(f"""
        import sys
        import jetliner_dist as jd
        jd.read_table({path!r}, max_workers=2)
        jd.read_avro({path!r})
        list(jd.iter_batches({path!r}))
        print("tqdm" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600, check=True)  # fmt: skip
    assert result.stdout.strip() == "False"
