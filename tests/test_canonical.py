"""Unit tests of the oracle in ``canonical.py``, on hand-built Arrow data.

The oracle must be trustworthy before the reader exists: every rule of the
corpus conventions and of the Arrow mapping is pinned here, and the fastavro
half is checked against the whole corpus (whose expected records two
independent decoders agreed on).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import struct
import uuid
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest

from canonical import (
    ArrowShapeError,
    arrow_to_canonical,
    arrow_type_problems,
    assert_canonical_equal,
    expected_arrow_schema,
    fastavro_to_canonical,
    first_difference,
    header_metadata,
    parse_schema,
    render_date,
    render_decimal,
    render_time,
    render_timestamp,
    writer_schema_of,
)
from corruption import zigzag

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "avro-corpus"


def record(*fields, name="R", **extra):
    """A record schema from (name, type) pairs."""
    return {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields],
            **extra}


def table(**columns) -> pa.Table:
    return pa.table(columns)


def one(writer_field_type, arr: pa.Array) -> list:
    """Canonical values of one column ``x`` of type ``writer_field_type``."""
    rows = arrow_to_canonical(pa.table({"x": arr}), record(("x", writer_field_type)))
    return [r["x"] for r in rows]


# ---------------------------------------------------------------------------
# Renderers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days, text",
    [
        (0, "1970-01-01"),
        (-1, "1969-12-31"),
        (19723, "2024-01-01"),
        (-719162, "0001-01-01"),
        (-719163, "0000-12-31"),  # year 0 exists in the proleptic calendar
        (-719528, "0000-01-01"),
        (-719529, "-0001-12-31"),
        (2932896, "9999-12-31"),
        (2932897, "+10000-01-01"),
        (11016, "2000-02-29"),
    ],
)
def test_render_date(days, text):
    assert render_date(days) == text


def test_render_date_matches_python_datetime_in_range():
    for days in range(-719_162, 2_932_897, 997):
        assert render_date(days) == (dt.date(1970, 1, 1) + dt.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    "micros, text",
    [
        (0, "00:00:00.000000"),
        (1, "00:00:00.000001"),
        (86_399_999_999, "23:59:59.999999"),
        (86_400_000_000, "24:00:00.000000"),  # time-millis 86,400,000 in the corpus
        (550_000_000, "00:09:10.000000"),
    ],
)
def test_render_time(micros, text):
    assert render_time(micros) == text


@pytest.mark.parametrize(
    "value, unit, utc, text",
    [
        (0, "millis", True, "1970-01-01T00:00:00.000000Z"),
        (-1, "millis", True, "1969-12-31T23:59:59.999000Z"),
        (-1, "micros", False, "1969-12-31T23:59:59.999999"),
        (1, "nanos", True, "1970-01-01T00:00:00.000000001Z"),
        (-1, "nanos", False, "1969-12-31T23:59:59.999999999"),
        (1_718_454_645_123, "millis", False, "2024-06-15T12:30:45.123000"),
        (-62_167_212_000_000, "millis", False, "0000-01-01T02:00:00.000000"),
        (253_402_318_799_000, "millis", False, "+10000-01-01T04:59:59.000000"),
        (2**63 - 1, "nanos", True, "2262-04-11T23:47:16.854775807Z"),
    ],
)
def test_render_timestamp(value, unit, utc, text):
    assert render_timestamp(value, unit, utc) == text


@pytest.mark.parametrize(
    "unscaled, scale, text",
    [
        (0, 0, "0"),
        (0, 2, "0.00"),
        (5, 3, "0.005"),
        (-5, 3, "-0.005"),
        (12345, 2, "123.45"),
        (-12345, 0, "-12345"),
        (10**75, 10, "1" + "0" * 65 + "." + "0" * 10),
    ],
)
def test_render_decimal(unscaled, scale, text):
    assert render_decimal(unscaled, scale) == text


# ---------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------


def test_null_boolean_int_long():
    t = table(n=pa.array([None, None], pa.null()), b=pa.array([True, False]),
              i=pa.array([-(2**31), 7], pa.int32()), l=pa.array([2**63 - 1, -1], pa.int64()))
    schema = record(("n", "null"), ("b", "boolean"), ("i", "int"), ("l", "long"))
    assert arrow_to_canonical(t, schema) == [
        {"n": None, "b": True, "i": -(2**31), "l": 2**63 - 1},
        {"n": None, "b": False, "i": 7, "l": -1},
    ]


def test_float32_renders_the_exact_double_and_specials_as_strings():
    values = one("float", pa.array([1.1, float("nan"), float("inf"), float("-inf"), -0.0],
                                   pa.float32()))
    assert values[0] == 1.100000023841858
    assert values[1:4] == ["NaN", "Infinity", "-Infinity"]
    assert math.copysign(1, values[4]) == -1


def test_double():
    assert one("double", pa.array([10.1, float("nan"), 1e308])) == [10.1, "NaN", 1e308]


def test_strings_and_bytes():
    assert one("string", pa.array(["", "é", None], pa.large_string())) == ["", "é", None]
    assert one("string", pa.array(["a"], pa.string())) == ["a"]
    assert one("bytes", pa.array([b"", b"12312adf"], pa.large_binary())) == ["", "MTIzMTJhZGY="]
    fixed = {"type": "fixed", "name": "F", "size": 2}
    assert one(fixed, pa.array([b"\x00\xff"], pa.binary(2))) == ["AP8="]


def test_enum_renders_symbols_and_checks_the_dictionary():
    enum = {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}
    arr = pa.DictionaryArray.from_arrays(pa.array([2, 0, None], pa.int32()), ["A", "B", "C"])
    assert one(enum, arr) == ["C", "A", None]
    wrong = pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), ["C", "A"])
    with pytest.raises(ArrowShapeError, match="dictionary"):
        one(enum, wrong)


# ---------------------------------------------------------------------------
# Logical types
# ---------------------------------------------------------------------------


def test_decimal_on_bytes_and_fixed_including_decimal256():
    dec = {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2}
    arr = pa.array([decimal.Decimal("123.45"), decimal.Decimal("-0.05"), None],
                   pa.decimal128(5, 2))
    assert one(dec, arr) == ["123.45", "-0.05", None]

    big = {"type": "fixed", "name": "D", "size": 32, "logicalType": "decimal",
           "precision": 76, "scale": 10}
    value = decimal.Decimal("9" * 66 + "." + "9" * 10)
    negative = decimal.Decimal("-" + str(value))  # not -value: that rounds to 28 digits
    assert one(big, pa.array([value, negative], pa.decimal256(76, 10))) == [
        str(value), str(negative)]


def test_decimal_scale_mismatch_is_a_shape_error():
    dec = {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2}
    with pytest.raises(ArrowShapeError, match="scale"):
        one(dec, pa.array([decimal.Decimal("1.000")], pa.decimal128(5, 3)))


def test_uuid_on_string_and_fixed():
    text = "fe7bc30b-4ce8-4c5e-b67c-2234a2d38e66"
    uuid_string = {"type": "string", "logicalType": "uuid"}
    assert one(uuid_string, pa.array([text], pa.large_string())) == [text]
    fixed = {"type": "fixed", "name": "U", "size": 16, "logicalType": "uuid"}
    assert one(fixed, pa.array([text], pa.large_string())) == [text]


def test_date_time_and_timestamps_from_raw_integers():
    days = pa.array([0, -719163, 2932897, None], pa.int32()).cast(pa.date32())
    assert one({"type": "int", "logicalType": "date"}, days) == [
        "1970-01-01", "0000-12-31", "+10000-01-01", None]
    millis = pa.array([86_400_000, 1], pa.int32()).view(pa.time32("ms"))
    assert one({"type": "int", "logicalType": "time-millis"}, millis) == [
        "24:00:00.000000", "00:00:00.001000"]
    micros = pa.array([1], pa.int64()).view(pa.time64("us"))
    assert one({"type": "long", "logicalType": "time-micros"}, micros) == ["00:00:00.000001"]

    raw = pa.array([253_402_318_799_000, -1, None], pa.int64())
    ts_ms = {"type": "long", "logicalType": "timestamp-millis"}
    assert one(ts_ms, raw.view(pa.timestamp("ms", tz="UTC"))) == [
        "+10000-01-01T04:59:59.000000Z", "1969-12-31T23:59:59.999000Z", None]
    local_us = {"type": "long", "logicalType": "local-timestamp-micros"}
    raw_us = pa.array([1_000_001, -1, None], pa.int64())
    assert one(local_us, raw_us.view(pa.timestamp("us"))) == [
        "1970-01-01T00:00:01.000001", "1969-12-31T23:59:59.999999", None]
    ts_ns = {"type": "long", "logicalType": "timestamp-nanos"}
    assert one(ts_ns, pa.array([1], pa.int64()).view(pa.timestamp("ns", tz="UTC"))) == [
        "1970-01-01T00:00:00.000000001Z"]
    local_ns = {"type": "long", "logicalType": "local-timestamp-nanos"}
    assert one(local_ns, pa.array([0], pa.int64()).view(pa.timestamp("ns"))) == [
        "1970-01-01T00:00:00.000000000"]


def test_duration_struct():
    duration = {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}
    u32 = pa.uint32()
    arr = pa.StructArray.from_arrays(
        [pa.array([1, 2**32 - 1], u32), pa.array([15, 0], u32), pa.array([500, 7], u32)],
        names=["months", "days", "millis"],
        mask=pa.array([False, True]),
    )
    assert one(duration, arr) == [{"months": 1, "days": 15, "millis": 500}, None]


@pytest.mark.parametrize(
    "writer_type, arrow_type",
    [
        ({"type": "fixed", "name": "F", "size": 2, "logicalType": "decimal", "precision": 5},
         pa.binary(2)),  # 5 digits do not fit in 2 bytes
        ({"type": "bytes", "logicalType": "decimal", "precision": 3, "scale": 4},
         pa.large_binary()),  # scale > precision
        ({"type": "bytes", "logicalType": "decimal", "precision": 77}, pa.large_binary()),
        ({"type": "bytes", "logicalType": "big-decimal"}, pa.large_binary()),
        ({"type": "bytes", "logicalType": "uuid"}, pa.large_binary()),
        ({"type": "string", "logicalType": "date"}, pa.large_string()),
        ({"type": "long", "logicalType": "time-millis"}, pa.int64()),
        ({"type": "int", "logicalType": "timestamp-millis"}, pa.int32()),
        ({"type": "fixed", "name": "F", "size": 8, "logicalType": "uuid"}, pa.binary(8)),
        ({"type": "fixed", "name": "F", "size": 16, "logicalType": "duration"}, pa.binary(16)),
        ({"type": "int", "logicalType": "no-such-type"}, pa.int32()),
    ],
)
def test_invalid_or_unknown_logical_types_map_to_the_underlying_type(writer_type, arrow_type):
    assert expected_arrow_schema(record(("x", writer_type))).field("x").type == arrow_type


# ---------------------------------------------------------------------------
# Complex types
# ---------------------------------------------------------------------------


def test_arrays_with_nulls_and_slices():
    arr = pa.array([[1, 2], None, [], [3]], pa.large_list(pa.int32()))
    schema = {"type": "array", "items": "int"}
    assert one(["null", schema], arr) == [[1, 2], None, [], [3]]
    assert one(["null", schema], arr.slice(2)) == [[], [3]]
    assert one(["null", schema], arr.slice(1, 1)) == [None]


def test_maps_with_nulls_and_slices():
    arr = pa.array([[("a", 1)], None, [("b", 2), ("c", 3)]],
                   pa.map_(pa.large_string(), pa.int64()))
    schema = ["null", {"type": "map", "values": "long"}]
    assert one(schema, arr) == [{"a": 1}, None, {"b": 2, "c": 3}]
    assert one(schema, arr.slice(2)) == [{"b": 2, "c": 3}]


def test_chunked_columns():
    col = pa.chunked_array([pa.array([1], pa.int32()), pa.array([2, 3], pa.int32())])
    assert arrow_to_canonical(pa.table({"x": col}), record(("x", "int"))) == [
        {"x": 1}, {"x": 2}, {"x": 3}]


def test_nested_records_and_record_batches():
    inner = record(("a", "int"), ("b", ["null", "string"]), name="Inner")
    schema = record(("r", inner), ("again", "Inner"))
    struct = pa.StructArray.from_arrays(
        [pa.array([1], pa.int32()), pa.array([None], pa.large_string())], names=["a", "b"])
    batch = pa.record_batch({"r": struct, "again": struct})
    assert arrow_to_canonical(batch, schema) == [
        {"r": {"a": 1, "b": None}, "again": {"a": 1, "b": None}}]


def test_zero_field_records():
    no_columns = pa.table({"x": [1, 2]}).drop_columns(["x"])
    assert arrow_to_canonical(no_columns, record()) == [{}, {}]
    empty = pa.StructArray.from_arrays([], fields=[], mask=pa.array([False, True]))
    assert one(["null", record(name="Empty")], empty) == [{}, None]


def test_top_level_non_record_reads_column_value():
    assert arrow_to_canonical(pa.table({"value": pa.array([1, 2], pa.int32())}), "int") == [1, 2]
    assert arrow_to_canonical(pa.table({"value": pa.array([None, 3], pa.int32())}),
                              '["null", "int"]') == [None, 3]
    with pytest.raises(ArrowShapeError):
        arrow_to_canonical(pa.table({"x": pa.array([1])}), "long")


def test_general_union_is_a_struct_of_branches():
    rec = record(("a", "int"), name="ns.Rec")
    schema = ["null", "int", "string", rec, {"type": "array", "items": "long"}]
    arr = pa.StructArray.from_arrays(
        [
            pa.array([5, None, None, None, None], pa.int32()),
            pa.array([None, "s", None, None, None], pa.large_string()),
            pa.StructArray.from_arrays([pa.array([0, 0, 9, 0, 0], pa.int32())], names=["a"],
                                       mask=pa.array([True, True, False, True, True])),
            pa.array([None, None, None, [1], None], pa.large_list(pa.int64())),
        ],
        names=["int", "string", "Rec", "array"],
        mask=pa.array([False, False, False, False, True]),
    )
    assert one(schema, arr) == [5, "s", {"a": 9}, [1], None]
    assert one(schema, arr.slice(1, 3)) == ["s", {"a": 9}, [1]]


def test_general_union_with_two_branches_set_is_a_shape_error():
    arr = pa.StructArray.from_arrays(
        [pa.array([1], pa.int32()), pa.array(["x"], pa.large_string())], names=["int", "string"])
    with pytest.raises(ArrowShapeError, match="exactly one"):
        one(["int", "string"], arr)


def test_union_struct_names_must_follow_the_branch_types():
    arr = pa.StructArray.from_arrays(
        [pa.array([1], pa.int32()), pa.array([None], pa.large_string())], names=["a", "b"])
    with pytest.raises(ArrowShapeError, match="union struct fields"):
        one(["int", "string"], arr)


def test_slots_under_a_null_parent_are_ignored_but_reported_when_visible():
    """Children of a null struct are undefined: a union with no branch set there
    is harmless, but the same slot under a valid parent is a shape error."""
    union = pa.StructArray.from_arrays(
        [pa.array([None], pa.int32()), pa.array([None], pa.large_string())],
        names=["int", "string"])
    enum = pa.DictionaryArray.from_arrays(pa.array([7], pa.int32()), ["A"], safe=False)
    inner = record(("u", ["int", "string"]),
                   ("e", {"type": "enum", "name": "E", "symbols": ["A"]}), name="In")
    for mask, ok in ((True, True), (False, False)):
        parent = pa.StructArray.from_arrays([union, enum], names=["u", "e"],
                                            mask=pa.array([mask]))
        if ok:
            assert one(["null", inner], parent) == [None]
        else:
            with pytest.raises(ArrowShapeError, match="exactly one union branch"):
                one(["null", inner], parent)


def test_single_branch_union_is_its_branch():
    assert one(["int"], pa.array([4], pa.int32())) == [4]
    assert expected_arrow_schema(record(("x", ["int"]))).field("x").type == pa.int32()


def test_recursive_reference_is_json_text():
    schema = record(("value", "long"), ("next", ["null", "LongList"]), name="LongList")
    t = table(value=pa.array([1, 2], pa.int64()),
              next=pa.array(['{"value": 2, "next": null}', None], pa.large_string()))
    assert arrow_to_canonical(t, schema) == [
        {"value": 1, "next": {"value": 2, "next": None}}, {"value": 2, "next": None}]
    assert expected_arrow_schema(schema).field("next").type == pa.large_string()


def test_named_type_reuse_is_not_recursion():
    version = record(("major", "int"), name="Version", namespace="org.x")
    schema = record(("a", version), ("b", "Version"), ("c", "org.x.Version"), name="Req",
                    namespace="org.x")
    struct_type = pa.struct([("major", pa.int32())])
    assert list(expected_arrow_schema(schema).types) == [struct_type] * 3


def test_recursion_through_an_inner_record_and_arrays():
    node = record(("label", "string"), ("children", {"type": "array", "items": "Node"}),
                  name="Node")
    schema = record(("tree", node), ("other", "Node"), name="Top")
    expected_node = pa.struct([("label", pa.large_string()),
                               ("children", pa.large_list(pa.large_string()))])
    assert list(expected_arrow_schema(schema).types) == [expected_node, expected_node]


def test_namespaces_resolve_simple_and_full_names():
    schema = {
        "type": "record", "name": "A", "namespace": "one",
        "fields": [
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
            {"name": "f", "type": {"type": "enum", "name": "two.E", "symbols": ["Y"]}},
            {"name": "g", "type": "E"},
            {"name": "h", "type": "two.E"},
            {"name": "u", "type": ["one.E", "two.E"]},
        ],
    }
    root = parse_schema(schema)
    fields = dict(root.fields)
    assert fields["g"] is fields["e"] and fields["h"] is fields["f"]
    assert expected_arrow_schema(schema).field("u").type.names == ["E", "E"]


def test_columns_selects_and_orders_a_projection():
    schema = record(("a", "int"), ("b", "string"), ("c", "long"))
    t = table(c=pa.array([3], pa.int64()), a=pa.array([1], pa.int32()))
    assert arrow_to_canonical(t, schema, columns=["c", "a"]) == [{"c": 3, "a": 1}]
    with pytest.raises(ArrowShapeError, match="columns"):
        arrow_to_canonical(t, schema)


# ---------------------------------------------------------------------------
# Expected Arrow types
# ---------------------------------------------------------------------------


def test_expected_arrow_schema_of_every_kind():
    schema = record(
        ("n", "null"), ("b", "boolean"), ("i", "int"), ("l", "long"), ("f", "float"),
        ("d", "double"), ("s", "string"), ("y", "bytes"),
        ("fx", {"type": "fixed", "name": "F4", "size": 4}),
        ("e", {"type": "enum", "name": "E", "symbols": ["A"]}),
        ("a", {"type": "array", "items": "int"}),
        ("m", {"type": "map", "values": "string"}),
        ("o", ["null", "double"]), ("o2", ["double", "null"]),
        ("u", ["null", "int", "F4"]),
        ("dec", {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 3}),
        ("dec2", {"type": "bytes", "logicalType": "decimal", "precision": 39}),
        ("uu", {"type": "string", "logicalType": "uuid"}),
        ("dt", {"type": "int", "logicalType": "date"}),
        ("tm", {"type": "int", "logicalType": "time-millis"}),
        ("tu", {"type": "long", "logicalType": "time-micros"}),
        ("ts", {"type": "long", "logicalType": "timestamp-nanos"}),
        ("lts", {"type": "long", "logicalType": "local-timestamp-millis"}),
        ("dur", {"type": "fixed", "name": "Du", "size": 12, "logicalType": "duration"}),
    )
    got = expected_arrow_schema(schema)
    assert list(got.types) == [
        pa.null(), pa.bool_(), pa.int32(), pa.int64(), pa.float32(), pa.float64(),
        pa.large_string(), pa.large_binary(), pa.binary(4), pa.dictionary(pa.int32(), pa.string()),
        pa.large_list(pa.int32()), pa.map_(pa.large_string(), pa.large_string()),
        pa.float64(), pa.float64(), pa.struct([("int", pa.int32()), ("F4", pa.binary(4))]),
        pa.decimal128(38, 3), pa.decimal256(39, 0), pa.large_string(), pa.date32(),
        pa.time32("ms"), pa.time64("us"), pa.timestamp("ns", tz="UTC"), pa.timestamp("ms"),
        pa.struct([("months", pa.uint32()), ("days", pa.uint32()), ("millis", pa.uint32())]),
    ]


def test_arrow_type_problems_ignores_nullability_and_child_names_only():
    schema = record(("a", {"type": "array", "items": "int"}),
                    ("m", {"type": "map", "values": "int"}),
                    ("e", {"type": "enum", "name": "E", "symbols": ["A"]}))
    relaxed = pa.schema([
        ("a", pa.large_list(pa.field("element", pa.int32(), nullable=False))),
        ("m", pa.map_(pa.field("k", pa.large_string(), nullable=False),
                      pa.field("v", pa.int32(), nullable=False))),
        ("e", pa.dictionary(pa.int32(), pa.large_string())),
    ])
    assert arrow_type_problems(relaxed, schema) == []
    wrong = pa.schema([("a", pa.list_(pa.int32())), ("m", relaxed.field("m").type),
                       ("e", pa.dictionary(pa.int8(), pa.string()))])
    problems = arrow_type_problems(wrong, schema)
    assert len(problems) == 2 and "'a'" in problems[0] and "'e'" in problems[1]
    assert arrow_type_problems(pa.schema([("m", relaxed.field("m").type)]), schema,
                               columns=["m"]) == []


# ---------------------------------------------------------------------------
# fastavro → canonical
# ---------------------------------------------------------------------------


def _fastavro_roundtrip(schema, records):
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records)
    buf.seek(0)
    return list(fastavro.reader(buf))


def test_fastavro_objects_and_raw_logical_values():
    schema = record(
        ("dec", {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 3}),
        ("fdec", {"type": "fixed", "name": "FD", "size": 4, "logicalType": "decimal",
                  "precision": 9, "scale": 0}),
        ("uu", {"type": "string", "logicalType": "uuid"}),
        ("fu", {"type": "fixed", "name": "FU", "size": 16, "logicalType": "uuid"}),
        ("d", {"type": "int", "logicalType": "date"}),
        ("tm", {"type": "int", "logicalType": "time-millis"}),
        ("tu", {"type": "long", "logicalType": "time-micros"}),
        ("ts", {"type": "long", "logicalType": "timestamp-millis"}),
        ("lts", {"type": "long", "logicalType": "local-timestamp-micros"}),
        ("tn", {"type": "long", "logicalType": "timestamp-nanos"}),
        ("dur", {"type": "fixed", "name": "Du", "size": 12, "logicalType": "duration"}),
        ("f", "float"),
    )
    u = uuid.UUID("fe7bc30b-4ce8-4c5e-b67c-2234a2d38e66")
    rec = {
        "dec": decimal.Decimal("-12.345"), "fdec": decimal.Decimal("-7"),
        "uu": str(u).upper(), "fu": u.bytes, "d": -719162, "tm": 86_399_999,
        "tu": 1, "ts": -1, "lts": 1_000_001, "tn": -1,
        "dur": struct.pack("<3I", 1, 2, 3), "f": 1.1,
    }
    [got] = fastavro_to_canonical(_fastavro_roundtrip(schema, [rec]), schema)
    assert got == {
        "dec": "-12.345", "fdec": "-7", "uu": str(u), "fu": str(u), "d": "0001-01-01",
        "tm": "23:59:59.999000", "tu": "00:00:00.000001", "ts": "1969-12-31T23:59:59.999000Z",
        "lts": "1970-01-01T00:00:01.000001", "tn": "1969-12-31T23:59:59.999999999Z",
        "dur": {"months": 1, "days": 2, "millis": 3}, "f": 1.100000023841858,
    }


def test_fastavro_general_unions_are_recognised_by_value_class():
    a = record(("x", "int"), name="A")
    b = record(("y", "int"), name="B")
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    union = ["null", "boolean", "int", "double", "string", "bytes", a, b, ts,
             {"type": "array", "items": "int"}]
    schema = record(("u", union))
    values = [None, True, 3, 2.5, "s", b"\x01", ("A", {"x": 1}), ("B", {"y": 2}),
              ("long", 4), [1]]
    got = fastavro_to_canonical(_fastavro_roundtrip(schema, [{"u": v} for v in values]), schema)
    assert [r["u"] for r in got] == [
        None, True, 3, 2.5, "s", "AQ==", {"x": 1}, {"y": 2}, "1970-01-01T00:00:00.004000Z", [1]]


def test_fastavro_union_of_fixed_decimal_and_string_uuid():
    dec = {"type": "fixed", "name": "D", "size": 1, "logicalType": "decimal", "precision": 1}
    schema = record(("u", [dec, "boolean", {"type": "string", "logicalType": "uuid"}]))
    text = "00000000-0000-0000-0000-000000000000"
    records = [{"u": ("D", b"\x07")}, {"u": ("string", text)}]
    got = fastavro_to_canonical(_fastavro_roundtrip(schema, records), schema)
    assert [r["u"] for r in got] == ["7", text]


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


def test_first_difference_is_strict_about_json_types():
    assert first_difference(1, 1.0) == ("$", 1, 1.0)
    assert first_difference(True, 1) == ("$", True, 1)
    assert first_difference(0.0, -0.0) == ("$", 0.0, -0.0)
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == ("$.a[1].b", 2, 3)
    assert first_difference({"a": 1}, {"b": 1})[0] == "$ (keys)"
    assert first_difference([1], [1, 2]) == ("$ (length)", 1, 2)
    assert first_difference({"a": 1, "b": 2}, {"b": 2, "a": 1}) is None


def test_assert_canonical_equal_names_record_and_path():
    assert_canonical_equal([{"a": 1}], [{"a": 1}])
    with pytest.raises(AssertionError, match=r"1 of 2 records differ; first: record 1") as info:
        assert_canonical_equal([{"a": 1}, {"a": {"b": [1]}}], [{"a": 1}, {"a": {"b": [2]}}])
    assert "$.a.b[0]" in str(info.value)
    with pytest.raises(AssertionError, match="1 records, expected 2"):
        assert_canonical_equal([{"a": 1}], [{"a": 1}, {"a": 2}])


# ---------------------------------------------------------------------------
# Header parsing and the corpus
# ---------------------------------------------------------------------------


def test_writer_schema_of_path_bytes_and_stream():
    buf = io.BytesIO()
    schema = record(("a", "int"), name="T")
    fastavro.writer(buf, schema, [{"a": 1}], metadata={"k": "v"})
    data = buf.getvalue()
    assert writer_schema_of(data)["name"] == "T"
    assert writer_schema_of(io.BytesIO(data))["fields"] == [{"name": "a", "type": "int"}]
    assert header_metadata(data)["k"] == b"v"
    path = CORPUS / "files/apache-avro/share/test/data/syncInMeta.avro"
    assert writer_schema_of(path)["name"] == "Person"  # binary, non-UTF-8 metadata


def _manifest():
    return json.loads((CORPUS / "manifest.json").read_text())


def _corpus_valid():
    return [e for e in _manifest() if e["kind"] == "valid"]


# Files fastavro itself cannot read as they are: their logical values fall outside
# Python's datetime, or the header metadata is not UTF-8. The first two are read
# raw (logical types stripped from the header); the oracle still renders them
# from the original writer schema.
_FASTAVRO_RAW = {
    "files/duckdb-avro/test/localtimestamp-millis.avro",
    "files/duckdb-avro/test/time_millis.avro",
}
_FASTAVRO_UNREADABLE = {"files/apache-avro/share/test/data/syncInMeta.avro"}


def _strip_logical_types(schema):
    if isinstance(schema, dict):
        return {k: _strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_strip_logical_types(s) for s in schema]
    return schema


def _with_schema(data: bytes, schema) -> bytes:
    """The same file with another writer schema in its header."""
    stream = io.BytesIO(data)
    meta = header_metadata(stream)
    meta["avro.schema"] = json.dumps(schema).encode()
    out = bytearray(b"Obj\x01" + zigzag(len(meta)))
    for key, value in meta.items():
        out += zigzag(len(key.encode())) + key.encode() + zigzag(len(value)) + value
    return bytes(out + zigzag(0) + data[stream.tell():])


@pytest.mark.parametrize(
    "entry",
    [e for e in _corpus_valid() if e["file"] not in _FASTAVRO_UNREADABLE],
    ids=lambda e: e["file"],
)
def test_fastavro_oracle_reproduces_the_corpus(entry):
    """The fastavro half of the oracle agrees with every corpus file fastavro reads."""
    data = (CORPUS / entry["file"]).read_bytes()
    schema = writer_schema_of(data)
    if entry["file"] in _FASTAVRO_RAW:
        data = _with_schema(data, _strip_logical_types(schema))
    records = list(fastavro.reader(io.BytesIO(data)))
    expected = [json.loads(line) for line in (CORPUS / entry["expected"]).open()]
    assert_canonical_equal(fastavro_to_canonical(records, schema), expected,
                           context=entry["file"])
