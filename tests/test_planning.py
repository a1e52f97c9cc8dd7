"""Planning is pure: files in, splits out (DESIGN §3.1, STYLE habits 1-3).

No file is read here: :class:`AvroFile` values are made up, and the plan's
splits, sizes and groups are checked as data.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jetliner_dist as jd
from jetliner_dist.errors import SchemaError
from jetliner_dist.planning import (
    MAX_SPLIT_SIZE,
    MIN_SPLIT_SIZE,
    REMOTE_MIN_SPLIT_SIZE,
    SPLITS_PER_WORKER,
    AvroFile,
    Plan,
    ReadSpec,
    check_same_schema,
    default_split_size,
    group_splits,
    parse_size,
    plan_splits,
    runs_of_size,
)
from jetliner_dist.sources import REMOTE_READ_SIZE

SETTINGS = settings(max_examples=200, deadline=None)
SYNC = bytes(range(16))
SCHEMA = '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]}'
MiB = 1024 * 1024


def _file(size: int, header_end: int = 100, path: str = "/data/part-0.avro") -> AvroFile:
    return AvroFile(path, size, "snappy", SYNC, header_end, version="1700000000")


@st.composite
def avro_files(draw) -> AvroFile:
    header_end = draw(st.integers(20, 5000))
    size = header_end + draw(st.integers(0, 10**7) | st.integers(0, 300))
    return _file(size, header_end)


# ---------------------------------------------------------------------------
# plan_splits
# ---------------------------------------------------------------------------


@SETTINGS
@given(files=st.lists(avro_files(), min_size=1, max_size=5),
       split_size=st.integers(1, 10**6) | st.integers(1, 100))
def test_splits_cover_every_byte_exactly_once(files, split_size):
    # At most about a thousand splits per file keeps each example fast.
    split_size = max(split_size, max(f.size - f.header_end for f in files) // 1000)
    splits = plan_splits(files, split_size)
    assert [s.index for s in splits] == list(range(len(splits)))
    for file_index, file in enumerate(files):
        own = [s for s in splits if s.file_index == file_index]
        assert own and all(s.file is file for s in own)
        assert own[0].start == 0, "the first split owns the header's marker"
        assert own[-1].end == file.size
        for a, b in zip(own, own[1:]):
            assert a.end == b.start, "contiguous: no byte twice, none lost"
        assert all(s.start < s.end for s in own) or file.size == 0
        assert sum(s.size for s in own) == file.size
    # File order, then offset.
    assert [s.file_index for s in splits] == sorted(s.file_index for s in splits)


@SETTINGS
@given(file=avro_files(), split_size=st.integers(1, 10**6))
def test_split_sizes_follow_split_size(file, split_size):
    splits = plan_splits([file], split_size)
    data = file.size - file.header_end
    if data <= split_size:
        assert len(splits) == 1, "a small file is not split"
    else:
        assert len(splits) == -(-data // split_size)
    # Past the header, splits are even and at most split_size (±1 of rounding).
    sizes = [splits[0].size - file.header_end, *(s.size for s in splits[1:])]
    assert max(sizes) <= split_size + 1
    assert max(sizes) - min(sizes) <= 1


def test_small_and_empty_files_are_one_split():
    empty = _file(100, 100)  # header only, no blocks
    small = _file(100 + 10 * MiB, 100)
    assert [(s.start, s.end) for s in plan_splits([empty], 1)] == [(0, 100)]
    assert [(s.start, s.end) for s in plan_splits([small], 64 * MiB)] == [(0, small.size)]


def test_cut_points_fall_after_the_header():
    """A cut inside the header would give the first block to nobody sensible:
    every split after the first starts past the header's end."""
    file = _file(10_000, 4_000)
    splits = plan_splits([file], 1000)
    assert len(splits) == 6
    assert all(s.start > file.header_end for s in splits[1:])


@pytest.mark.parametrize("bad", [0, -1])
def test_split_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="split_size"):
        plan_splits([_file(1000)], bad)


# ---------------------------------------------------------------------------
# default_split_size
# ---------------------------------------------------------------------------


@SETTINGS
@given(sizes=st.lists(st.integers(0, 2**40), max_size=6), workers=st.integers(1, 256))
def test_default_split_size_is_bounded(sizes, workers):
    size = default_split_size([_file(s + 100) for s in sizes], workers)
    assert MIN_SPLIT_SIZE <= size <= MAX_SPLIT_SIZE


def test_default_split_size_keeps_every_worker_busy():
    """A large file gives each worker several splits; a small one is not cut
    into tiny splits; a huge one is capped."""
    one_gib = _file(1024 * MiB)
    for workers in (1, 2, 8):
        size = default_split_size([one_gib], workers)
        assert len(plan_splits([one_gib], size)) >= workers * SPLITS_PER_WORKER
    assert default_split_size([_file(MiB)], 2) == MIN_SPLIT_SIZE
    assert default_split_size([_file(1024**4)], 2) == MAX_SPLIT_SIZE
    assert default_split_size([], 4) == MIN_SPLIT_SIZE
    # The largest file decides, whatever the order.
    files = [_file(MiB), _file(400 * MiB), _file(10 * MiB)]
    assert default_split_size(files, 2) == default_split_size(files[::-1], 2) == 50 * MiB


@pytest.mark.parametrize("url", ["s3://bucket/a.avro", "gs://b/a.avro", "memory://a.avro",
                                 "https://host/a.avro"])  # fmt: skip
def test_files_in_object_stores_get_splits_of_a_read_window_or_more(url):
    """A remote split is at least one large request's worth."""
    assert REMOTE_MIN_SPLIT_SIZE == REMOTE_READ_SIZE
    assert default_split_size([_file(10 * MiB, path=url)], 2) == REMOTE_MIN_SPLIT_SIZE
    assert default_split_size([_file(MiB), _file(10 * MiB, path=url)], 8) == REMOTE_MIN_SPLIT_SIZE
    # Large files still give every worker several splits, up to the cap.
    assert default_split_size([_file(100 * MiB, path=url)], 2) == REMOTE_MIN_SPLIT_SIZE
    assert default_split_size([_file(512 * MiB, path=url)], 2) == 64 * MiB
    assert default_split_size([_file(4096 * MiB, path=url)], 4) == MAX_SPLIT_SIZE
    for local in ("/data/a.avro", "file:///data/a.avro", "local:///data/a.avro"):
        assert default_split_size([_file(10 * MiB, path=local)], 2) == MIN_SPLIT_SIZE


# ---------------------------------------------------------------------------
# group_splits
# ---------------------------------------------------------------------------


@SETTINGS
@given(sizes=st.lists(st.integers(1, 10**6) | st.integers(1, 10), min_size=0, max_size=60),
       groups=st.integers(1, 20))
def test_group_splits(sizes, groups):
    files = [_file(s + 1, 1, path=f"/d/{i}.avro") for i, s in enumerate(sizes)]
    splits = plan_splits(files, 10**9)
    grouped = group_splits(splits, groups)
    assert grouped == group_splits(list(splits), groups), "deterministic"
    assert [s for g in grouped for s in g] == splits, "order-preserving"
    assert len(grouped) == min(groups, len(splits)), "as many groups as asked, never empty"
    assert all(grouped)
    if splits:
        # Balanced: a group exceeds its share of the bytes by less than one split.
        share = sum(s.size for s in splits) / len(grouped)
        largest = max(s.size for s in splits)
        assert max(sum(s.size for s in g) for g in grouped) <= share + largest


def test_group_splits_of_equal_splits_are_equal():
    splits = plan_splits([_file(10_100, 100)], 100)
    assert [len(g) for g in group_splits(splits, 4)] == [25, 25, 25, 25]
    assert [len(g) for g in group_splits(splits, 3)] in ([34, 33, 33], [33, 34, 33], [33, 33, 34])


@SETTINGS
@given(sizes=st.lists(st.integers(1, 10**6), min_size=1, max_size=60), size=st.integers(1, 10**7))
def test_runs_of_size(sizes, size):
    files = [_file(s + 1, 1, path=f"/d/{i}.avro") for i, s in enumerate(sizes)]
    splits = plan_splits(files, 10**9)
    runs = runs_of_size(splits, size)
    assert [s for run in runs for s in run] == splits and all(runs)
    total = sum(s.size for s in splits)
    if total <= size * len(splits):  # small splits: about ``size`` bytes per run
        assert len(runs) == min(len(splits), -(-total // size))
    else:  # splits of ``size`` or more stay alone
        assert runs == [[split] for split in splits]


def test_runs_of_size_keep_large_splits_alone_and_group_small_files():
    big = plan_splits([_file(10_100, 100)], 1000)
    assert runs_of_size(big, 1000) == [[s] for s in big]
    small = plan_splits([_file(1_000, 100, path=f"/d/{i}.avro") for i in range(40)], 10**6)
    runs = runs_of_size(small, 10_000)  # 40 files of 1,000 bytes
    assert [len(run) for run in runs] == [10, 10, 10, 10]


@pytest.mark.parametrize("bad", [0, -3])
def test_group_splits_needs_a_positive_count(bad):
    with pytest.raises(ValueError, match="groups"):
        group_splits(plan_splits([_file(1000)], 100), bad)


# ---------------------------------------------------------------------------
# parse_size
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1, 1),
        (64 * MiB, 64 * MiB),
        ("123", 123),
        ("64 MiB", 64 * MiB),
        ("64MiB", 64 * MiB),
        ("64 mib", 64 * MiB),
        ("1 KiB", 1024),
        ("1.5 KiB", 1536),
        ("2 GiB", 2 * 1024**3),
        ("1 TiB", 1024**4),
        ("128MB", 128 * 10**6),
        ("128 mb", 128 * 10**6),
        ("1g", 10**9),
        ("1G", 10**9),
        ("2 k", 2000),
        ("10 kB", 10_000),
        ("1 B", 1),
        ("7b", 7),
        ("  3 MB  ", 3 * 10**6),
        ("0.5 MB", 500_000),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "bad",
    [0, -1, True, False, "", "   ", "MB", "abc", "-5 MB", "0", "0 MB", "0.1 B", "1 XB",
     "1.5.2 MB", "1e6", "12 MiBs", "1 i", "1 iB"],
)
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


# ---------------------------------------------------------------------------
# check_same_schema
# ---------------------------------------------------------------------------


def test_same_schema_ignores_json_spelling():
    a, b = _file(500, path="/d/a.avro"), _file(500, path="/d/b.avro")
    spaced = SCHEMA.replace(", ", ",   ").replace(": ", ":")
    assert check_same_schema([(a, SCHEMA), (b, spaced)]) == SCHEMA


def test_different_schemas_name_both_files_and_the_difference():
    a, b, c = (_file(500, path=f"/d/{n}.avro") for n in "abc")
    other = SCHEMA.replace('"long"', '"int"')
    with pytest.raises(SchemaError) as info:
        check_same_schema([(a, SCHEMA), (b, SCHEMA), (c, other)])
    message = str(info.value)
    assert "/d/a.avro" in message and "/d/c.avro" in message
    assert '$.fields[0].type: "long" vs "int"' in message


# ---------------------------------------------------------------------------
# Plan, Split, ReadSpec as data
# ---------------------------------------------------------------------------


def _plan(files: list[AvroFile], split_size: int) -> Plan:
    return Plan(tuple(files), tuple(plan_splits(files, split_size)), ReadSpec(SCHEMA))


def test_plan_repr_is_readable():
    files = [_file(3 * MiB + 100, path=f"/data/part-{i}.avro") for i in range(4)]
    text = repr(_plan(files, MiB))
    lines = text.splitlines()
    assert lines[0] == "Plan: 4 file(s), 12.0 MiB, 12 split(s)"
    assert lines[1] == "  split 0: /data/part-0.avro [0, 1048676) 1.0 MiB"
    assert lines[-2] == "  ... 4 more"
    assert lines[-1] == "  columns: a"
    assert len(lines) == 1 + 8 + 2, "at most eight splits are listed"


def test_plan_properties():
    files = [_file(1000, path="/d/a.avro"), _file(5000, path="/d/b.avro")]
    plan = _plan(files, 10_000)
    assert plan.total_bytes == 6000
    assert plan.arrow_schema.names == ["a"]
    assert list(plan.schema) == ["a"]
    assert [s.file.path for s in plan.splits] == ["/d/a.avro", "/d/b.avro"]


def test_split_spec_and_file_are_frozen_and_slotted():
    split = plan_splits([_file(1000)], 100)[0]
    for value in (split, split.file, ReadSpec(SCHEMA)):
        assert not hasattr(value, "__dict__")
        # CPython 3.11 raises TypeError from frozen *slotted* dataclasses
        # (python/cpython#90562); either way the value does not change.
        with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
            value.path = "x"  # type: ignore[misc]


def test_what_crosses_to_a_worker_pickles_small():
    """A split carries its file's facts (path, size, sync, version), not data;
    the spec carries the schema text once."""
    path = "s3://bucket/topic/year=2024/month=01/part-00000-0123456789abcdef.avro"
    split = plan_splits([_file(10**9, path=path)], 64 * MiB)[3]
    size = len(pickle.dumps(split))
    assert size < len(path) + 250, size
    assert pickle.loads(pickle.dumps(split)) == split
    wide = '{"type": "record", "name": "W", "fields": [%s]}' % ", ".join(
        f'{{"name": "c{i}", "type": "long"}}' for i in range(100)
    )
    spec = ReadSpec(wide, columns=("c1", "c7"), storage_options={"anon": True},
                    include_file_paths="path")
    size = len(pickle.dumps(spec))
    assert size < len(wide) + 300, size
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_plan_from_a_real_file_is_pure_data(tmp_path):
    """``jd.plan`` reads headers only; its splits pickle without the file."""
    import fastavro

    path = tmp_path / "f.avro"
    with path.open("wb") as f:
        fastavro.writer(f, {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]},
                        [{"a": i} for i in range(10_000)], sync_interval=100)
    plan = jd.plan(str(path), split_size=4096)
    assert len(plan.splits) > 5
    restored = pickle.loads(pickle.dumps((plan.splits, plan.spec)))
    assert restored == (plan.splits, plan.spec)
