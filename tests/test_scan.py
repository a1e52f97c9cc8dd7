"""``scan_avro``: a Polars IO plugin whose schema comes from the plan and that
pushes projection, predicate and ``n_rows`` down into the reader.

Every query is checked three ways: optimized (pushdown), unoptimized (Polars
reads everything and evaluates the query itself) and on the eager
``read_avro`` frame.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import jetliner_dist as jd
import jetliner_dist.local as local
import jetliner_dist.polars as jd_polars
from blocks import write

COLORS = ["RED", "GREEN", "BLUE"]
SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": COLORS}},
        {"name": "score", "type": ["null", "double"]},
        {"name": "point", "type": {"type": "record", "name": "P", "fields": [
            {"name": "x", "type": "int"}, {"name": "y", "type": "int"}]}},
    ],
}  # fmt: skip
ROWS = 4000
OPTIONS = dict(split_size=3000, max_workers=2, batch_rows=500)


def _records(start: int, count: int) -> list[dict]:
    return [
        {"id": i, "name": f"n{i % 17}", "color": COLORS[i % 3],
         "score": None if i % 5 == 0 else i / 7, "point": {"x": i % 11, "y": -i}}
        for i in range(start, start + count)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("scan")
    paths = []
    for i, (start, count) in enumerate([(0, 1500), (1500, 2500)]):
        path = folder / f"part-{i}.avro"
        path.write_bytes(write(SCHEMA, _records(start, count), codec="snappy", sync_interval=900))
        paths.append(str(path))
    return paths


@pytest.fixture
def splits_read(monkeypatch):
    """Every split the engine starts reading, with the columns it decodes."""
    started: list[tuple] = []
    real = local.read_splits

    def recording(run, spec, **kwargs):
        started.extend((split.index, spec.columns) for split in run)
        return real(run, spec, **kwargs)

    monkeypatch.setattr(local, "read_splits", recording)
    return started


QUERIES = {
    "all": lambda lf: lf,
    "select": lambda lf: lf.select("score", "id"),
    "select-nested": lambda lf: lf.select(pl.col("point").struct.field("y"), "color"),
    "filter": lambda lf: lf.filter(pl.col("id") % 7 == 3),
    "filter-enum": lambda lf: lf.filter(pl.col("color") == "GREEN").select("id", "color"),
    "filter-null": lambda lf: lf.filter(pl.col("score").is_null()).select("id"),
    "head": lambda lf: lf.head(7),
    "slice": lambda lf: lf.slice(1490, 20),
    "tail": lambda lf: lf.tail(3),
    "filter-head": lambda lf: lf.filter(pl.col("id") > 1234).head(5),
    "select-head": lambda lf: lf.select("name").head(1600),
    "row-index": lambda lf: lf.with_row_index("r").filter(pl.col("id") % 1000 == 999),
    "row-index-head": lambda lf: lf.with_row_index("r", offset=10).head(3),
    "len": lambda lf: lf.select(pl.len()),
    "count": lambda lf: lf.select(pl.col("id").count(), pl.col("score").null_count()),
    "group": lambda lf: lf.group_by("color").agg(pl.col("id").sum()).sort("color"),
    "sort-head": lambda lf: lf.sort("id", descending=True).head(4),
    "empty-result": lambda lf: lf.filter(pl.col("id") < 0),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_optimized_equals_unoptimized_and_eager(files, name):
    query = QUERIES[name]
    lf = query(jd.scan_avro(files, **OPTIONS))
    optimized = lf.collect()
    unoptimized = lf.collect(optimizations=pl.QueryOptFlags.none())
    eager = query(jd.read_avro(files).lazy()).collect()
    assert optimized.equals(unoptimized), name
    assert optimized.equals(eager), name
    assert optimized.schema == unoptimized.schema == eager.schema


@pytest.mark.parametrize("name", ["all", "select", "filter", "head", "filter-head", "len"])
def test_options_row_index_and_paths(files, name):
    """``row_index_name`` and ``include_file_paths`` go through pushdown too."""
    query = QUERIES[name]
    options = dict(OPTIONS, row_index_name="idx", include_file_paths="path")
    lf = query(jd.scan_avro(files, **options))
    optimized = lf.collect()
    assert optimized.equals(lf.collect(optimizations=pl.QueryOptFlags.none()))
    assert optimized.equals(query(jd.read_avro(files, **options).lazy()).collect())


def test_row_index_and_path_columns_survive_projection(files):
    lf = jd.scan_avro(files, row_index_name="idx", include_file_paths="path", **OPTIONS)
    assert lf.collect_schema().names() == ["idx", "id", "name", "color", "score", "point", "path"]
    picked = lf.select("path", "id").filter(pl.col("id").is_in([0, 1499, 1500, 3999])).collect()
    assert picked["path"].to_list() == [files[0], files[0], files[1], files[1]]
    assert lf.select("idx").collect()["idx"].to_list() == list(range(ROWS))
    assert lf.select("id").collect().columns == ["id"]


def test_schema_comes_from_the_plan_without_reading(files, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("the schema must not read data")

    monkeypatch.setattr(local, "read_splits", no_reading)
    lf = jd.scan_avro(files, row_index_name="idx", include_file_paths="path")
    schema = lf.collect_schema()
    assert schema == pl.Schema({
        "idx": pl.UInt32, "id": pl.Int64, "name": pl.String, "color": pl.Enum(COLORS),
        "score": pl.Float64, "point": pl.Struct({"x": pl.Int32, "y": pl.Int32}),
        "path": pl.String,
    })  # fmt: skip
    assert lf.select("id", "color").collect_schema().names() == ["id", "color"]
    assert "jetliner_dist.scan_avro" in lf.explain()


def test_enums_are_polars_enums_in_schema_and_data(files):
    lf = jd.scan_avro(files, **OPTIONS)
    assert lf.collect_schema()["color"] == pl.Enum(COLORS)
    for frame in (lf.collect(), lf.filter(pl.col("color") == "BLUE").collect(),
                  lf.select("color").head(2).collect()):  # fmt: skip
        assert frame.schema["color"] == pl.Enum(COLORS)
    blue = lf.filter(pl.col("color") == "BLUE").select("id").collect()["id"].to_list()
    assert blue == list(range(2, ROWS, 3))
    # Enum order is the schema's symbol order, not alphabetical.
    assert lf.select(pl.col("color").max()).collect().item() == "BLUE"


def test_explain_shows_the_projection_and_the_reader_decodes_only_it(files, splits_read):
    lf = jd.scan_avro(files, **OPTIONS).select("score", "id")
    plan = lf.explain()
    assert "PROJECT 2/5 COLUMNS" in plan
    assert lf.collect().columns == ["score", "id"]
    assert splits_read and all(set(columns) == {"score", "id"} for _, columns in splits_read)


def test_predicate_is_pushed_into_the_scan(files):
    plan = jd.scan_avro(files).filter(pl.col("id") > 10).explain()
    assert "SELECTION" in plan and "jetliner_dist.scan_avro" in plan


def _source_generator(monkeypatch, files, **options):
    """The plugin's generator function, as ``register_io_source`` receives it."""
    captured = {}
    real = jd_polars.register_io_source

    def capture(generator, **kwargs):
        captured["generator"] = generator
        return real(generator, **kwargs)

    monkeypatch.setattr(jd_polars, "register_io_source", capture)
    jd.scan_avro(files, **options)
    return captured["generator"]


def test_predicate_is_applied_to_each_batch(files, monkeypatch):
    """Frames leave the plugin already filtered, one per decoded batch."""
    generator = _source_generator(monkeypatch, files, **OPTIONS)
    predicate = pl.col("id") % 10 == 0
    frames = list(generator(["id", "color"], predicate, None, 250))
    assert len(frames) >= ROWS // 250
    assert all(f.height <= 25 and f["id"].to_list() == [i for i in f["id"] if i % 10 == 0]
               for f in frames)  # fmt: skip
    assert pl.concat(frames)["id"].to_list() == list(range(0, ROWS, 10))
    assert all(f.columns == ["id", "color"] for f in frames)
    # With a limit, the filtered rows stop at the limit.
    limited = list(generator(["id"], predicate, 12, 250))
    assert pl.concat(limited)["id"].to_list() == list(range(0, 120, 10))


@pytest.mark.parametrize("workers", [1, 2])
def test_head_and_n_rows_stop_early(tmp_path, splits_read, workers):
    path = tmp_path / "big.avro"
    path.write_bytes(write(SCHEMA, _records(0, 20_000), codec="deflate", sync_interval=500))
    options = dict(split_size=4000, max_workers=workers)
    total = len(jd.plan(str(path), **options).splits)
    assert total > 30
    bound = 1 if workers == 1 else 4 * workers + 1

    assert jd.scan_avro(str(path), **options).head(5).collect()["id"].to_list() == list(range(5))
    assert 1 <= len(splits_read) <= bound
    splits_read.clear()
    frame = jd.scan_avro(str(path), n_rows=7, **options).collect()
    assert frame["id"].to_list() == list(range(7))
    assert 1 <= len(splits_read) <= bound
    splits_read.clear()
    # n_rows limits the rows read before the filter, as in Polars' own scans.
    frame = jd.scan_avro(str(path), n_rows=100, **options).filter(pl.col("id") % 2 == 1).collect()
    assert frame["id"].to_list() == list(range(1, 100, 2))
    splits_read.clear()
    head = jd.scan_avro(str(path), **options).filter(pl.col("id") >= 10).head(3).collect()
    assert head["id"].to_list() == [10, 11, 12]
    assert len(splits_read) < total


def test_scan_of_a_directory_and_bytes(files, tmp_path):
    folder = str(Path(files[0]).parent)
    assert jd.scan_avro(folder).select(pl.len()).collect().item() == ROWS
    data = Path(files[1]).read_bytes()
    lf = jd.scan_avro(data, include_file_paths="path")
    frame = lf.filter(pl.col("id") == 1500).collect()
    assert frame["path"].to_list() == ["<bytes>"]
