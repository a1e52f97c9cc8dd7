"""Property tests: random schemas and records, written by fastavro, read by
jetliner_dist, judged against fastavro's own reading (canonical JSON).

Profiles (select with the environment variable ``HYPOTHESIS_PROFILE``):
``dev`` (default), ``ci`` (fewer examples and no shrinking, for the 2-core CI)
and ``thorough`` (many examples; with ``-m slow`` for a long hunt).
"""

from __future__ import annotations

import io
import os
import tempfile
import threading

import fastavro
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import jetliner_dist as jd
from canonical import (
    arrow_to_canonical,
    arrow_type_problems,
    assert_canonical_equal,
    fastavro_to_canonical,
    writer_schema_of,
)
from strategies import CODECS, Case, avro_cases, blocked_files, sync_intervals

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", max_examples=200, **_COMMON)
# CI does not shrink: a failure is reported at once (with its reproduce blob)
# instead of spending minutes of the 2-core budget on a minimal example.
settings.register_profile(
    "ci", max_examples=100, phases=[Phase.explicit, Phase.reuse, Phase.generate], **_COMMON
)
settings.register_profile("thorough", max_examples=1000, **_COMMON)


def _profile() -> settings:
    return settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


PROFILE = _profile()


def _scaled(fraction: float) -> settings:
    """The active profile with a fraction of its examples (for per-codec runs)."""
    return settings(PROFILE, max_examples=max(5, int(PROFILE.max_examples * fraction)))


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _write(case: Case, codec: str, sync_interval: int) -> bytes:
    """The case as an Avro file; a small ``sync_interval`` makes many blocks."""
    buf = io.BytesIO()
    fastavro.writer(buf, case.schema, case.records, codec=codec, sync_interval=sync_interval)
    return buf.getvalue()


def _fastavro_canonical(data: bytes) -> list:
    records = list(fastavro.reader(io.BytesIO(data)))
    return fastavro_to_canonical(records, writer_schema_of(data))


class _Source:
    """The file as each kind of source ``read_table`` accepts; paths are
    temporary files removed on exit."""

    def __init__(self, data: bytes, kind: str):
        self.data, self.kind, self.path = data, kind, None

    def __enter__(self):
        if self.kind == "bytes":
            return self.data
        if self.kind == "file":
            return io.BytesIO(self.data)
        fd, self.path = tempfile.mkstemp(suffix=".avro")
        with os.fdopen(fd, "wb") as f:
            f.write(self.data)
        return self.path

    def __exit__(self, *exc):
        if self.path:
            os.unlink(self.path)


source_kinds = st.sampled_from(["bytes", "file", "path"])


def _assert_rows_equal(actual: pa.Table, expected: pa.Table, schema, columns=None) -> None:
    """Same Arrow types and the same canonical rows."""
    assert actual.schema.names == expected.schema.names
    assert list(actual.schema.types) == list(expected.schema.types)
    assert actual.num_rows == expected.num_rows
    assert_canonical_equal(arrow_to_canonical(actual, schema, columns),
                           arrow_to_canonical(expected, schema, columns))


def _within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing the test if it runs longer than
    ``seconds`` (a hang must fail, not stall the suite). The call runs in a
    daemon thread so a hung call cannot keep the interpreter alive."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{fn.__name__}{kwargs} did not finish within {seconds} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _field_names(case: Case) -> list[str]:
    return [f["name"] for f in case.schema["fields"]]


# ---------------------------------------------------------------------------
# Explicit examples: bugs found once, kept as regressions
# ---------------------------------------------------------------------------

# A decimal of more than 28 digits inside a recursive value (carried as JSON
# text) must keep every digit: 28 is Python's default decimal precision.
_LONG_LIST_DECIMAL = Case(
    schema={"type": "record", "name": "LongList", "fields": [
        {"name": "next", "type": ["null", "LongList"]},
        {"name": "d", "type": {"type": "bytes", "logicalType": "decimal",
                               "precision": 29, "scale": 1}},
    ]},
    records=[{"next": ("LongList", {"next": None, "d": (10**29 - 1).to_bytes(13, "big")}),
              "d": b"\x00"}],
)

# Many one-record blocks: with split_size=1 there are more splits than
# threads, so splits queue up behind the workers.
_MANY_BLOCKS = Case(
    schema={"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]},
    records=[{"a": i} for i in range(20)],
)

# A zero-size fixed: Arrow has fixed_size_binary(0), Polars has no such type.
_EMPTY_FIXED = Case(
    schema={"type": "record", "name": "R",
            "fields": [{"name": "f", "type": {"type": "fixed", "name": "F", "size": 0}}]},
    records=[{"f": b""}],
)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@_scaled(0.5)
@given(case=avro_cases(), sync_interval=sync_intervals, kind=source_kinds)
@example(case=_LONG_LIST_DECIMAL, sync_interval=16000, kind="bytes")
def test_read_matches_fastavro(codec, case, sync_interval, kind):
    """Every schema, every codec, many blocks: same records as fastavro reads."""
    data = _write(case, codec, sync_interval)
    with _Source(data, kind) as source:
        table = jd.read_table(source)
    schema = writer_schema_of(data)
    assert arrow_type_problems(table.schema, schema) == []
    assert_canonical_equal(arrow_to_canonical(table, schema), _fastavro_canonical(data))


@PROFILE
@given(case=avro_cases(min_fields=1), codec=st.sampled_from(CODECS),
       sync_interval=sync_intervals, data=st.data())
def test_columns_equals_full_read_then_select(case, codec, sync_interval, data):
    """``columns=`` keeps the listed fields, in the listed order."""
    names = _field_names(case)
    columns = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names),
                                 unique=True), label="columns")
    file = _write(case, codec, sync_interval)
    full = jd.read_table(file)
    projected = jd.read_table(file, columns=columns)
    assert projected.column_names == columns
    _assert_rows_equal(projected, full.select(columns), writer_schema_of(file), columns)


@PROFILE
@given(case=avro_cases(), codec=st.sampled_from(CODECS), sync_interval=sync_intervals,
       data=st.data())
def test_n_rows_reads_the_first_rows(case, codec, sync_interval, data):
    n_rows = data.draw(st.integers(0, len(case.records) + 3), label="n_rows")
    file = _write(case, codec, sync_interval)
    full = jd.read_table(file)
    head = jd.read_table(file, n_rows=n_rows)
    # min(): pyarrow does not clamp slices of a table with no columns.
    expected = full.slice(0, min(n_rows, full.num_rows))
    _assert_rows_equal(head, expected, writer_schema_of(file))


@PROFILE
@given(case=avro_cases(), codec=st.sampled_from(CODECS), sync_interval=sync_intervals,
       batch_rows=st.integers(1, 12), kind=source_kinds)
def test_iter_batches_concatenate_to_read_table(case, codec, sync_interval, batch_rows, kind):
    """Streaming gives the same rows, in batches of at most ``batch_rows``."""
    file = _write(case, codec, sync_interval)
    full = jd.read_table(file)
    with _Source(file, kind) as source:
        batches = list(jd.iter_batches(source, batch_rows=batch_rows))
    assert all(b.num_rows <= batch_rows for b in batches)
    assert all(b.schema.equals(full.schema) for b in batches)
    streamed = pa.Table.from_batches(batches, schema=full.schema)
    _assert_rows_equal(streamed, full, writer_schema_of(file))


@PROFILE
@given(data=st.data())
def test_arrays_and_maps_in_several_blocks_read_like_fastavro(data):
    """Arrays and maps cut into blocks, some with a negative count and a byte
    size (legal Avro that fastavro never writes), decode to the same records."""
    case = data.draw(avro_cases(), label="case")
    file = data.draw(blocked_files(case), label="file")
    schema = writer_schema_of(file)
    expected = _fastavro_canonical(file)
    # The hand-made encoding is right: fastavro reads back what was drawn.
    assert_canonical_equal(expected, fastavro_to_canonical(case.records, case.schema))
    assert_canonical_equal(arrow_to_canonical(jd.read_table(file), schema), expected)


# No shrinking: every attempt at a hanging example costs the full timeout.
@settings(PROFILE, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(case=avro_cases(), codec=st.sampled_from(CODECS), sync_interval=sync_intervals,
       split_size=st.integers(1, 3000), max_workers=st.integers(1, 3), kind=source_kinds)
@example(case=_MANY_BLOCKS, codec="null", sync_interval=1, split_size=1, max_workers=2,
         kind="bytes")
def test_split_size_and_workers_keep_rows_and_order(case, codec, sync_interval, split_size,
                                                    max_workers, kind):
    """Cutting a file into splits (any size, even inside the header or a block)
    and reading them on threads gives the same rows in the same order."""
    file = _write(case, codec, sync_interval)
    full = jd.read_table(file, max_workers=1)
    with _Source(file, kind) as source:
        split = _within(30, jd.read_table, source, split_size=split_size,
                        max_workers=max_workers)
    _assert_rows_equal(split, full, writer_schema_of(file))
    assert jd.count_rows(file) == full.num_rows


@PROFILE
@given(case=avro_cases(), codec=st.sampled_from(CODECS), sync_interval=sync_intervals)
@example(case=_EMPTY_FIXED, codec="null", sync_interval=16000)
def test_read_avro_agrees_with_its_schema_and_the_table(case, codec, sync_interval):
    """The Polars read has the schema ``read_avro_schema`` announces, and the
    rows and columns of ``read_table``."""
    file = _write(case, codec, sync_interval)
    full = jd.read_table(file)
    frame = jd.read_avro(file)
    assert frame.schema == jd.read_avro_schema(file)
    assert frame.columns == full.column_names
    assert frame.height == full.num_rows


@pytest.mark.slow
@settings(PROFILE, max_examples=max(PROFILE.max_examples, 5000))
@given(case=avro_cases(max_records=60), codec=st.sampled_from(CODECS),
       sync_interval=sync_intervals, kind=source_kinds)
def test_read_matches_fastavro_long_run(case, codec, sync_interval, kind):
    """The main property with many more examples (excluded from CI)."""
    data = _write(case, codec, sync_interval)
    with _Source(data, kind) as source:
        table = jd.read_table(source)
    schema = writer_schema_of(data)
    assert arrow_type_problems(table.schema, schema) == []
    assert_canonical_equal(arrow_to_canonical(table, schema), _fastavro_canonical(data))
