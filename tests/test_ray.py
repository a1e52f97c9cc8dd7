"""Ray Data engine (``jetliner_dist.ray``) on a real local Ray.

One Ray instance per module (``ray.init(num_cpus=2)``), with ordered
execution so results compare row for row. Every read is judged against the
local engine (``jd.read_table``), which the corpus and property suites judge
against the expected records and fastavro.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jetliner_dist as jd

ray = pytest.importorskip("ray", reason="the Ray engine needs: pip install jetliner-dist[ray]")
import ray.data  # noqa: E402
from ray.data.expressions import col  # noqa: E402

import jetliner_dist.ray as jr  # noqa: E402
from strategies import CODECS, avro_cases  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "avro-corpus"
STUB = jr._STUB_COLUMN


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """A 2-CPU local Ray for the whole module; ordered, quiet Ray Data."""
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False,
        logging_level=logging.WARNING, configure_logging=False,
    )  # fmt: skip
    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    try:
        yield
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        ray.shutdown()


# -- helpers ---------------------------------------------------------------------


def collect(ds: "ray.data.Dataset") -> pa.Table:
    """The dataset's blocks as one table, in order, without Ray's stub column."""
    schema = ds.schema()  # before execution: from the read tasks
    # With preserve_order, a task that yields nothing leaves an empty block
    # without columns in its place.
    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    if not tables:
        return getattr(schema, "base_schema", schema).empty_table()
    table = pa.concat_tables(tables)
    if STUB in table.column_names:
        table = table.drop_columns([STUB])
    return table


def assert_same(actual: pa.Table, expected: pa.Table) -> None:
    assert actual.schema == expected.schema, f"\n{actual.schema}\n!=\n{expected.schema}"
    assert actual.num_rows == expected.num_rows
    if not actual.equals(expected):  # NaN != NaN for Arrow: compare values with NaN as a value
        assert _nan_as_value(actual.to_pylist()) == _nan_as_value(expected.to_pylist())


def _nan_as_value(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _nan_as_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_as_value(v) for v in value]
    return value


def pushed(ds: "ray.data.Dataset") -> "jr.AvroDatasource":
    """The datasource of the optimized plan's read (what pushdown left in it)."""
    from ray.data._internal.logical.optimizers import LogicalOptimizer

    op = LogicalOptimizer().optimize(ds._logical_plan).dag
    while not hasattr(op, "datasource"):
        (op,) = op.input_dependencies
    return op.datasource


SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "user", "type": ["null", "string"]},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "tags", "type": {"type": "map", "values": "long"}},
        {
            "name": "items",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Item",
                    "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}],
                },
            },
        },
        {"name": "payload", "type": ["int", "string", "null"]},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


def event(i: int) -> dict:
    import datetime as dt
    import decimal

    return {
        "id": i,
        "kind": "ABC"[i % 3],
        "user": None if i % 7 == 0 else f"user{i % 97}",
        "amount": decimal.Decimal(i * 37 % 100_000) / 100,
        "tags": {f"t{j}": i * j for j in range(i % 3)},
        "items": [{"sku": f"s{i}-{j}", "qty": j} for j in range(i % 4)],
        "payload": [i, str(i), None][i % 3],
        "at": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i),
    }


def write(path: Path, rows: int, *, start: int = 0, codec: str = "deflate", sync_interval: int = 2000) -> Path:
    with open(path, "wb") as out:
        fastavro.writer(out, SCHEMA, (event(i) for i in range(start, start + rows)),
                        codec=codec, sync_interval=sync_interval)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    """One file of ~600 blocks (about 1.6 MB)."""
    return write(tmp_path_factory.mktemp("big") / "events.avro", 30_000)


@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> Path:
    """A directory of 10 small files, rows numbered across them."""
    folder = tmp_path_factory.mktemp("small")
    for k in range(10):
        write(folder / f"part-{k:02d}.avro", 300 + 50 * k, start=10_000 * k, codec="snappy")
    return folder


# -- packaging ---------------------------------------------------------------------


def test_import_jetliner_dist_does_not_import_ray():
    code = "import sys, jetliner_dist as jd; jd.plan; jd.read_table; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_ray_names_the_extra():
    code = "import sys; sys.modules['ray'] = None\nimport jetliner_dist.ray"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "pip install jetliner-dist[ray]" in out.stderr


def test_public_names():
    assert jr.__all__ == ["AvroDatasource", "read_avro", "read_splits"]


# -- equality with the local engine ------------------------------------------------------


def _corpus_subset() -> list[dict]:
    """About twenty valid corpus files: the first (most featureful) file for
    each feature and codec, plus empty, zero-column, top-level and many-block files."""
    valid = [e for e in json.loads((CORPUS / "manifest.json").read_text()) if e["kind"] == "valid"]

    def keys(e):
        return set(e["features"]) | {f"codec:{e['codec']}"}

    chosen: list[dict] = []
    for key in sorted(set().union(*map(keys, valid))):
        if not any(key in keys(e) for e in chosen):
            chosen.append(min((e for e in valid if key in keys(e)),
                              key=lambda e: (-len(e["features"]), e["file"])))  # fmt: skip
    extra = ("weather-large.avro", "fastavro/no-fields.avro", "map-toplevel.avro",
             "tree-recursive.avro", "goavro/fixtures/temp2.avro")  # fmt: skip
    for name in extra:
        chosen += [e for e in valid if e["file"].endswith(name) and e not in chosen][:1]
    return chosen


CORPUS_SUBSET = _corpus_subset()


def test_corpus_subset_is_diverse():
    assert 18 <= len(CORPUS_SUBSET) <= 25
    features = set().union(*(e["features"] for e in CORPUS_SUBSET))
    assert {"enum", "map", "decimal", "recursive", "union of 3 types", "zero-field record"} <= features
    assert {e["codec"] for e in CORPUS_SUBSET} == set(CODECS)


@pytest.mark.parametrize("entry", CORPUS_SUBSET, ids=[e["file"].removeprefix("files/") for e in CORPUS_SUBSET])
def test_corpus_file_reads_like_the_local_engine(entry):
    path = str(CORPUS / entry["file"])
    expected = jd.read_table(path)
    actual = collect(jr.read_avro(path, split_size="64 KiB"))
    if expected.num_columns == 0:  # Ray keeps the row count in a stub column
        assert actual.num_columns == 0 and actual.num_rows == expected.num_rows == entry["records"]
    else:
        assert_same(actual, expected)


def test_many_block_file_reads_like_the_local_engine(big_file):
    ds = jr.read_avro(str(big_file), split_size="128 KiB", batch_rows=1000)
    assert_same(collect(ds), jd.read_table(str(big_file)))


def test_many_files_read_like_the_local_engine(small_files):
    expected = jd.read_table(str(small_files), include_file_paths="path")
    assert_same(collect(jr.read_avro(str(small_files), include_file_paths="path")), expected)


@settings(max_examples=int(os.environ.get("JD_RAY_EXAMPLES", "8")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(case=avro_cases(max_records=60), codec=st.sampled_from(CODECS),
       sync_interval=st.integers(1, 300), split_size=st.integers(64, 4096))  # fmt: skip
def test_generated_files_read_like_the_local_engine(tmp_path_factory, case, codec, sync_interval, split_size):
    path = tmp_path_factory.mktemp("generated") / "case.avro"
    with open(path, "wb") as out:
        fastavro.writer(out, case.schema, case.records, codec=codec, sync_interval=sync_interval)
    expected = jd.read_table(str(path))
    actual = collect(jr.read_avro(str(path), split_size=split_size))
    if expected.num_columns == 0:
        assert actual.num_rows == expected.num_rows
    else:
        assert_same(actual, expected)


# -- Dataset operations ------------------------------------------------------------------


def test_count(big_file, small_files):
    assert jr.read_avro(str(big_file), split_size="64 KiB").count() == 30_000
    assert jr.read_avro(str(small_files)).count() == jd.count_rows(str(small_files))


def test_select_columns_is_pushed_into_the_reader(big_file):
    ds = jr.read_avro(str(big_file), split_size="256 KiB").select_columns(["user", "id"])
    source = pushed(ds)
    spec, keep, predicate = source._read_spec()
    assert spec.columns == ("user", "id") and keep is None and predicate is None
    assert_same(collect(ds), jd.read_table(str(big_file), columns=["user", "id"]))
    assert ds.schema().names == ["user", "id"]


def test_filter_is_pushed_into_the_reader(big_file):
    ds = jr.read_avro(str(big_file), split_size="256 KiB")
    filtered = ds.filter(expr=(col("kind") == "B") & (col("id") >= 20_000))
    assert pushed(filtered).get_current_predicate() is not None
    expected = jd.read_table(str(big_file)).filter((pc.field("kind") == "B") & (pc.field("id") >= 20_000))
    assert expected.num_rows == 3_333
    assert_same(collect(filtered), expected)
    assert filtered.count() == 3_333


def test_filter_on_a_column_that_is_not_selected(big_file):
    ds = jr.read_avro(str(big_file), split_size="256 KiB")
    result = ds.filter(expr=col("user").is_null()).select_columns(["id"])
    spec, keep, _ = pushed(result)._read_spec()
    assert set(spec.columns) == {"id", "user"} and keep == ("id",)
    expected = jd.read_table(str(big_file), columns=["id", "user"]).filter(pc.field("user").is_null())
    assert_same(collect(result), expected.select(["id"]))
    assert result.count() == expected.num_rows == 30_000 // 7 + 1


@pytest.mark.filterwarnings("ignore:Use 'expr' instead of 'fn'")
def test_filter_with_a_python_function_still_works(big_file):
    ds = jr.read_avro(str(big_file), columns=["id"], split_size="256 KiB")
    assert ds.filter(lambda row: row["id"] % 1000 == 0).count() == 30


def test_read_avro_filter_and_columns_options(big_file):
    ds = jr.read_avro(str(big_file), columns=["id", "kind"], filter=col("id") < 10)
    assert collect(ds).to_pydict() == {"id": list(range(10)), "kind": list("ABCABCABCA")}


def test_limit(big_file):
    ds = jr.read_avro(str(big_file), split_size="64 KiB")
    assert_same(collect(ds.limit(1234)), jd.read_table(str(big_file), n_rows=1234))
    rows = ds.filter(expr=col("kind") == "C").limit(5).take_all()
    assert [r["id"] for r in rows] == [2, 5, 8, 11, 14]


def test_to_pandas(small_files):
    frame = jr.read_avro(str(small_files), columns=["id", "kind", "user"]).to_pandas()
    expected = jd.read_table(str(small_files), columns=["id", "kind", "user"]).to_pandas()
    # Ray and pyarrow pick different pandas dtypes for nullable strings: compare values.
    assert list(frame.columns) == list(expected.columns) and len(frame) == len(expected)
    assert frame["id"].tolist() == expected["id"].tolist()
    assert frame["kind"].astype(str).tolist() == expected["kind"].astype(str).tolist()
    assert frame["user"].isna().tolist() == expected["user"].isna().tolist()
    assert frame["user"].dropna().tolist() == expected["user"].dropna().tolist()


# -- read tasks ---------------------------------------------------------------------------


def test_one_large_file_makes_several_read_tasks(big_file):
    plan = jd.plan(str(big_file), split_size="64 KiB")
    assert len(plan.splits) > 8
    source = jr.AvroDatasource(plan)
    tasks = source.get_read_tasks(4)
    assert len(tasks) == 4
    for task in tasks:
        assert task.metadata.input_files == (str(big_file),)
        assert task.metadata.num_rows is None
        assert task.schema == plan.arrow_schema
    sizes = [task.metadata.size_bytes for task in tasks]
    assert sum(sizes) == source.estimate_inmemory_data_size()
    assert max(sizes) < 2 * min(sizes)  # balanced by bytes
    # Compressed Avro expands in memory: the estimate is the codec's factor, not the file size.
    expected = big_file.stat().st_size * jr.CODEC_EXPANSION["deflate"]
    assert expected - len(plan.splits) <= source.estimate_inmemory_data_size() <= expected
    # Reading the tasks in order gives the whole file in order.
    tables = [table for task in tasks for table in task()]
    assert_same(pa.concat_tables(tables), jd.read_table(str(big_file)))


def test_default_read_makes_one_task_per_split(big_file):
    ds = jr.read_avro(str(big_file), split_size="128 KiB")
    splits = len(jd.plan(str(big_file), split_size="128 KiB").splits)
    assert splits > 2
    assert ds.materialize().num_blocks() == splits


def test_many_small_files_group_into_fewer_tasks(small_files):
    plan = jd.plan(str(small_files))
    assert len(plan.splits) == 10
    tasks = jr.AvroDatasource(plan).get_read_tasks(3)
    assert len(tasks) == 3
    files = [path for task in tasks for path in task.metadata.input_files]
    assert files == [split.file.path for split in plan.splits]  # every file once, in order
    assert jr.AvroDatasource(plan).get_read_tasks(3)[1].metadata == tasks[1].metadata  # deterministic
    ds = jr.read_avro(str(small_files), override_num_blocks=3)
    assert ds.materialize().num_blocks() == 3
    assert_same(collect(ds), jd.read_table(str(small_files)))


def test_batch_rows_sets_the_tables_a_task_yields(big_file):
    plan = jd.plan(str(big_file), batch_rows=4_000)
    (task,) = jr.AvroDatasource(plan).get_read_tasks(1)
    sizes = [table.num_rows for table in task()]
    assert sum(sizes) == 30_000 and max(sizes) == 4_000


def test_read_tasks_ship_splits_not_the_datasource(big_file):
    plan = jd.plan(str(big_file), split_size="128 KiB")
    source = jr.AvroDatasource(plan).apply_projection({"id": "id"}).apply_predicate(col("id") > 5)
    for task in source.get_read_tasks(4):
        read_fn = task.read_fn
        assert read_fn.func is jr.read_splits and read_fn.__name__ == "read_splits"
        assert not any(isinstance(v, jr.AvroDatasource) for v in [*read_fn.args, *read_fn.keywords.values()])
        assert len(pickle.dumps(read_fn)) < 8_000  # splits, spec, an Arrow expression


def test_projection_to_no_columns_keeps_the_row_count(big_file):
    # count() pushes an empty projection: Ray counts zero-column tables as empty.
    ds = jr.read_avro(str(big_file), split_size="256 KiB").filter(expr=col("id") < 100)
    assert ds.count() == 100
    source = jr.AvroDatasource(jd.plan(str(big_file))).apply_projection({})
    (task,) = source.get_read_tasks(1)
    assert task.schema.names == [STUB]
    assert sum(t.num_rows for t in task()) == 30_000


# -- errors ------------------------------------------------------------------------------


def test_unknown_column_is_a_schema_error(big_file):
    with pytest.raises(jd.SchemaError):
        jr.read_avro(str(big_file), columns=["nope"])
    with pytest.raises(jd.SchemaError):
        jr.AvroDatasource(jd.plan(str(big_file))).apply_projection({"nope": "nope"})


def test_bytes_are_refused():
    with pytest.raises(TypeError, match="local engine"):
        jr.read_avro(b"Obj\x01")
    with pytest.raises(TypeError, match="local engine"):
        jr.read_avro([io.BytesIO(b"Obj\x01")])


def test_corrupt_data_raises_the_typed_error_through_ray(tmp_path, big_file):
    data = big_file.read_bytes()
    broken = tmp_path / "broken.avro"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(jd.TruncatedError) as info:
        jr.read_avro(str(broken)).materialize()
    assert info.value.path == str(broken)


# -- the example ---------------------------------------------------------------------------


def test_example_ray_job_runs(tmp_path):
    """examples/ray_job.py end to end, as a driver joining this module's Ray."""
    address = ray.get_runtime_context().gcs_address
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "ray_job.py"), "--rows", "20000",
         "--out", str(tmp_path), "--address", address],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "rows: 20,000" in out.stdout
    assert list((tmp_path / "parquet").glob("*.parquet"))
