"""``jetliner_dist.dask`` against the local engine (``jd.read_table``), on the
threaded scheduler, the processes scheduler and a real ``distributed``
LocalCluster with two worker processes.

- every partition layout gives the rows of the local engine, on the corpus, on
  property-generated files (all codecs, many blocks) and on many small files;
- the graph: meta from the plan (no data read), projection pushed into the
  read, ``head()`` reads one partition, small pickled tasks;
- filters, the path column, Arrow / Polars partitions;
- a worker process killed mid-read: the result is still exact;
- the example job runs end to end.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import io
import json
import logging
import math
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import fastavro  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

import jetliner_dist as jd  # noqa: E402
import jetliner_dist.dask as jdd  # noqa: E402
from strategies import CODECS, avro_cases  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "avro-corpus"
VALID = [e for e in json.loads((CORPUS / "manifest.json").read_text()) if e["kind"] == "valid"]

SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": ["null", "double"]},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "shade", "type": ["null", {"type": "enum", "name": "Shade", "symbols": ["DARK", "LIGHT"]}]},
        {"name": "tags", "type": {"type": "array", "items": "int"}},
        {"name": "attrs", "type": {"type": "map", "values": "string"}},
        {"name": "point", "type": {"type": "record", "name": "Point",
                                   "fields": [{"name": "x", "type": "float"}, {"name": "y", "type": "float"}]}},
        {"name": "blob", "type": "bytes"},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}  # fmt: skip
COLORS = SCHEMA["fields"][3]["type"]["symbols"]


def _row(i: int) -> dict:
    return {
        "id": i,
        "name": f"name_{i % 997}",
        "score": None if i % 7 == 0 else i / 3,
        "color": COLORS[i % 3],
        "shade": None if i % 5 == 0 else ("DARK", "LIGHT")[i % 2],
        "tags": list(range(i % 4)),
        "attrs": {f"k{j}": str(i) for j in range(i % 3)},
        "point": {"x": float(i), "y": -float(i)},
        "blob": bytes([i % 256]) * (i % 5),
        "day": i % 20_000,
    }


def _write(path: Path, rows: range, codec: str = "deflate", sync_interval: int = 2_000) -> Path:
    with open(path, "wb") as out:
        fastavro.writer(out, SCHEMA, map(_row, rows), codec=codec, sync_interval=sync_interval)
    return path


# ---------------------------------------------------------------------------
# Comparing a dask result with the local engine
# ---------------------------------------------------------------------------


def _nan_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [_nan_safe(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_nan_safe(v) for v in value)
    if isinstance(value, dict):
        return {k: _nan_safe(v) for k, v in value.items()}
    return value


def assert_tables_equal(actual: pa.Table, expected: pa.Table, context: str = "") -> None:
    assert actual.column_names == expected.column_names, context
    assert actual.num_rows == expected.num_rows, context
    for name in expected.column_names:
        a = actual.column(name).cast(expected.schema.field(name).type).combine_chunks()
        e = expected.column(name).combine_chunks()
        if not a.equals(e):  # NaN != NaN in Arrow's equality: compare values
            assert _nan_safe(a.to_pylist()) == _nan_safe(e.to_pylist()), f"{context}: {name}"


def assert_frame_matches(frame: pd.DataFrame, expected: pa.Table, context: str = "") -> None:
    """A dask result holds the local engine's rows, in order, as pandas."""
    assert list(frame.columns) == expected.column_names, context
    assert len(frame) == expected.num_rows, context
    if expected.num_columns:
        actual = pa.Table.from_pandas(frame, preserve_index=False)
        assert_tables_equal(actual, expected, context)


def _partition_splits(df) -> list[tuple]:
    """The splits each partition of a ``read_avro`` frame reads."""
    (read,) = [e for e in df.expr.walk() if type(e).__name__ == "FromMapProjectable"]
    return [partition.splits for partition in read.iterables[0]]


def _read_all(paths, scheduler, **options):
    frames = [jdd.read_avro(str(p), **options) for p in paths]
    return dask.compute(*frames, scheduler=scheduler)


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Three files of one schema (many blocks, three codecs) in a directory."""
    root = tmp_path_factory.mktemp("dask-data")
    _write(root / "a.avro", range(0, 12_000), "deflate")
    _write(root / "b.avro", range(12_000, 20_000), "snappy", sync_interval=500)
    _write(root / "c.avro", range(20_000, 20_050), "null")
    return root


@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> Path:
    """2,000 small files: many splits for planning, grouping and pickle sizes."""
    root = tmp_path_factory.mktemp("dask-small")
    one = io.BytesIO()
    fastavro.writer(one, SCHEMA, map(_row, range(3)), sync_marker=b"0123456789abcdef")
    for i in range(2_000):
        (root / f"part-{i:04d}.avro").write_bytes(one.getvalue())
    return root


@pytest.fixture(scope="module")
def property_files(tmp_path_factory) -> list[Path]:
    """Files of random schemas and records (tests/strategies.py), every codec,
    mostly many tiny blocks; drawn deterministically."""
    root = tmp_path_factory.mktemp("dask-property")
    cases = []

    @settings(max_examples=30, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(avro_cases(max_records=40))
    def collect(case):
        cases.append(case)

    collect()
    paths = []
    for i, case in enumerate(cases):
        path = root / f"case-{i:02d}.avro"
        with open(path, "wb") as out:
            fastavro.writer(out, case.schema, case.records, codec=CODECS[i % len(CODECS)],
                            sync_interval=1 + (i * 37) % 300)  # fmt: skip
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def pool():
    """A process pool for ``scheduler="processes"`` (spawned once for the module)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        yield executor


@pytest.fixture(scope="module")
def client():
    """A real cluster: two worker processes, one thread each."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as c:  # fmt: skip
        yield c


def _corpus(step: int = 1) -> list[Path]:
    return [CORPUS / e["file"] for e in VALID[::step]]


# ---------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------


def test_public_names():
    assert jdd.__all__ == ["read_avro", "read_avro_partitions"]


def test_import_jetliner_dist_does_not_import_dask():
    code = "import sys, jetliner_dist as jd; jd.plan; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_without_dask_the_import_error_names_the_extra():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "try:\n    import jetliner_dist.dask\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                         capture_output=True, text=True).stdout  # fmt: skip
    assert "pip install jetliner-dist[dask]" in out


# ---------------------------------------------------------------------------
# The graph: meta, partitions, projection, head, pickle sizes
# ---------------------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch):
    """Records the (split, spec) of every split this process reads."""
    calls = []
    real = jdd.read_splits

    def recording(splits, spec, **kwargs):
        calls.extend((split, spec) for split in splits)
        return real(splits, spec, **kwargs)

    monkeypatch.setattr(jdd, "read_splits", recording)
    return calls


def test_graph_and_meta_come_from_the_plan_without_reading(data_dir, reads):
    df = jdd.read_avro(str(data_dir), blocksize="16 KiB", include_path_column=True)
    df.optimize().__dask_graph__()
    assert reads == []
    splits = jd.plan(str(data_dir), split_size="16 KiB").splits
    partitions = _partition_splits(df)
    assert [s for group in partitions for s in group] == list(splits)
    assert len(splits) - 1 <= df.npartitions == len(partitions)  # c.avro (tiny) joins a neighbour
    dtypes = df.dtypes
    assert dtypes["id"] == pd.ArrowDtype(pa.int64())
    assert dtypes["score"] == pd.ArrowDtype(pa.float64())
    assert dtypes["color"] == pd.CategoricalDtype(COLORS)
    assert list(dtypes["color"].categories) == COLORS
    assert list(dtypes["shade"].categories) == ["DARK", "LIGHT"]
    assert isinstance(dtypes["tags"], pd.ArrowDtype)
    assert dtypes["day"] == pd.ArrowDtype(pa.date32())
    assert list(dtypes["path"].categories) == sorted(str(p) for p in data_dir.glob("*.avro"))
    assert list(df.columns) == [f["name"] for f in SCHEMA["fields"]] + ["path"]


def test_partition_dtypes_equal_meta(data_dir):
    df = jdd.read_avro(str(data_dir), blocksize="16 KiB", include_path_column="file")
    first = df.partitions[1].compute(scheduler="sync")
    assert dict(first.dtypes) == dict(df.dtypes)
    assert dict(df.compute(scheduler="sync").dtypes) == dict(df.dtypes)


def test_projection_is_pushed_into_the_read(data_dir, reads):
    df = jdd.read_avro(str(data_dir), blocksize="64 KiB")
    projected = df[["name", "id"]]
    expr = projected.optimize(fuse=False).expr
    io_exprs = [e for e in expr.walk() if type(e).__name__ == "FromMapProjectable"]
    assert [e.columns for e in io_exprs] == [["id", "name"]]  # dask asks in schema order
    result = projected.compute(scheduler="sync")
    assert {spec.columns for _, spec in reads} == {("id", "name")}
    assert_frame_matches(result, jd.read_table(str(data_dir), columns=["name", "id"]))


def test_columns_option_and_further_projection(data_dir, reads):
    df = jdd.read_avro(str(data_dir), columns=["color", "id", "score"], include_path_column=True)
    assert list(df.columns) == ["color", "id", "score", "path"]
    result = df[["path", "color"]].compute(scheduler="sync")
    assert {(spec.columns, spec.include_file_paths) for _, spec in reads} == {(("color",), None)}
    expected = jd.read_table(str(data_dir), columns=["color"], include_file_paths="path")
    assert_frame_matches(result, expected.select(["path", "color"]))


def test_head_reads_only_the_first_partition(data_dir, reads):
    df = jdd.read_avro(str(data_dir), blocksize="16 KiB")
    assert df.npartitions > 5
    head = df.head(5, compute=False)
    assert head.optimize().npartitions == 1
    result = head.compute(scheduler="sync")
    first = df.partitions[0].optimize()
    assert len(reads) == 1 and reads[0][0].index == 0
    assert_frame_matches(result, jd.read_table(str(data_dir), n_rows=5))
    assert first.npartitions == 1


def test_pickled_tasks_stay_small_with_thousands_of_partitions(small_files):
    one_file = (small_files / "part-0000.avro").stat().st_size
    start = time.perf_counter()
    df = jdd.read_avro(str(small_files), blocksize=one_file)  # one partition per file
    graph = dict(df.optimize().__dask_graph__())
    built = time.perf_counter() - start
    assert df.npartitions == len(graph) == 2_000
    read = next(e for e in df.optimize(fuse=False).expr.walk() if type(e).__name__ == "FromMapProjectable")
    shared = len(pickle.dumps(read.func))  # the read function and its spec, shared
    whole = len(pickle.dumps(graph))
    per_task = (whole - shared) / len(graph)
    assert per_task < 1024, f"{per_task:.0f} bytes per task beyond the shared spec"
    # The same bound for a task pickled alone (what a worker receives) besides the spec.
    one = len(pickle.dumps(next(iter(graph.values()))))
    assert one - shared < 1024
    assert built < 10, f"building the graph of 2,000 files took {built:.1f} s"


def test_big_file_splits_into_many_partitions(tmp_path):
    path = _write(tmp_path / "big.avro", range(20_000), "snappy", sync_interval=500)
    plan = jd.plan(str(path), split_size="4 KiB")
    assert len(plan.splits) > 100
    split_pickle = len(pickle.dumps(plan.splits[5]))
    assert split_pickle < 512, split_pickle
    df = jdd.read_avro(str(path), blocksize="4 KiB")
    assert df.npartitions == len(plan.splits)
    assert_frame_matches(df.compute(scheduler="threads"), jd.read_table(str(path)))


def test_small_files_are_grouped_into_partitions_in_order(small_files):
    assert jdd.read_avro(str(small_files)).npartitions < 10  # 2,000 files, a few MB
    source = str(small_files / "part-0[0-4]*.avro")
    df = jdd.read_avro(source, blocksize="32 KiB", include_path_column=True)
    total = sum(p.stat().st_size for p in small_files.glob("part-0[0-4]*.avro"))
    assert df.npartitions == math.ceil(total / (32 * 1024)) < 500
    splits = [s for group in _partition_splits(df) for s in group]
    assert splits == list(jd.plan(source, split_size="32 KiB").splits)
    expected = jd.read_table(source, include_file_paths="path")
    assert_frame_matches(df.compute(scheduler="threads"), expected)
    # Files share batches: a filter keeps each row's own path.
    filtered = jdd.read_avro(source, blocksize="32 KiB", include_path_column=True,
                             filters=[("id", "==", 1)]).compute(scheduler="sync")  # fmt: skip
    pairs = zip(expected.column("path").to_pylist(), expected.column("id").to_pylist())
    assert list(filtered["path"].astype(str)) == [path for path, i in pairs if i == 1]
    assert set(filtered["id"]) == {1}


def test_default_blocksize_follows_the_active_cluster(client, tmp_path):
    assert jdd._cluster_threads() == 2


# ---------------------------------------------------------------------------
# Equality with the local engine: threads, processes, a LocalCluster
# ---------------------------------------------------------------------------


def _check_all(paths, results, **local_options):
    for path, result in zip(paths, results):
        assert_frame_matches(result, jd.read_table(str(path), **local_options), context=str(path))


def test_corpus_threads():
    paths = _corpus()
    _check_all(paths, _read_all(paths, "threads"))


def test_property_files_threads(property_files):
    # Split sizes below a block: many splits own no block; each yields nothing.
    _check_all(property_files, _read_all(property_files, "threads", blocksize=64))


def test_generated_many_blocks_threads(data_dir):
    for blocksize in (3_000, "40 KiB", None):
        (result,) = _read_all([data_dir], "threads", blocksize=blocksize, include_path_column=True)
        expected = jd.read_table(str(data_dir), include_file_paths="path")
        assert_frame_matches(result, expected, context=f"blocksize={blocksize}")


def _frames(sources: list[tuple[Path, object]], **options) -> list:
    return [jdd.read_avro(str(path), blocksize=blocksize, **options) for path, blocksize in sources]


def _sources(corpus_step: int, property_step: int, data_dir: Path, property_files: list[Path]):
    """Corpus files whole (they are small); property files cut below their
    block size (many partitions own no block); the generated files in 12 KiB
    partitions, cut mid-file."""
    return (
        [(p, None) for p in _corpus(corpus_step)]
        + [(p, 512) for p in property_files[::property_step]]
        + [(data_dir, "12 KiB")]
    )


def test_processes_scheduler(pool, data_dir, property_files):
    sources = _sources(4, 3, data_dir, property_files)
    results = dask.compute(*_frames(sources, include_path_column=True), scheduler="processes", pool=pool)
    _check_all([p for p, _ in sources], results, include_file_paths="path")


def test_distributed_cluster(client, data_dir, property_files):
    sources = _sources(2, 2, data_dir, property_files)
    results = client.compute(_frames(sources), sync=True)
    _check_all([p for p, _ in sources], results)


def test_distributed_groupby_matches_local(client, data_dir):
    df = jdd.read_avro(str(data_dir), blocksize="32 KiB")
    result = df.groupby("color", observed=True).id.sum().compute()
    local = jd.read_avro(str(data_dir)).group_by("color").agg(pl.col("id").sum())
    assert {str(k): int(v) for k, v in result.items()} == dict(local.iter_rows())


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        [("id", "<", 700)],
        [("id", ">=", 1_000), ("color", "==", "GREEN")],
        [[("score", ">", 5_000.0)], [("shade", "in", ["LIGHT"])]],
        [("name", "in", {"name_1", "name_2"})],
        [("color", "!=", "RED"), ("day", "<", datetime.date(1971, 5, 1))],
    ],
    ids=["lt", "and-enum", "or-nullable", "in-set", "not-enum"],
)
def test_filters_drop_rows(data_dir, filters):
    df = jdd.read_avro(str(data_dir), filters=filters, blocksize="32 KiB")
    result = df.compute(scheduler="threads")
    import pyarrow.parquet as pq

    local = jd.read_table(str(data_dir))
    expected = local.filter(pq.filters_to_expression(filters))
    assert 0 < expected.num_rows < local.num_rows
    assert_frame_matches(result, expected)


def test_filters_on_columns_not_read_and_on_the_path(data_dir, reads):
    target = str(data_dir / "b.avro")
    df = jdd.read_avro(str(data_dir), columns=["name"], include_path_column=True,
                       filters=[("path", "==", target), ("id", "<", 12_010)])  # fmt: skip
    result = df.compute(scheduler="sync")
    assert list(result.columns) == ["name", "path"]
    assert list(result["name"]) == [f"name_{i % 997}" for i in range(12_000, 12_010)]
    assert set(result["path"]) == {target}
    assert {spec.columns for _, spec in reads} == {("name", "id")}


def test_bad_filters_fail_when_the_graph_is_built(data_dir):
    with pytest.raises(jd.SchemaError, match="nope"):
        jdd.read_avro(str(data_dir), filters=[("nope", "==", 1)])
    with pytest.raises(ValueError, match="cannot apply"):
        jdd.read_avro(str(data_dir), filters=[("id", "==", "text")])
    with pytest.raises(ValueError):
        jdd.read_avro(str(data_dir), filters=[("id", "~", 1)])
    with pytest.raises(TypeError):
        jdd.read_avro(str(data_dir), filters="id > 1")


# ---------------------------------------------------------------------------
# Options and errors
# ---------------------------------------------------------------------------


def test_option_errors(data_dir):
    with pytest.raises(jd.SchemaError):
        jdd.read_avro(str(data_dir), columns=["missing"])
    with pytest.raises(TypeError, match="paths"):
        jdd.read_avro((data_dir / "a.avro").read_bytes())
    with pytest.raises(jd.SchemaError):
        jdd.read_avro(str(data_dir), include_path_column="id")
    with pytest.raises(TypeError):
        jdd.read_avro(str(data_dir), include_path_column=3)
    with pytest.raises(ValueError):
        jdd.read_avro(str(data_dir), blocksize="lots")
    with pytest.raises(ValueError, match="kind"):
        jdd.read_avro_partitions(str(data_dir), kind="pandas")
    with pytest.raises(jd.SourceError):
        jdd.read_avro(str(data_dir / "none-*.avro"))


def test_fsspec_urls(data_dir):
    """A URL source: files listed and read through fsspec (here in memory, so
    the threaded scheduler shares it)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in sorted(data_dir.glob("*.avro")):
        fs.pipe(f"/jdd-test/{path.name}", path.read_bytes())
    try:
        url = "memory://jdd-test/*.avro"
        df = jdd.read_avro(url, blocksize="32 KiB", include_path_column=True, storage_options={})
        assert df.npartitions > 3
        expected = jd.read_table(url, include_file_paths="path")
        assert_frame_matches(df.compute(scheduler="threads"), expected)
    finally:
        fs.rm("/jdd-test", recursive=True)


def test_corrupt_data_raises_the_typed_error(tmp_path):
    path = _write(tmp_path / "x.avro", range(3_000))
    data = bytearray(path.read_bytes())
    data[-40:] = b"\xff" * 40
    path.write_bytes(bytes(data))
    df = jdd.read_avro(str(path))
    with pytest.raises(jd.JetlinerDistError) as caught:
        df.compute(scheduler="sync")
    assert caught.value.path == str(path)


# ---------------------------------------------------------------------------
# Arrow and Polars partitions
# ---------------------------------------------------------------------------


def test_arrow_partitions_equal_the_local_table(data_dir):
    parts = jdd.read_avro_partitions(str(data_dir), blocksize="32 KiB", include_path_column=True)
    assert len(parts) > 3
    tables = dask.compute(*parts, scheduler="threads")
    expected = jd.read_table(str(data_dir), include_file_paths="path")
    assert_tables_equal(pa.concat_tables(tables), expected)


def test_polars_partitions_on_the_cluster(client, data_dir):
    parts = jdd.read_avro_partitions(str(data_dir), kind="polars", blocksize="32 KiB",
                                     columns=["id", "color", "tags"], filters=[("id", "<", 15_000)])  # fmt: skip
    frames = client.compute(parts, sync=True)
    assert all(isinstance(f, pl.DataFrame) for f in frames)
    expected = jd.read_avro(str(data_dir), columns=["id", "color", "tags"]).filter(pl.col("id") < 15_000)
    result = pl.concat(frames)
    assert result.schema["color"] == pl.Enum(COLORS)
    assert result.equals(expected)


def test_polars_partitions_filter_strings_and_the_path(data_dir):
    target = str(data_dir / "a.avro")
    filters = [("name", "in", ["name_1", "name_2"]), ("color", "==", "GREEN"), ("path", "==", target)]
    parts = jdd.read_avro_partitions(str(data_dir), kind="polars", filters=filters,
                                     include_path_column=True, blocksize="64 KiB")  # fmt: skip
    result = pl.concat(dask.compute(*parts, scheduler="threads"))
    expected = jd.read_avro(str(data_dir), include_file_paths="path").filter(
        pl.col("name").is_in(["name_1", "name_2"]), pl.col("color") == "GREEN", pl.col("path") == target
    )
    assert 0 < result.height < 100
    assert result.equals(expected)


def test_partition_keys_are_deterministic(data_dir):
    first = jdd.read_avro_partitions(str(data_dir), blocksize="32 KiB")
    again = jdd.read_avro_partitions(str(data_dir), blocksize="32 KiB")
    assert [p.key for p in first] == [p.key for p in again]
    assert jdd.read_avro(str(data_dir))._name == jdd.read_avro(str(data_dir))._name


# ---------------------------------------------------------------------------
# The example job, and a worker lost mid-read (kept last: it restarts a worker)
# ---------------------------------------------------------------------------


def test_example_job_runs(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "dask_job.py"), "--rows", "20000", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "matches the local engine" in completed.stdout
    assert list((tmp_path / "parquet-dask").glob("*.parquet"))


def test_benchmark_runs_on_small_files(tmp_path):
    """``python -m benchmarks.dask_bench`` end to end on tiny inputs (the real
    run takes minutes and stays out of CI)."""
    command = [sys.executable, "-m", "benchmarks.dask_bench", "--rows", "2000", "--files", "20",
               "--repeat", "1", "--data-dir", str(tmp_path)]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    for heading in ("## Read", "## Planning 20 small files", "## LocalCluster"):
        assert heading in completed.stdout


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """About a million rows, cheaply: one fastavro file's blocks repeated."""
    root = tmp_path_factory.mktemp("dask-big")
    one = _write(root / "one.avro", range(25_000), "deflate", sync_interval=16_000)
    plan = jd.plan(str(one))
    data = one.read_bytes()
    header, blocks = data[: plan.files[0].header_end], data[plan.files[0].header_end :]
    path = root / "big.avro"
    path.write_bytes(header + blocks * 40)
    return path


def test_worker_killed_while_reading_result_is_exact(client, big_file):
    df = jdd.read_avro(str(big_file), columns=["id", "name", "color", "tags"], blocksize="256 KiB")
    assert df.npartitions >= 40
    expected = jd.read_table(str(big_file), columns=["id", "name", "color", "tags"])
    pids = client.run(os.getpid)
    future = client.compute(df)
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and not future.done():
        for worker, keys in client.processing().items():
            if any(str(key).startswith("('read-") for key in keys):
                victim = worker
                break
        else:
            time.sleep(0.005)
    assert victim is not None, "no worker was reading"
    os.kill(pids[victim], signal.SIGKILL)
    result = future.result(timeout=180)
    assert_frame_matches(result, expected)
    client.wait_for_workers(2, timeout=120)
    assert pids[victim] not in client.run(os.getpid).values()
