"""Runs of small splits read with one decoder (``reading.read_splits``).

A run must give exactly the rows of reading each of its splits alone, in
order, whatever the cut points and files: rows of several files share
batches, each row keeps its own file's path, a row limit counts across the
run, and an error names the file it comes from.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jetliner_dist as jd
from blocks import write
from jetliner_dist.errors import SyncMarkerError
from jetliner_dist.planning import plan_splits
from jetliner_dist.reading import output_schema, read_split, read_splits
from jetliner_dist.sources import MemorySource

SCHEMA = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "note", "type": ["null", "string"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}


def _rows(start: int, count: int) -> list[dict]:
    return [
        {"id": i, "note": None if i % 3 == 0 else f"note {i}", "tags": ["t"] * (i % 3)}
        for i in range(start, start + count)
    ]


def _files(counts: list[int], codec: str = "deflate") -> dict[str, bytes]:
    out, start = {}, 0
    for i, count in enumerate(counts):
        out[f"<file {i}>"] = write(SCHEMA, _rows(start, count), codec=codec, sync_interval=300)
        start += count
    return out


def _plan(files: dict[str, bytes], split_size: int, *, views: bool = False, **options):
    """Splits of in-memory files cut at ``split_size``, the read spec, and the
    sources by path (the plan names them ``<bytes>``, ``<bytes 1>``...)."""
    plan = jd.plan(list(files.values()), **options)
    sources = {f.path: MemorySource(data, path=f.path) for f, data in zip(plan.files, files.values())}
    spec = dataclasses.replace(plan.spec, views=views)
    return plan_splits(plan.files, split_size), spec, sources


def _alone(splits, spec, sources, n_rows=None) -> pa.Table:
    """Each split read on its own, in order, cut to ``n_rows``."""
    batches = [b for s in splits for b in read_split(s, spec, source=sources[s.file.path])]
    table = pa.Table.from_batches(batches, schema=output_schema(spec))
    return table if n_rows is None else table.slice(0, n_rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(0, 400), min_size=1, max_size=6),
    split_size=st.integers(200, 20_000),
    views=st.booleans(),
    codec=st.sampled_from(["null", "deflate", "snappy"]),
)
def test_a_run_reads_what_its_splits_read_alone(counts, split_size, views, codec):
    files = _files(counts, codec)
    splits, spec, sources = _plan(files, split_size, views=views, include_file_paths="path")
    expected = _alone(splits, spec, sources)
    batches = list(read_splits(splits, spec, sources=sources))
    got = pa.Table.from_batches(batches, schema=output_schema(spec))
    assert got.equals(expected)
    assert got.column("id").to_pylist() == list(range(sum(counts)))
    assert batches, "a run yields at least one (maybe empty) batch"


def test_small_files_share_batches_and_keep_their_paths():
    files = _files([50] * 12)
    splits, spec, sources = _plan(files, 10**9, include_file_paths="path")
    batches = list(read_splits(splits, spec, sources=sources))
    assert len(batches) == 1 and batches[0].num_rows == 600
    paths = batches[0].column("path").to_pylist()
    assert paths == [split.file.path for split in splits for _ in range(50)]
    assert len(set(paths)) == 12


def test_a_row_limit_counts_across_the_run():
    files = _files([50] * 12)
    splits, spec, sources = _plan(files, 10**9)
    for n_rows in (0, 1, 49, 50, 51, 333, 600, 10**6):
        got = pa.Table.from_batches(list(read_splits(splits, spec, sources=sources, n_rows=n_rows)),
                                    schema=output_schema(spec))  # fmt: skip
        assert got.column("id").to_pylist() == list(range(min(n_rows, 600)))


def test_an_error_names_the_file_it_comes_from():
    files = _files([200, 200, 200])
    bad = bytearray(files["<file 1>"])
    bad[-16:] = bytes(16)  # the last block's sync marker
    files["<file 1>"] = bytes(bad)
    splits, spec, sources = _plan(files, 10**9)
    with pytest.raises(SyncMarkerError) as info:
        list(read_splits(splits, spec, sources=sources))
    assert info.value.path == splits[1].file.path


def test_every_splits_progress_callback_sees_its_bytes():
    files = _files([100, 0, 100, 100])
    splits, spec, sources = _plan(files, 10**9)
    seen = [[] for _ in splits]
    hooks = [seen[i].append for i in range(len(splits))]
    list(read_splits(splits, spec, sources=sources, on_bytes=hooks))
    for split, calls in zip(splits, seen):
        assert sum(calls) <= split.size
        assert (sum(calls) > 0) == (split.file.size > split.file.header_end)


def test_a_run_that_owns_no_block_yields_one_empty_batch():
    files = _files([0, 0])
    splits, spec, sources = _plan(files, 10**9)
    batches = list(read_splits(splits, spec, sources=sources))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema == output_schema(spec)


def test_each_batch_says_which_splits_its_rows_come_from():
    files = _files([0, 30, 70, 0, 45])
    splits, spec, sources = _plan(files, 10**9)
    told: list[list[tuple[int, int]]] = []
    batches = list(read_splits(splits, spec, sources=sources, on_batch_splits=told.append))
    assert len(told) == len(batches)
    assert [sum(rows for _, rows in runs) for runs in told] == [b.num_rows for b in batches]
    per_split = {}
    for runs in told:
        for split, rows in runs:
            per_split[split] = per_split.get(split, 0) + rows
    assert {k: v for k, v in per_split.items() if v} == {1: 30, 2: 70, 4: 45}
