"""The local engine: discovery of many sources, ordered reads on threads, row
index and file path columns, ``n_rows`` early stop, ``AvroReader``,
``count_rows``, schemas and errors from worker threads.

Files here hold records numbered 0, 1, 2... across files, so order and
exactly-once are one comparison with ``range``.
"""

from __future__ import annotations

import _thread
import io
import json
import threading
import time
from pathlib import Path

import fsspec
import polars as pl
import pyarrow as pa
import pytest

import jetliner_dist as jd
import jetliner_dist.local as local
from jetliner_dist import discovery
from blocks import layout, with_empty_blocks, write
from jetliner_dist.errors import (
    JetlinerDistError,
    SchemaError,
    SourceError,
    SyncMarkerError,
    TruncatedError,
)
from jetliner_dist.counting import count_split_rows

SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}
COLORS = ["RED", "GREEN", "BLUE"]
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "avro-corpus"


def _records(start: int, count: int) -> list[dict]:
    return [
        {"id": i, "name": f"row-{i}", "color": COLORS[i % 3], "tags": ["t"] * (i % 4)}
        for i in range(start, start + count)
    ]


def _avro(start: int, count: int, codec: str = "deflate", sync_interval: int = 600) -> bytes:
    return write(SCHEMA, _records(start, count), codec=codec, sync_interval=sync_interval)


def _write_files(folder: Path, counts: list[int], codec: str = "deflate") -> list[Path]:
    """Files part-0.avro, part-1.avro... holding consecutive ids."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for i, count in enumerate(counts):
        path = folder / f"part-{i}.avro"
        path.write_bytes(_avro(start, count, codec))
        paths.append(path)
        start += count
    return paths


def _ids(data) -> list[int]:
    return data["id"].to_list() if isinstance(data, pl.DataFrame) else data.column("id").to_pylist()


@pytest.fixture
def three_files(tmp_path) -> list[Path]:
    """1500 + 0 + 2500 rows; the middle file has no blocks at all."""
    return _write_files(tmp_path / "three", [1500, 0, 2500])


@pytest.fixture
def splits_read(monkeypatch):
    """Records every split the engine hands to a reader, and its progress hook."""
    started: list[tuple] = []
    real = local.read_splits

    def recording(run, spec, **kwargs):
        hooks = kwargs.get("on_bytes") or [None] * len(run)
        started.extend((split.file.path, split.start, hook) for split, hook in zip(run, hooks))
        return real(run, spec, **kwargs)

    monkeypatch.setattr(local, "read_splits", recording)
    return started


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


def test_directory_reads_its_avro_files_sorted(tmp_path):
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "sub").mkdir()
    (folder / "b.avro").write_bytes(_avro(100, 50))
    (folder / "a.avro").write_bytes(_avro(0, 100))
    (folder / "sub" / "c.avro").write_bytes(_avro(150, 25))
    # Not data: hidden, underscore-prefixed, other extensions.
    (folder / ".a.avro.crc").write_bytes(b"junk")
    (folder / ".hidden.avro").write_bytes(b"junk")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "_partial.avro").write_bytes(b"junk")
    (folder / "notes.txt").write_text("not avro")
    table = jd.read_table(str(folder), include_file_paths="path", split_size=2000, max_workers=2)
    assert _ids(table) == list(range(175))
    paths = table.column("path").unique().to_pylist()
    assert paths == [str(folder / "a.avro"), str(folder / "b.avro"), str(folder / "sub" / "c.avro")]
    assert jd.count_rows(folder) == 175


def test_glob_matches_in_sorted_order(tmp_path):
    paths = _write_files(tmp_path, [30, 40, 50])
    (tmp_path / "other.txt").write_text("x")
    table = jd.read_table(str(tmp_path / "part-*.avro"), include_file_paths="path")
    assert _ids(table) == list(range(120))
    assert table.column("path").unique().to_pylist() == [str(p) for p in paths]
    with pytest.raises(SourceError, match="no files match"):
        jd.read_table(str(tmp_path / "nothing-*.avro"))


def test_list_keeps_the_given_order(tmp_path):
    a, b, c = _write_files(tmp_path, [10, 20, 30])
    table = jd.read_table([str(c), a, str(b)], include_file_paths="path")
    assert _ids(table) == list(range(30, 60)) + list(range(10)) + list(range(10, 30))
    assert table.column("path").unique().to_pylist() == [str(c), str(a), str(b)]
    with pytest.raises(SourceError, match="empty"):
        jd.read_table([])


def test_missing_sources_raise_source_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        jd.read_table(str(tmp_path / "missing.avro"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no .avro files"):
        jd.read_table(str(tmp_path / "empty"))
    with pytest.raises(SourceError):
        jd.read_table("memory://jetliner-dist-tests/missing.avro")


@pytest.fixture
def memory_files():
    """Three files on fsspec's memory file system, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = "/jetliner-dist-tests/engine"
    for i, (start, count) in enumerate([(0, 700), (700, 0), (700, 900)]):
        fs.pipe(f"{root}/part-{i}.avro", _avro(start, count))
    fs.pipe(f"{root}/_SUCCESS", b"")
    yield "memory://" + root.lstrip("/")
    fs.rm(root, recursive=True)


@pytest.mark.parametrize("suffix", ["", "/", "/*.avro", "/part-2.avro"])
def test_memory_urls(memory_files, suffix):
    url = memory_files + suffix
    expected = list(range(700, 1600)) if suffix == "/part-2.avro" else list(range(1600))
    table = jd.read_table(url, split_size=3000, max_workers=2, include_file_paths="path")
    assert _ids(table) == expected
    assert all(p.startswith("memory://") for p in table.column("path").unique().to_pylist())
    assert jd.count_rows(url) == len(expected)
    assert jd.read_avro_schema(url) == jd.read_avro(url).schema


def test_file_urls(tmp_path):
    paths = _write_files(tmp_path, [300, 200])
    for url in (f"file://{tmp_path}", f"file://{tmp_path}/*.avro", [f"file://{p}" for p in paths]):
        table = jd.read_table(url, split_size=2000, max_workers=2)
        assert _ids(table) == list(range(500))
        assert jd.count_rows(url) == 500


def _in_memory(data: bytes, kind: str):
    return {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "BytesIO": io.BytesIO(data),
    }[kind]


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "BytesIO"])
@pytest.mark.parametrize("workers", [1, 2])
def test_in_memory_sources(kind, workers):
    data = _avro(0, 3000)
    source = _in_memory(data, kind)
    table = jd.read_table(source, split_size=2000, max_workers=workers, include_file_paths="path")
    assert _ids(table) == list(range(3000))
    assert len(jd.plan(data, split_size=2000).splits) >= 8
    assert jd.count_rows(_in_memory(data, kind)) == 3000


@pytest.mark.parametrize("workers", [1, 2])
def test_open_file_object_source(tmp_path, workers):
    """A real file object, read by several threads: each read must get its
    own bytes (seek + read on one shared object is not atomic)."""
    path = tmp_path / "f.avro"
    path.write_bytes(_avro(0, 20_000, sync_interval=2000))
    for _ in range(3):
        with path.open("rb") as f:
            table = jd.read_table(f, split_size=8000, max_workers=workers)
        assert _ids(table) == list(range(20_000))


def test_lists_of_in_memory_sources_name_each(tmp_path):
    path = tmp_path / "c.avro"
    path.write_bytes(_avro(30, 5))
    sources = [_avro(0, 10), io.BytesIO(_avro(10, 20)), str(path), _avro(35, 5)]
    table = jd.read_table(sources, include_file_paths="path", max_workers=2)
    assert _ids(table) == list(range(40))
    names = table.column("path").unique().to_pylist()
    assert len(names) == 4 and names[0] == "<bytes>" and names[2] == str(path)


# ---------------------------------------------------------------------------
# Order, row index, file paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_row_index_and_paths_across_splits_and_files(three_files, workers):
    plan = jd.plan([str(p) for p in three_files], split_size=1500)
    assert len(plan.splits) > 10
    options = dict(split_size=1500, max_workers=workers, row_index_name="idx",
                   include_file_paths="path")  # fmt: skip
    sources = [str(p) for p in three_files]
    expected_paths = [str(three_files[0])] * 1500 + [str(three_files[2])] * 2500

    table = jd.read_table(sources, **options)
    assert table.column_names == ["idx", "id", "name", "color", "tags", "path"]
    assert table.schema.field("idx").type == pa.uint32()
    assert table.column("idx").to_pylist() == _ids(table) == list(range(4000))
    assert table.column("path").to_pylist() == expected_paths

    frame = jd.read_avro(sources, **options)
    assert frame.columns[0] == "idx" and frame.columns[-1] == "path"
    assert frame.schema["idx"] == pl.UInt32 and frame.schema["color"] == pl.Enum(COLORS)
    assert frame["idx"].to_list() == list(range(4000))
    assert frame.drop("idx", "path").equals(pl.from_arrow(table.drop(["idx", "path"])).cast(
        frame.drop("idx", "path").schema))

    batches = list(jd.iter_batches(sources, batch_rows=333, **options))
    streamed = pa.Table.from_batches(batches)
    assert streamed.column("idx").to_pylist() == list(range(4000))
    assert streamed.column("path").to_pylist() == expected_paths


def test_one_and_two_workers_give_equal_results(three_files):
    sources = [str(p) for p in three_files]
    for columns in (None, ["tags", "id"]):
        one = jd.read_table(sources, columns=columns, split_size=1000, max_workers=1)
        two = jd.read_table(sources, columns=columns, split_size=1000, max_workers=2)
        default = jd.read_table(sources, columns=columns)
        assert one.equals(two) and one.equals(default)
        assert jd.read_avro(sources, columns=columns, max_workers=1).equals(
            jd.read_avro(sources, columns=columns, split_size=1000, max_workers=2))


@pytest.mark.parametrize("batch_rows", [1, 64, 1000])
def test_iter_batches_are_bounded(three_files, batch_rows):
    batches = list(jd.iter_batches([str(p) for p in three_files], batch_rows=batch_rows,
                                   split_size=5000, max_workers=2))
    assert all(b.num_rows <= batch_rows for b in batches)
    assert sum(b.num_rows for b in batches) == 4000
    assert len({b.schema for b in batches}) == 1


# ---------------------------------------------------------------------------
# n_rows
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_rows", [0, 1, 599, 600, 601, 1499, 1500, 1501, 3999, 4000, 4001, 10**9])
@pytest.mark.parametrize("workers", [1, 2])
def test_n_rows_across_splits_and_files(three_files, n_rows, workers):
    sources = [str(p) for p in three_files]
    expected = list(range(min(n_rows, 4000)))
    options = dict(n_rows=n_rows, split_size=1200, max_workers=workers, row_index_name="idx")
    table = jd.read_table(sources, **options)
    assert _ids(table) == table.column("idx").to_pylist() == expected
    streamed = pa.Table.from_batches(list(jd.iter_batches(sources, batch_rows=250, **options)),
                                     schema=table.schema)
    assert _ids(streamed) == expected
    frame = jd.read_avro(sources, **options)
    assert frame["idx"].to_list() == frame["id"].to_list() == expected
    assert frame.schema["idx"] == pl.UInt32


def test_small_files_are_read_in_runs_on_each_thread(tmp_path, monkeypatch):
    """With many small files, a thread reads a run of consecutive files
    (about ``split_size`` bytes), not one file per hand-off."""
    paths = [str(p) for p in _write_files(tmp_path, [60] * 40)]
    handed: list[int] = []
    real_gathered = local._gathered

    def spy(tasks, read, workers, n_rows):
        handed.extend(len(task) for task in tasks)
        return real_gathered(tasks, read, workers, n_rows)

    monkeypatch.setattr(local, "_gathered", spy)
    ran_on: dict[str, int] = {}
    real_read = local.read_splits

    def recording(run, spec, **kwargs):
        ran_on.update((split.file.path, threading.get_ident()) for split in run)
        return real_read(run, spec, **kwargs)

    monkeypatch.setattr(local, "read_splits", recording)
    run_bytes = 8 * max(Path(p).stat().st_size for p in paths)
    table = jd.read_table(paths, max_workers=2, split_size=run_bytes)
    assert _ids(table) == list(range(40 * 60))
    assert sum(handed) == 40 and 4 <= len(handed) < 40
    first = 0
    for size in handed:  # the files of one run were read by one thread
        assert len({ran_on[p] for p in paths[first : first + size]}) == 1
        first += size
    # Objects in a store are one request each (once planning has not kept
    # their bytes): each is a task of its own, so threads keep several
    # requests in flight.
    monkeypatch.setattr(discovery, "FETCHED_BYTES_KEPT", 0)
    fs = fsspec.filesystem("memory")
    for i, path in enumerate(paths):
        fs.pipe(f"/runs/{i:02d}.avro", Path(path).read_bytes())
    handed.clear()
    table = jd.read_table("memory://runs/", max_workers=2, split_size=run_bytes)
    assert _ids(table) == list(range(40 * 60))
    assert handed == [1] * 40


def test_default_threads_follow_the_files_size(tmp_path, monkeypatch):
    """Files averaging under 256 KiB are read on one thread unless
    ``max_workers`` says otherwise: their per-file work holds the GIL."""
    small = [str(p) for p in _write_files(tmp_path / "small", [50] * 20)]
    assert local._prepare(small).workers == 1
    assert local._prepare(small, max_workers=2).workers == 2
    (big,) = _write_files(tmp_path / "big", [20_000], codec="null")
    assert big.stat().st_size > local.GIL_BOUND_SPLIT_SIZE
    assert local._prepare(str(big)).workers == local.default_max_workers()
    # Small objects in a store wait on the network with the GIL released;
    # those planning fetched whole are at hand like local files.
    fs = fsspec.filesystem("memory")
    for i, path in enumerate(small):
        fs.pipe(f"/gil-bound/{i}.avro", Path(path).read_bytes())
    assert local._prepare("memory://gil-bound/").workers == 1
    monkeypatch.setattr(discovery, "FETCHED_BYTES_KEPT", 0)
    assert local._prepare("memory://gil-bound/").workers == local.default_max_workers()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("streaming", [False, True])
def test_n_rows_stops_early(tmp_path, splits_read, workers, streaming):
    (path,) = _write_files(tmp_path, [20_000])
    plan = jd.plan(str(path), split_size=4000)
    assert len(plan.splits) > 30
    options = dict(n_rows=5, split_size=4000, max_workers=workers)
    if streaming:
        rows = sum(b.num_rows for b in jd.iter_batches(str(path), **options))
    else:
        rows = jd.read_table(str(path), **options).num_rows
    assert rows == 5
    if workers == 1:
        assert len(splits_read) == 1
    else:
        # A bounded number of splits ahead of the one consumed, then cancelled.
        assert 1 <= len(splits_read) <= 4 * workers + 1 < len(plan.splits)


def test_n_rows_must_be_a_count(three_files):
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="n_rows"):
            jd.read_table(str(three_files[0]), n_rows=bad)


# ---------------------------------------------------------------------------
# AvroReader
# ---------------------------------------------------------------------------


def test_avro_reader_knows_its_schema_before_reading(three_files, splits_read):
    sources = [str(p) for p in three_files]
    with jd.AvroReader(sources, batch_rows=700, row_index_name="i", include_file_paths="f",
                       split_size=3000, max_workers=2) as reader:  # fmt: skip
        assert reader.schema == pl.Schema({"i": pl.UInt32, "id": pl.Int64, "name": pl.String,
                                           "color": pl.Enum(COLORS), "tags": pl.List(pl.String),
                                           "f": pl.String})  # fmt: skip
        assert reader.arrow_schema.names == ["i", "id", "name", "color", "tags", "f"]
        assert reader.rows_read == 0 and splits_read == []
        frames = list(reader)
        assert all(isinstance(f, pl.DataFrame) and f.height <= 700 for f in frames)
        assert all(f.schema == reader.schema for f in frames)
        assert reader.rows_read == 4000
    full = pl.concat(frames)
    assert full["i"].to_list() == full["id"].to_list() == list(range(4000))


def test_avro_reader_n_rows_and_rows_read(three_files):
    with jd.AvroReader(str(three_files[2]), batch_rows=1000, n_rows=2500 - 1) as reader:
        heights = [f.height for f in reader]
        assert heights == [1000, 1000, 499] and reader.rows_read == 2499


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("jetliner-dist")]


@pytest.fixture
def threads_before() -> int:
    """Python threads running (beside the main thread) when the test starts."""
    return _thread._count()


def _threads_left(before: int) -> int:
    """Threads started since ``before`` was counted that are still running.

    Table reads run their helpers as raw threads, which ``threading`` does not
    list, so all Python threads are counted; a helper that has finished its
    work exits a moment later, which is waited for.
    """
    deadline = time.monotonic() + 5
    while _thread._count() > before and time.monotonic() < deadline:
        time.sleep(0.001)
    return max(0, _thread._count() - before)


def test_avro_reader_close_cancels(tmp_path):
    (path,) = _write_files(tmp_path, [30_000])
    reader = jd.AvroReader(str(path), batch_rows=100, split_size=4000, max_workers=2)
    first = next(reader)
    assert first.height == 100 and reader.rows_read == 100
    assert _engine_threads(), "splits are read on worker threads"
    reader.close()
    assert _engine_threads() == [], "close() waits for the cancelled workers"
    with pytest.raises(StopIteration):
        next(reader)
    with jd.AvroReader(str(path), split_size=4000, max_workers=2) as reader:
        next(reader)
    assert _engine_threads() == []


# ---------------------------------------------------------------------------
# count_rows and schemas
# ---------------------------------------------------------------------------


def _corpus_valid() -> list[dict]:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    return [e for e in manifest if e["kind"] == "valid"]


def test_count_rows_on_the_corpus():
    entries = _corpus_valid()
    assert len(entries) > 100
    for entry in entries:
        assert jd.count_rows(str(CORPUS / entry["file"])) == entry["records"], entry["file"]


def test_count_rows_of_multi_file_sources(tmp_path, three_files):
    sources = [str(p) for p in three_files]
    assert jd.count_rows(sources) == 4000
    assert jd.count_rows(str(three_files[0].parent)) == 4000
    assert jd.count_rows(str(three_files[0].parent / "*.avro")) == 4000
    data = three_files[2].read_bytes()
    assert jd.count_rows([data, io.BytesIO(data), sources[0]]) == 2500 + 2500 + 1500
    assert jd.count_rows(with_empty_blocks(data, "deflate")) == 2500
    assert jd.count_rows(str(three_files[1])) == 0


def _count_splits(source, split_size: int) -> int:
    prepared = local._prepare(source, split_size=split_size)
    return sum(count_split_rows(prepared.found.source(s.file, None), s) for s in prepared.plan.splits)


@pytest.mark.parametrize("kind", ["path", "bytes"])
def test_counting_splits_finds_corrupt_and_truncated_blocks(tmp_path, kind):
    """Counting reads block headers and sync markers only, yet a broken
    marker or a cut-off file is a typed error with its place, never a wrong
    count; the walk is checked split by split, boundaries included."""
    data = _avro(0, 6000)
    blocks = layout(data).blocks
    path = tmp_path / "rows.avro"

    def source(payload: bytes):
        path.write_bytes(payload)
        return str(path) if kind == "path" else payload

    for split_size in (1, 1000, 5000, len(data)):
        assert _count_splits(source(data), split_size) == 6000
    name = str(path) if kind == "path" else "<bytes>"
    for split_size in (1000, len(data)):
        with pytest.raises(SyncMarkerError) as info:
            _count_splits(source(_corrupt_block(data, 5)), split_size)
        assert info.value.path == name
        assert blocks[5].start <= info.value.offset <= blocks[5].end
    with pytest.raises(SyncMarkerError, match="byte offset"):
        jd.count_rows(source(_corrupt_block(data, 5)))
    for cut in (40, blocks[3].start + 3, blocks[3].marker + 5):
        with pytest.raises(TruncatedError) as info:
            jd.count_rows(source(data[: len(data) - cut] if cut == 40 else data[:cut]))
        assert info.value.path == name and info.value.offset is not None


def test_a_failed_read_while_counting_is_a_source_error(tmp_path):
    """The header walk's reads can fail (here: the path became a directory,
    which opens but cannot be read): a SourceError naming the file."""
    import dataclasses

    from jetliner_dist.planning import Split
    from jetliner_dist.sources import LocalFileSource

    path = tmp_path / "rows.avro"
    path.write_bytes(_avro(0, 100))
    file = jd.plan(str(path)).files[0]
    folder = tmp_path / "now-a-folder"
    folder.mkdir()
    moved = dataclasses.replace(file, path=str(folder))
    with pytest.raises(SourceError) as info:
        count_split_rows(LocalFileSource(str(folder), file.size), Split(moved, 0, file.size, 0, 0))
    assert info.value.path == str(folder) and info.value.offset == file.header_end


def test_counting_without_pread_frames_windows(tmp_path, monkeypatch):
    """Where the C library's pread cannot be called, local files are counted
    like other sources, from framed windows: same counts, same errors."""
    import jetliner_dist.counting as counting

    monkeypatch.setattr(counting, "_libc_pread", lambda: None)
    data = _avro(0, 6000)
    path = tmp_path / "rows.avro"
    path.write_bytes(data)
    for split_size in (1, 1000, len(data)):
        assert _count_splits(str(path), split_size) == 6000
    path.write_bytes(_corrupt_block(data, 5))
    with pytest.raises(SyncMarkerError, match="rows.avro"):
        _count_splits(str(path), 1000)


def test_read_avro_schema_matches_the_read(three_files):
    source = str(three_files[0])
    schema = jd.read_avro_schema(source)
    assert schema == jd.read_avro(source).schema
    assert schema["color"] == pl.Enum(COLORS)
    assert jd.read_avro_schema(three_files[0].read_bytes()) == schema
    assert jd.plan(source).schema == schema


def test_different_schemas_name_both_files(tmp_path):
    a, b = tmp_path / "a.avro", tmp_path / "b.avro"
    a.write_bytes(_avro(0, 10))
    other = json.loads(json.dumps(SCHEMA))
    other["fields"][2]["type"]["symbols"] = ["RED", "GREEN", "BLUE", "PINK"]
    b.write_bytes(write(other, [{**r, "color": "PINK"} for r in _records(10, 5)]))
    with pytest.raises(SchemaError) as info:
        jd.read_table(str(tmp_path))
    message = str(info.value)
    assert str(a) in message and str(b) in message
    assert "$.fields[2].type.symbols" in message
    with pytest.raises(SchemaError):
        jd.count_rows([str(a), str(b)])


def test_options_are_checked_before_reading(three_files):
    source = str(three_files[0])
    with pytest.raises(SchemaError, match="existing column"):
        jd.read_table(source, include_file_paths="name")
    with pytest.raises(TypeError):
        jd.read_table(source, columns="id")
    with pytest.raises(SchemaError):
        jd.read_table(source, columns=["nope"])
    for option in ("max_workers", "batch_rows"):
        with pytest.raises(ValueError, match=option):
            jd.read_table(source, **{option: 0})
    with pytest.raises(ValueError, match="size"):
        jd.read_table(source, split_size="lots")


# ---------------------------------------------------------------------------
# Errors from worker threads
# ---------------------------------------------------------------------------


def _corrupt_block(data: bytes, *indices: int) -> bytes:
    """``data`` with the trailing sync marker of each block in ``indices`` overwritten."""
    blocks = layout(data).blocks
    broken = bytearray(data)
    for index in indices:
        broken[blocks[index].end - 16 : blocks[index].end] = bytes(16)
    return bytes(broken)


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_errors_surface_in_order_with_their_location(tmp_path, workers, threads_before):
    good, bad = tmp_path / "a-good.avro", tmp_path / "b-bad.avro"
    good.write_bytes(_avro(0, 6000))
    data = _avro(6000, 6000)
    blocks = layout(data).blocks
    bad.write_bytes(_corrupt_block(data, 5))
    block, before = blocks[5], sum(b.count for b in blocks[:5])
    yielded: list[int] = []
    with pytest.raises(SyncMarkerError) as info:
        for batch in jd.iter_batches([str(good), str(bad)], batch_rows=100, split_size=2000,
                                     max_workers=workers):
            yielded.extend(batch.column("id").to_pylist())
    error = info.value
    assert error.path == str(bad)
    assert block.start <= error.offset <= block.end
    assert error.block in (None, 5)
    assert str(bad) in str(error) and "byte offset" in str(error)
    # Every row before the bad block's split came first, in order.
    assert yielded == list(range(len(yielded)))
    assert 6000 <= len(yielded) <= 6000 + before + block.count
    with pytest.raises(SyncMarkerError, match="b-bad.avro"):
        jd.read_table([str(good), str(bad)], split_size=2000, max_workers=workers)
    assert _engine_threads() == [] and _threads_left(threads_before) == 0


@pytest.mark.parametrize("workers", [2, 3])
def test_a_table_read_raises_the_first_error_in_file_order(tmp_path, monkeypatch, workers,
                                                           threads_before):
    """Threads finish splits out of order: here a late split fails first,
    while the split with the earlier corrupt block waits. The read raises
    the earlier error, as a sequential read would."""
    data = _avro(0, 6000)
    blocks = layout(data).blocks
    early, late = blocks[3], blocks[-2]
    path = tmp_path / "two-bad.avro"
    path.write_bytes(_corrupt_block(data, 3, len(blocks) - 2))
    real = local.read_splits
    late_failed = threading.Event()

    def noting_failure(batches):
        try:
            yield from batches
        except SyncMarkerError:
            late_failed.set()
            raise

    def slow_start(run, spec, **kwargs):
        if run[0].start <= early.start < run[-1].end:
            assert late_failed.wait(timeout=60), "the late split never failed"
        batches = real(run, spec, **kwargs)
        return noting_failure(batches) if run[0].start <= late.start < run[-1].end else batches

    monkeypatch.setattr(local, "read_splits", slow_start)
    with pytest.raises(SyncMarkerError) as info:
        jd.read_table(str(path), split_size=2000, max_workers=workers)
    assert early.start <= info.value.offset <= early.end < late.start
    assert _threads_left(threads_before) == 0


def test_an_interrupt_on_any_thread_ends_a_table_read(tmp_path, monkeypatch, threads_before):
    """A KeyboardInterrupt (or SystemExit) in a split ends the read with it,
    whichever thread met it; no rows are returned, and the other thread has
    finished its split before the read raises (no thread is left)."""
    (path,) = _write_files(tmp_path, [30_000])
    splits = jd.plan(str(path), split_size=4000).splits
    real = local.read_splits
    running = []  # splits being read right now
    for victim in (splits[0], splits[len(splits) // 2]):

        def interrupted(run, spec, victim=victim, **kwargs):
            if run[0] == victim:
                raise KeyboardInterrupt
            running.append(run[0])
            try:
                time.sleep(0.05)  # still reading when the other thread is interrupted
                yield from real(run, spec, **kwargs)
            finally:
                running.remove(run[0])

        monkeypatch.setattr(local, "read_splits", interrupted)
        with pytest.raises(KeyboardInterrupt):
            jd.read_table(str(path), split_size=4000, max_workers=2)
        assert running == []
        assert _threads_left(threads_before) == 0


def test_a_table_is_read_on_the_calling_thread_too(tmp_path, monkeypatch, threads_before):
    """Reading a whole table, the calling thread decodes splits beside
    ``max_workers - 1`` others; streaming hands every split to workers."""
    (path,) = _write_files(tmp_path, [30_000])
    readers: list[int] = []
    real = local.read_splits

    def recording(run, spec, **kwargs):
        readers.append(threading.get_ident())
        return real(run, spec, **kwargs)

    monkeypatch.setattr(local, "read_splits", recording)
    table = jd.read_table(str(path), split_size=4000, max_workers=3)
    assert _ids(table) == list(range(30_000))
    assert len(readers) == len(jd.plan(str(path), split_size=4000).splits)
    assert threading.get_ident() in readers and 2 <= len(set(readers)) <= 3
    readers.clear()
    batches = list(jd.iter_batches(str(path), split_size=4000, max_workers=3))
    assert sum(b.num_rows for b in batches) == 30_000
    assert threading.get_ident() not in readers and len(set(readers)) <= 3
    assert _engine_threads() == [] and _threads_left(threads_before) == 0


def test_every_error_is_a_jetliner_dist_error(tmp_path):
    path = tmp_path / "trunc.avro"
    data = _avro(0, 3000)
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(JetlinerDistError) as info:
        jd.read_table(str(path), split_size=1000, max_workers=2)
    assert info.value.path == str(path) and info.value.offset is not None
