"""The split rule (DESIGN §3.1), attacked with arbitrary cut points.

A split ``[start, end)`` owns exactly the blocks whose preceding sync marker
begins in ``[start, end)``. So for *any* cut points (not only those
``plan_splits`` picks: inside the header, inside sync markers, one byte either
side of them, inside blocks, empty ranges), reading every split with
``read_split`` and concatenating the batches must give the whole file, every
record exactly once, and each split must hold exactly the records of the
blocks it owns. The sync marker's 16 bytes may also occur inside record data
and header metadata; a split must not start decoding there.
"""

from __future__ import annotations

import os
import tempfile

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jetliner_dist as jd
from blocks import Layout, layout, with_empty_blocks, write
from corruption import zigzag
from canonical import arrow_to_canonical, assert_canonical_equal, writer_schema_of
from jetliner_dist.planning import Plan, Split, plan_splits
from jetliner_dist.boundaries import find_first_block
from jetliner_dist.counting import count_split_rows
from jetliner_dist.reading import read_split
from jetliner_dist.sources import LocalFileSource, MemorySource
from strategies import CODECS, avro_cases

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

SEQ_SCHEMA = {
    "type": "record",
    "name": "Seq",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "tag", "type": "bytes"},
        {"name": "note", "type": "string"},
    ],
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


class _File:
    """One file, planned either in memory or as a temporary local file (the
    two byte sources read through different paths: memoryviews vs a reused
    window buffer filled with ``preadv``)."""

    def __init__(self, data: bytes, kind: str) -> None:
        self.data, self.kind, self.path = data, kind, None

    def __enter__(self) -> "_File":
        if self.kind == "local":
            fd, self.path = tempfile.mkstemp(suffix=".avro")
            with os.fdopen(fd, "wb") as f:
                f.write(self.data)
            self.plan = jd.plan(self.path)
            self.source = None  # read_split opens the path itself
        else:
            self.plan = jd.plan(self.data)
            self.source = MemorySource(self.data)
        self.file = self.plan.files[0]
        return self

    def __exit__(self, *exc) -> None:
        if self.path:
            os.unlink(self.path)

    def read(self, split: Split) -> list[pa.RecordBatch]:
        return list(read_split(split, self.plan.spec, source=self.source))

    def count(self, split: Split) -> int:
        """``count_split_rows``: a positioned-read header walk for local
        files, framed windows for memory."""
        source = self.source or LocalFileSource.open(self.path)
        return count_split_rows(source, split)

    def splits(self, bounds: list[int]) -> list[Split]:
        return [Split(self.file, a, b, i, 0) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def _bounds(cuts: list[int], size: int) -> list[int]:
    """Split boundaries from 0 to ``size`` through the sorted cut points
    (repeated points make empty splits)."""
    return [0, *sorted(cuts), size]


@st.composite
def cut_points(draw, shape: Layout, size: int) -> list[int]:
    """Arbitrary offsets in [0, size], biased towards the edges that matter:
    each sync marker's first byte, one byte either side, its last byte, the
    header's end."""
    edges = {0, size, shape.header_end - 16, shape.header_end}
    for block in shape.blocks:
        edges.update(block.marker + d for d in (-1, 0, 1, 15, 16))
    edges = sorted(e for e in edges if 0 <= e <= size)
    anywhere = st.integers(0, size)
    return draw(st.lists(anywhere | st.sampled_from(edges), max_size=12))


def _check_splits(f: _File, bounds: list[int]) -> pa.Table:
    """Read every split; check each against the blocks it owns; return the
    concatenation."""
    shape = layout(f.data)
    schema = f.plan.arrow_schema
    batches = []
    for split in f.splits(bounds):
        got = f.read(split)
        owned = shape.owned(split.start, split.end)
        assert all(b.schema.equals(schema) for b in got), split
        rows = sum(b.num_rows for b in got)
        assert rows == sum(b.count for b in owned), (
            f"split [{split.start}, {split.end}) read {rows} rows; it owns blocks "
            f"{[b.marker for b in owned]} of markers {[b.marker for b in shape.blocks]}"
        )
        assert f.count(split) == rows, f"count_split_rows of [{split.start}, {split.end})"
        if not owned:
            assert len(got) == 1 and got[0].num_rows == 0, "a split that owns no block"
        batches.extend(got)
    return pa.Table.from_batches(batches, schema=schema)


def _assert_same_rows(actual: pa.Table, expected: pa.Table, schema) -> None:
    """Equal rows, whatever the batches (canonical JSON where Arrow's equality
    says no: NaN is not equal to itself there). Whether the whole-file read is
    right is ``test_property``'s question (against fastavro), not this module's."""
    assert actual.schema.equals(expected.schema)
    if not actual.equals(expected):
        assert_canonical_equal(arrow_to_canonical(actual, schema),
                               arrow_to_canonical(expected, schema))


def _sequence(n: int, sync: bytes | None = None, every: int = 0) -> list[dict]:
    """Records numbered 0..n-1; every ``every``-th one carries ``sync`` in its
    bytes field, alone or followed by bytes that look like a block header,
    and (when ``sync`` is ASCII) in its string field.

    What follows each copy fails the one-block framing check by construction:
    after the bytes field comes the string's length and a "y" (an odd byte,
    so a negative block size); after the copy inside the string, a "y" (a
    negative record count). Bytes after a copy that frame one whole block up
    to a *real* sync marker would pass any forward check (what follows is
    real): no reader that splits at sync markers can tell such a copy from a
    marker, so the data here never holds such bytes.
    """
    records = []
    for i in range(n):
        tag, note = b"", f"r{i}"
        if every and i % every == 0:
            tag = sync + [b"", zigzag(1) + zigzag(3) + b"abc", zigzag(0) + zigzag(0)][i % 3]
            note = f"y{sync.decode()}y{i}" if sync.isascii() else f"y{i}"
        records.append({"id": i, "tag": tag, "note": note})
    return records


# ---------------------------------------------------------------------------
# The property: random schemas, every codec, any cut points
# ---------------------------------------------------------------------------


@SETTINGS
@given(case=avro_cases(max_records=40), codec=st.sampled_from(CODECS),
       sync_interval=st.integers(1, 300), kind=st.sampled_from(["memory", "local"]),
       data=st.data())
def test_any_cut_points_read_every_record_once(case, codec, sync_interval, kind, data):
    file = write(case.schema, case.records, codec=codec, sync_interval=sync_interval)
    with _File(file, kind) as f:
        cuts = data.draw(cut_points(layout(file), len(file)), label="cuts")
        table = _check_splits(f, _bounds(cuts, len(file)))
    whole = jd.read_table(file, max_workers=1)
    assert table.num_rows == whole.num_rows == len(case.records)
    _assert_same_rows(table, whole, writer_schema_of(file))


@SETTINGS
@given(n=st.integers(0, 400), codec=st.sampled_from(CODECS), sync_interval=st.integers(1, 500),
       split_size=st.integers(1, 4000), empty_blocks=st.booleans())
def test_plan_splits_of_any_size_read_ids_in_order(n, codec, sync_interval, split_size,
                                                   empty_blocks):
    """``plan_splits`` of any size (also files with zero-record blocks):
    the ids come back 0..n-1, in order."""
    file = write(SEQ_SCHEMA, _sequence(n), codec=codec, sync_interval=sync_interval)
    if empty_blocks:
        file = with_empty_blocks(file, codec)
    with _File(file, "memory") as f:
        splits = plan_splits(f.plan.files, split_size)
        bounds = [splits[0].start, *(s.end for s in splits)]
        table = _check_splits(f, bounds)
    assert table.column("id").to_pylist() == list(range(n))


@SETTINGS
@given(n=st.integers(1, 300), codec=st.sampled_from(CODECS), sync_interval=st.integers(1, 200),
       data=st.data())
def test_arbitrary_cuts_read_ids_exactly_once(n, codec, sync_interval, data):
    file = write(SEQ_SCHEMA, _sequence(n), codec=codec, sync_interval=sync_interval)
    with _File(file, data.draw(st.sampled_from(["memory", "local"]), label="kind")) as f:
        cuts = data.draw(cut_points(layout(file), len(file)), label="cuts")
        table = _check_splits(f, _bounds(cuts, len(file)))
    assert table.column("id").to_pylist() == list(range(n))


# ---------------------------------------------------------------------------
# The sync marker inside record data and header metadata
# ---------------------------------------------------------------------------

# Writers draw sync markers at random: a marker with few distinct bytes (all
# zeros) could frame by chance inside data, which no validation can rule out.
ascii_syncs = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=16,
                      max_size=16).map(str.encode).filter(lambda s: len(set(s)) >= 8)
any_syncs = st.binary(min_size=16, max_size=16).filter(lambda s: len(set(s)) >= 8)


@SETTINGS
@given(sync=ascii_syncs | any_syncs, n=st.integers(1, 300), every=st.integers(1, 7),
       sync_interval=st.integers(1, 300), in_metadata=st.booleans(),
       kind=st.sampled_from(["memory", "local"]), data=st.data())
def test_sync_marker_inside_records_and_metadata(sync, n, every, sync_interval, in_metadata, kind,
                                                 data):
    """Uncompressed records hold the file's sync marker (alone, and followed by
    bytes that look like a block header); candidates found there must be
    rejected, whatever the cut points."""
    metadata = {"comment": f"copy of the marker: {sync.decode()}"} if (
        in_metadata and sync.isascii()) else None
    file = write(SEQ_SCHEMA, _sequence(n, sync, every), sync_interval=sync_interval,
                 sync_marker=sync, metadata=metadata)
    shape = layout(file)
    assert shape.sync == sync
    assert file.count(sync) > len(shape.blocks) + 1, "the marker occurs inside the data"
    with _File(file, kind) as f:
        cuts = data.draw(cut_points(shape, len(file)), label="cuts")
        # Also cut just before each copy of the marker inside the records.
        copies = [i for i in range(len(file)) if file.startswith(sync, i)]
        cuts += data.draw(st.lists(st.sampled_from(copies), max_size=4), label="at copies")
        table = _check_splits(f, _bounds(cuts, len(file)))
    assert table.column("id").to_pylist() == list(range(n))
    assert table.column("tag").to_pylist() == [r["tag"] for r in _sequence(n, sync, every)]


def test_sync_marker_in_header_metadata():
    """The header's metadata holds the marker (twice); splits that start or end
    anywhere in the header still give each block to one split."""
    sync = b"0123456789abcdef"
    file = write(SEQ_SCHEMA, _sequence(50), sync_interval=100, sync_marker=sync,
                 metadata={"a": sync.decode(), "b": sync.decode() * 2})
    shape = layout(file)
    assert file.index(sync) < shape.header_end - 16, "a copy inside the metadata"
    with _File(file, "memory") as f:
        for cut in range(0, shape.header_end + 1):
            table = _check_splits(f, [0, cut, len(file)])
            assert table.column("id").to_pylist() == list(range(50))


def test_find_first_block_from_every_offset():
    """For every start offset, the first block whose marker begins at or
    after it (sync copies in records and metadata are skipped)."""
    sync = b"!!sync--marker!!"
    file = write(SEQ_SCHEMA, _sequence(40, sync, 3), sync_interval=60, sync_marker=sync,
                 metadata={"m": sync.decode()})
    shape = layout(file)
    assert len(shape.blocks) > 3
    plan = jd.plan(file)
    source, f = MemorySource(file), plan.files[0]
    for start in range(len(file) + 1):
        expected = next((b.start for b in shape.blocks if b.marker >= start), None)
        found = find_first_block(source, f, start, len(file), plan.spec.max_block_size)
        assert found == expected, start


# ---------------------------------------------------------------------------
# Splits that own no block
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_split_inside_one_block_yields_one_empty_batch(codec):
    """One big block: every split but the one holding the header's marker
    owns nothing and yields one empty batch with the plan's schema (enum and
    file path column included)."""
    schema = {"type": "record", "name": "E", "fields": [
        {"name": "id", "type": "long"},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["R", "G", "B"]}},
    ]}  # fmt: skip
    records = [{"id": i, "e": "RGB"[i % 3]} for i in range(2000)]
    file = write(schema, records, codec=codec, sync_interval=10**9)
    shape = layout(file)
    assert len(shape.blocks) == 1
    plan = jd.plan(file, include_file_paths="path")
    spec = plan.spec
    source = MemorySource(file)
    bounds = [0, shape.header_end - 16, shape.header_end - 15, *range(shape.header_end, len(file), 97),
              len(file)]  # fmt: skip
    for a, b in zip(bounds, bounds[1:]):
        batches = list(read_split(Split(plan.files[0], a, b, 0, 0), spec, source=source))
        if a <= shape.blocks[0].marker < b:
            assert sum(x.num_rows for x in batches) == 2000
            assert batches[0].column("path")[0].as_py() == "<bytes>"
        else:
            assert len(batches) == 1 and batches[0].num_rows == 0
        assert all(x.schema.equals(plan.arrow_schema) for x in batches)
        assert batches[0].schema.field("e").type == pa.dictionary(pa.int32(), pa.string())


def test_file_without_blocks_yields_one_empty_batch():
    file = write(SEQ_SCHEMA, [])
    plan = jd.plan(file)
    assert plan.files[0].header_end == len(file)
    (split,) = plan.splits
    batches = list(read_split(split, plan.spec, source=MemorySource(file)))
    assert len(batches) == 1 and batches[0].num_rows == 0
    assert batches[0].schema.equals(plan.arrow_schema)


def test_split_plan_is_plan_of_the_engine():
    """The engine reads the same splits: reading a plan's splits by hand with
    ``read_split`` equals ``read_table`` with the same options."""
    file = write(SEQ_SCHEMA, _sequence(3000), codec="deflate", sync_interval=500)
    plan: Plan = jd.plan(file, split_size=1000, columns=["note", "id"])
    assert len(plan.splits) > 10
    source = MemorySource(file)
    by_hand = pa.Table.from_batches(
        [b for s in plan.splits for b in read_split(s, plan.spec, source=source)],
        schema=plan.arrow_schema,
    )
    assert by_hand.equals(jd.read_table(file, split_size=1000, columns=["note", "id"]))


@pytest.mark.parametrize("at", [0, 5, 2**20 - 8, 2**20 - 16, 2**20, 3 * 2**20 - 16, None])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "array"])
def test_the_scan_finds_a_marker_anywhere_in_any_buffer(at, kind):
    """Windows from object stores are arrays of megabytes, searched a piece
    at a time: a marker across two pieces, at either end, repeated or absent
    is found (or not) where ``bytes.find`` finds it."""
    import numpy as np

    from jetliner_dist.boundaries import _find

    marker = bytes(range(200, 216))
    data = bytearray(3 * 2**20)
    if at is not None:
        data[at : at + 16] = marker
        if at + 1016 <= len(data):
            data[at + 1000 : at + 1016] = marker
    window = {
        "bytes": bytes(data), "bytearray": data, "memoryview": memoryview(data),
        "array": np.frombuffer(bytes(data), np.uint8),
    }[kind]  # fmt: skip
    for start in (0, 1, 2**20):
        assert _find(window, marker, start) == bytes(data).find(marker, start)
