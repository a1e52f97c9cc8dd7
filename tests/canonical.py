"""The test oracle: canonical JSON of Avro records, from Arrow or from fastavro.

Both readers are judged by one yardstick, the canonical JSON of
``avro-corpus/README.md`` (bytes in base64, decimals as exact strings, temporal
values as ISO text, unions untagged...). Values are rendered by walking the
*writer schema* alongside the data, with a schema model of its own so that the
oracle shares no code with the reader under test.

- :func:`arrow_to_canonical` renders a table produced by jetliner_dist
  (Arrow mapping of DESIGN §3.3);
- :func:`fastavro_to_canonical` renders records as ``fastavro.reader`` returns them;
- :func:`assert_canonical_equal` compares two renderings exactly and names the
  first differing record and the path inside it;
- :func:`expected_arrow_schema` / :func:`arrow_type_problems` check the Arrow
  types themselves, separately from the values;
- :func:`writer_schema_of` reads the writer schema from a file header.

Temporal values are rendered from raw integers, never through Python
``datetime``, so year 0, year 10000 and ``24:00:00`` come out right.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import math
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

import pyarrow as pa

__all__ = [
    "arrow_to_canonical",
    "fastavro_to_canonical",
    "assert_canonical_equal",
    "first_difference",
    "expected_arrow_schema",
    "arrow_type_problems",
    "writer_schema_of",
    "parse_schema",
    "ArrowShapeError",
]

# ---------------------------------------------------------------------------
# Schema model
# ---------------------------------------------------------------------------

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")

# Logical types valid on a primitive: logical name -> the primitive it annotates.
_PRIMITIVE_LOGICAL = {
    "date": "int",
    "time-millis": "int",
    "time-micros": "long",
    "timestamp-millis": "long",
    "timestamp-micros": "long",
    "timestamp-nanos": "long",
    "local-timestamp-millis": "long",
    "local-timestamp-micros": "long",
    "local-timestamp-nanos": "long",
    "uuid": "string",
}

# Arrow's widest decimal (decimal256) holds 76 digits; a wider decimal has no
# Arrow type, so it is treated like any other unusable logical type: ignored.
MAX_DECIMAL_PRECISION = 76

_TIMESTAMP_UNITS = {"millis": "ms", "micros": "us", "nanos": "ns"}


@dataclass(eq=False)
class Primitive:
    """A primitive type with its *valid* logical annotation, if any."""

    kind: str
    logical: str | None = None
    precision: int = 0
    scale: int = 0


@dataclass(eq=False)
class Fixed:
    fullname: str
    size: int
    logical: str | None = None
    precision: int = 0
    scale: int = 0

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]


@dataclass(eq=False)
class Enum:
    fullname: str
    symbols: list[str]

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]


@dataclass(eq=False)
class Record:
    fullname: str
    fields: list[tuple[str, "Node"]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]

    @property
    def field_names(self) -> list[str]:
        return [name for name, _ in self.fields]


@dataclass(eq=False)
class Array:
    items: "Node"


@dataclass(eq=False)
class Map:
    values: "Node"


@dataclass(eq=False)
class Union_:
    branches: list["Node"]

    @property
    def non_null(self) -> list["Node"]:
        return [b for b in self.branches if not _is_null(b)]

    @property
    def is_simple(self) -> bool:
        """True when the union maps to one Arrow type (nullable T or a lone T)."""
        return len(self.non_null) <= 1


Node = Union[Primitive, Fixed, Enum, Record, Array, Map, Union_]
_NAMED = (Fixed, Enum, Record)


def _is_null(node: Node) -> bool:
    return isinstance(node, Primitive) and node.kind == "null"


def parse_schema(schema: Any) -> Node:
    """Parse a writer schema (JSON text, a type name, or decoded JSON) into nodes.

    Named types become single shared objects, so a recursive schema is a graph
    with a cycle.
    """
    if isinstance(schema, (bytes, bytearray)):
        schema = schema.decode("utf-8")
    if isinstance(schema, str) and schema.lstrip()[:1] in ("{", "[", '"'):
        schema = json.loads(schema)
    return _SchemaParser().parse(schema, "")


class _SchemaParser:
    def __init__(self) -> None:
        self.named: dict[str, Node] = {}

    def parse(self, obj: Any, namespace: str) -> Node:
        if isinstance(obj, str):
            return self._reference(obj, namespace)
        if isinstance(obj, list):
            return Union_([self.parse(b, namespace) for b in obj])
        if not isinstance(obj, dict):
            raise ValueError(f"not a schema: {obj!r}")
        kind = obj.get("type")
        if kind in ("record", "error"):
            return self._record(obj, namespace)
        if kind == "enum":
            node = Enum(self._fullname(obj, namespace), list(obj["symbols"]))
            self.named[node.fullname] = node
            return node
        if kind == "fixed":
            return self._fixed(obj, namespace)
        if kind == "array":
            return Array(self.parse(obj["items"], namespace))
        if kind == "map":
            return Map(self.parse(obj["values"], namespace))
        if kind in PRIMITIVES:
            return _annotated_primitive(kind, obj)
        # {"type": <schema>} wraps another schema (a name, a union, a complex type).
        return self.parse(kind, namespace)

    def _reference(self, name: str, namespace: str) -> Node:
        if name in PRIMITIVES:
            return Primitive(name)
        candidates = [name] if "." in name else [_join(namespace, name), name]
        for candidate in candidates:
            if candidate in self.named:
                return self.named[candidate]
        raise ValueError(f"unknown type name {name!r}")

    def _fullname(self, obj: dict, namespace: str) -> str:
        name = obj["name"]
        if "." in name:
            return name
        own = obj.get("namespace")
        return _join(own if isinstance(own, str) else namespace, name)

    def _record(self, obj: dict, namespace: str) -> Record:
        record = Record(self._fullname(obj, namespace))
        # Registered before its fields are parsed: fields may refer to it.
        self.named[record.fullname] = record
        inner = record.fullname.rpartition(".")[0]
        record.fields = [(f["name"], self.parse(f["type"], inner)) for f in obj["fields"]]
        return record

    def _fixed(self, obj: dict, namespace: str) -> Fixed:
        size = obj["size"]
        node = Fixed(self._fullname(obj, namespace), size)
        logical = obj.get("logicalType")
        if logical == "decimal":
            valid = _decimal_params(obj, max_precision=_max_fixed_precision(size))
            if valid:
                node.logical, (node.precision, node.scale) = "decimal", valid
        elif (logical, size) in (("uuid", 16), ("duration", 12)):
            node.logical = logical
        self.named[node.fullname] = node
        return node


def _join(namespace: str, name: str) -> str:
    return f"{namespace}.{name}" if namespace else name


def _annotated_primitive(kind: str, obj: dict) -> Primitive:
    """A primitive with its logical type kept only when valid for that primitive."""
    logical = obj.get("logicalType")
    if logical == "decimal" and kind == "bytes":
        valid = _decimal_params(obj, max_precision=MAX_DECIMAL_PRECISION)
        if valid:
            return Primitive(kind, "decimal", *valid)
    elif _PRIMITIVE_LOGICAL.get(logical) == kind:
        return Primitive(kind, logical)
    return Primitive(kind)


def _max_fixed_precision(size: int) -> int:
    """The most decimal digits a two's complement number of ``size`` bytes holds."""
    if size < 1:
        return 0
    return min(MAX_DECIMAL_PRECISION, len(str(2 ** (8 * size - 1) - 1)) - 1)


def _decimal_params(obj: dict, max_precision: int) -> tuple[int, int] | None:
    """(precision, scale) of a valid decimal annotation, else None (ignored)."""
    precision, scale = obj.get("precision"), obj.get("scale", 0)

    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if not is_int(precision) or not 0 < precision <= max_precision:
        return None
    if not is_int(scale) or not 0 <= scale <= precision:
        return None
    return precision, scale


def branch_name(node: Node) -> str:
    """Field name of a general-union branch in the Arrow struct (DESIGN §3.3)."""
    if isinstance(node, _NAMED):
        return node.name
    if isinstance(node, Primitive):
        return node.kind
    if isinstance(node, Array):
        return "array"
    if isinstance(node, Map):
        return "map"
    raise ValueError("a union cannot directly contain another union")


# ---------------------------------------------------------------------------
# Canonical renderers (shared by both readers; inputs are plain integers)
# ---------------------------------------------------------------------------


def render_bytes(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def render_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def render_decimal(unscaled: int, scale: int) -> str:
    """``unscaled × 10^-scale`` with exactly ``scale`` fractional digits."""
    sign = "-" if unscaled < 0 else ""
    digits = str(abs(unscaled)).rjust(scale + 1, "0")
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def decode_twos_complement(data: bytes) -> int:
    """A big-endian two's complement integer (Avro's decimal encoding)."""
    return int.from_bytes(bytes(data), "big", signed=True) if data else 0


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.

    Howard Hinnant's algorithm; exact for any integer, including year 0 and
    years beyond 9999 where :mod:`datetime` gives up.
    """
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def _render_year(year: int) -> str:
    """Four digits inside 0000-9999, ISO 8601 expanded form (``+10000``) outside."""
    if 0 <= year <= 9999:
        return f"{year:04d}"
    return f"+{year}" if year > 0 else f"-{-year:04d}"


def render_date(days: int) -> str:
    year, month, day = _civil_from_days(days)
    return f"{_render_year(year)}-{month:02d}-{day:02d}"


def _render_clock(nanos: int, digits: int) -> str:
    """``HH:MM:SS.f…`` of a duration since midnight; hours may exceed 23."""
    seconds, frac = divmod(nanos, 1_000_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    frac_text = str(frac).rjust(9, "0")[:digits]
    return f"{hour:02d}:{minute:02d}:{second:02d}.{frac_text}"


def render_time(micros: int) -> str:
    """time-millis / time-micros: always six fractional digits."""
    return _render_clock(micros * 1000, 6)


_NANOS_PER = {"millis": 1_000_000, "micros": 1_000, "nanos": 1}
_NANOS_PER_DAY = 86_400 * 1_000_000_000


def render_timestamp(value: int, unit: str, utc: bool) -> str:
    """A timestamp of ``value`` ``unit``s (millis/micros/nanos) since the epoch."""
    nanos = value * _NANOS_PER[unit]
    days, in_day = divmod(nanos, _NANOS_PER_DAY)
    digits = 9 if unit == "nanos" else 6
    text = f"{render_date(days)}T{_render_clock(in_day, digits)}"
    return text + "Z" if utc else text


def render_uuid(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return str(uuid.UUID(bytes=bytes(value)))
    return str(uuid.UUID(value))


def render_duration_bytes(data: bytes) -> dict:
    """Avro duration: three little-endian uint32 (months, days, millis)."""
    data = bytes(data)
    parts = [int.from_bytes(data[i : i + 4], "little") for i in (0, 4, 8)]
    return dict(zip(("months", "days", "millis"), parts))


def _timestamp_parts(logical: str | None) -> tuple[str, bool] | None:
    """(unit, utc) of a timestamp logical type, else None."""
    if not logical:
        return None
    for prefix, utc in (("local-timestamp-", False), ("timestamp-", True)):
        if logical.startswith(prefix):
            return logical[len(prefix) :], utc
    return None


# ---------------------------------------------------------------------------
# Arrow → canonical
# ---------------------------------------------------------------------------


class ArrowShapeError(AssertionError):
    """The Arrow data does not have the shape the writer schema calls for."""


class _Invalid:
    """A slot whose content breaks the mapping (no union branch set, bad JSON
    text, enum index out of range). Under a null parent the slot is undefined
    and harmless, so the error is raised only if the slot survives to the
    output (see :func:`_raise_invalid`)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _raise_invalid(value: Any) -> None:
    """Raise ArrowShapeError for the first :class:`_Invalid` inside ``value``."""
    if isinstance(value, _Invalid):
        raise ArrowShapeError(value.message)
    if isinstance(value, dict):
        for item in value.values():
            _raise_invalid(item)
    elif isinstance(value, list):
        for item in value:
            _raise_invalid(item)


def arrow_to_canonical(
    table: pa.Table | pa.RecordBatch,
    writer_schema: Any,
    columns: Iterable[str] | None = None,
) -> list:
    """Render every row of ``table`` (read by jetliner_dist) as canonical JSON.

    For a record schema, the table's columns must be the record's fields in
    order; pass ``columns`` to render a projected read (the table must then
    hold exactly those fields, in that order). A non-record schema is read
    from the single column ``value``.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    root = parse_schema(writer_schema)
    if not isinstance(root, Record):
        if columns is not None or table.column_names != ["value"]:
            raise ArrowShapeError(
                f"a non-record schema reads as one column 'value', got {table.column_names}"
            )
        values = _convert_chunked(root, table.column(0), (), "$")
        _raise_invalid(values)
        return values
    fields = dict(root.fields)
    names = root.field_names if columns is None else list(columns)
    if table.column_names != names:
        raise ArrowShapeError(f"columns {table.column_names} != expected {names}")
    if not names:
        return [{} for _ in range(table.num_rows)]
    stack = (root,)
    converted = [
        _convert_chunked(fields[name], table.column(i), stack, f"$.{name}")
        for i, name in enumerate(names)
    ]
    rows = [dict(zip(names, row)) for row in zip(*converted)]
    _raise_invalid(rows)
    return rows


def _convert_chunked(node: Node, column: pa.ChunkedArray, stack: tuple, path: str) -> list:
    out: list = []
    for chunk in column.chunks:
        out.extend(_convert(node, chunk, stack, path))
    return out


def _expect(condition: bool, path: str, message: str) -> None:
    if not condition:
        raise ArrowShapeError(f"at {path}: {message}")


def _valid_mask(arr: pa.Array) -> list[bool]:
    if arr.null_count == 0:
        return [True] * len(arr)
    return arr.is_valid().to_pylist()


def _convert(node: Node, arr: pa.Array, stack: tuple, path: str) -> list:
    """Canonical values of ``arr`` (one per slot; None for nulls)."""
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    if isinstance(node, Record):
        if any(node is enclosing for enclosing in stack):
            return _convert_json_text(arr, path)
        return _convert_record(node, arr, stack + (node,), path)
    if isinstance(node, Union_):
        return _convert_union(node, arr, stack, path)
    if isinstance(node, Array):
        return _convert_list(node, arr, stack, path)
    if isinstance(node, Map):
        return _convert_map(node, arr, stack, path)
    if isinstance(node, Enum):
        return _convert_enum(node, arr, path)
    if isinstance(node, Fixed):
        return _convert_fixed(node, arr, path)
    return _convert_primitive(node, arr, path)


def _convert_json_text(arr: pa.Array, path: str) -> list:
    """A recursive reference: the value is carried as canonical JSON text."""
    _expect(_is_string_type(arr.type), path, f"recursive value must be a string, got {arr.type}")
    values = []
    for text in arr.to_pylist():
        if text is None:
            values.append(None)
            continue
        try:
            values.append(json.loads(text))
        except ValueError as exc:
            values.append(_Invalid(f"at {path}: invalid JSON text {text!r}: {exc}"))
    return values


def _convert_record(node: Record, arr: pa.Array, stack: tuple, path: str) -> list:
    _expect(pa.types.is_struct(arr.type), path, f"record must be a struct, got {arr.type}")
    names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
    _expect(names == node.field_names, path, f"struct fields {names} != {node.field_names}")
    columns = [
        _convert(ftype, arr.field(i), stack, f"{path}.{name}")
        for i, (name, ftype) in enumerate(node.fields)
    ]
    rows = [dict(zip(names, row)) for row in zip(*columns)] if columns else [{}] * len(arr)
    return [dict(row) if ok else None for row, ok in zip(rows, _valid_mask(arr))]


def _convert_union(node: Union_, arr: pa.Array, stack: tuple, path: str) -> list:
    branches = node.non_null
    if not branches:  # ["null"]
        return _convert_primitive(Primitive("null"), arr, path)
    if node.is_simple:  # ["null", T], [T, "null"], [T]: T's type, nullable
        return _convert(branches[0], arr, stack, path)
    _expect(pa.types.is_struct(arr.type), path, f"union must be a struct, got {arr.type}")
    names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
    expected = [branch_name(b) for b in branches]
    _expect(names == expected, path, f"union struct fields {names} != {expected}")
    children = [
        _convert(b, arr.field(i), stack, f"{path}<{expected[i]}>") for i, b in enumerate(branches)
    ]
    selected = [_valid_mask(arr.field(i)) for i in range(len(branches))]
    values = []
    for row, ok in enumerate(_valid_mask(arr)):
        if not ok:
            values.append(None)
            continue
        chosen = [i for i, mask in enumerate(selected) if mask[row]]
        if len(chosen) == 1:
            values.append(children[chosen[0]][row])
        else:
            values.append(_Invalid(f"at {path}[row {row}]: exactly one union branch must be "
                                   f"set, got {[expected[i] for i in chosen]}"))
    return values


def _list_bounds(arr: pa.Array) -> tuple[list[int], int, int]:
    """Offsets of a (possibly sliced) list/map array, and its values' range."""
    offsets = arr.offsets.to_pylist()
    return offsets, offsets[0], offsets[-1]


def _convert_list(node: Array, arr: pa.Array, stack: tuple, path: str) -> list:
    _expect(
        pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type),
        path,
        f"array must be a list, got {arr.type}",
    )
    offsets, start, end = _list_bounds(arr)
    items = _convert(node.items, arr.values.slice(start, end - start), stack, f"{path}[]")
    return [
        items[offsets[i] - start : offsets[i + 1] - start] if ok else None
        for i, ok in enumerate(_valid_mask(arr))
    ]


def _convert_map(node: Map, arr: pa.Array, stack: tuple, path: str) -> list:
    _expect(pa.types.is_map(arr.type), path, f"map must be a map, got {arr.type}")
    offsets, start, end = _list_bounds(arr)
    keys = arr.keys.slice(start, end - start).to_pylist()
    items = _convert(node.values, arr.items.slice(start, end - start), stack, f"{path}{{}}")
    values = []
    for i, ok in enumerate(_valid_mask(arr)):
        lo, hi = offsets[i] - start, offsets[i + 1] - start
        values.append(dict(zip(keys[lo:hi], items[lo:hi])) if ok else None)
    return values


def _convert_enum(node: Enum, arr: pa.Array, path: str) -> list:
    if _is_string_type(arr.type):
        return arr.to_pylist()
    _expect(pa.types.is_dictionary(arr.type), path, f"enum must be a dictionary, got {arr.type}")
    dictionary = arr.dictionary.to_pylist()
    _expect(
        dictionary == node.symbols,
        path,
        f"enum dictionary {dictionary} != schema symbols {node.symbols}",
    )
    return [_symbol(dictionary, i, path) for i in arr.indices.to_pylist()]


def _symbol(dictionary: list, index: int | None, path: str) -> Any:
    if index is None:
        return None
    if 0 <= index < len(dictionary):
        return dictionary[index]
    return _Invalid(f"at {path}: enum index {index} outside {len(dictionary)} symbols")


def _convert_fixed(node: Fixed, arr: pa.Array, path: str) -> list:
    if node.logical == "decimal":
        return _convert_decimal(node.scale, arr, path)
    if node.logical == "uuid":
        return _convert_string(arr, path)
    if node.logical == "duration":
        return _convert_duration(arr, path)
    _expect(_is_binary_type(arr.type), path, f"fixed must be binary, got {arr.type}")
    return [None if v is None else render_bytes(v) for v in arr.to_pylist()]


def _convert_duration(arr: pa.Array, path: str) -> list:
    _expect(pa.types.is_struct(arr.type), path, f"duration must be a struct, got {arr.type}")
    names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
    _expect(names == ["months", "days", "millis"], path, f"duration fields {names}")
    parts = [arr.field(i).to_pylist() for i in range(3)]
    return [
        dict(zip(names, row)) if ok else None for row, ok in zip(zip(*parts), _valid_mask(arr))
    ]


def _convert_decimal(scale: int, arr: pa.Array, path: str) -> list:
    _expect(pa.types.is_decimal(arr.type), path, f"decimal must be decimal, got {arr.type}")
    _expect(arr.type.scale == scale, path, f"decimal scale {arr.type.scale} != schema {scale}")
    return [
        None if v is None else render_decimal(_unscaled(v, scale), scale)
        for v in arr.to_pylist()
    ]


def _unscaled(value: decimal.Decimal, scale: int) -> int:
    """The exact integer ``value × 10^scale`` (no context rounding)."""
    sign, digits, exponent = value.as_tuple()
    magnitude = int("".join(map(str, digits)) or "0")
    shift = exponent + scale
    if shift < 0:
        raise ArrowShapeError(f"decimal {value} has more than {scale} fractional digits")
    return (-1 if sign else 1) * magnitude * 10**shift


def _is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_binary_type(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _convert_string(arr: pa.Array, path: str) -> list:
    _expect(_is_string_type(arr.type), path, f"expected a string, got {arr.type}")
    return arr.to_pylist()


# Nanoseconds per Arrow time unit.
_UNIT_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _raw_temporal(arr: pa.Array, path: str) -> tuple[list, int]:
    """The stored integers of a temporal array and nanoseconds per stored unit."""
    t = arr.type
    if pa.types.is_date32(t):
        return arr.view(pa.int32()).to_pylist(), _NANOS_PER_DAY
    if pa.types.is_date64(t):
        return arr.view(pa.int64()).to_pylist(), 1_000_000
    if pa.types.is_time32(t):
        return arr.view(pa.int32()).to_pylist(), _UNIT_NANOS[t.unit]
    if pa.types.is_time64(t) or pa.types.is_timestamp(t):
        return arr.view(pa.int64()).to_pylist(), _UNIT_NANOS[t.unit]
    raise ArrowShapeError(f"at {path}: expected a temporal type, got {t}")


def _convert_temporal(node: Primitive, arr: pa.Array, path: str) -> list:
    raw, unit_nanos = _raw_temporal(arr, path)
    nanos = [None if v is None else v * unit_nanos for v in raw]
    if node.logical == "date":
        return [None if n is None else render_date(n // _NANOS_PER_DAY) for n in nanos]
    if node.logical in ("time-millis", "time-micros"):
        return [None if n is None else render_time(n // 1000) for n in nanos]
    unit, utc = _timestamp_parts(node.logical)
    if unit == "nanos":
        return [None if n is None else render_timestamp(n, "nanos", utc) for n in nanos]
    return [None if n is None else render_timestamp(n // 1000, "micros", utc) for n in nanos]


def _convert_primitive(node: Primitive, arr: pa.Array, path: str) -> list:
    kind, logical = node.kind, node.logical
    if logical == "decimal":
        return _convert_decimal(node.scale, arr, path)
    if logical == "uuid":
        return _convert_string(arr, path)
    if logical is not None:
        return _convert_temporal(node, arr, path)
    if kind == "null":
        _expect(pa.types.is_null(arr.type), path, f"null must be Arrow null, got {arr.type}")
        return [None] * len(arr)
    if kind == "boolean":
        _expect(pa.types.is_boolean(arr.type), path, f"boolean expected, got {arr.type}")
        return arr.to_pylist()
    if kind in ("int", "long"):
        _expect(pa.types.is_integer(arr.type), path, f"{kind} expected, got {arr.type}")
        return arr.to_pylist()
    if kind in ("float", "double"):
        _expect(pa.types.is_floating(arr.type), path, f"{kind} expected, got {arr.type}")
        return [None if v is None else render_float(v) for v in arr.to_pylist()]
    if kind == "string":
        return _convert_string(arr, path)
    _expect(_is_binary_type(arr.type), path, f"bytes expected, got {arr.type}")
    return [None if v is None else render_bytes(v) for v in arr.to_pylist()]


# ---------------------------------------------------------------------------
# Expected Arrow types
# ---------------------------------------------------------------------------

_PRIMITIVE_ARROW = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.large_binary(),
    "string": pa.large_string(),
}

_DURATION_ARROW = pa.struct([(name, pa.uint32()) for name in ("months", "days", "millis")])


def _decimal_arrow(precision: int, scale: int) -> pa.DataType:
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)


def expected_arrow_type(node: Node, stack: tuple = ()) -> pa.DataType:
    """The Arrow type jetliner_dist gives ``node`` (DESIGN §3.3), in normal form."""
    if isinstance(node, Record):
        if any(node is enclosing for enclosing in stack):
            return pa.large_string()
        inner = stack + (node,)
        return pa.struct([(name, expected_arrow_type(t, inner)) for name, t in node.fields])
    if isinstance(node, Union_):
        branches = node.non_null
        if not branches:
            return pa.null()
        if node.is_simple:
            return expected_arrow_type(branches[0], stack)
        return pa.struct([(branch_name(b), expected_arrow_type(b, stack)) for b in branches])
    if isinstance(node, Array):
        return pa.large_list(expected_arrow_type(node.items, stack))
    if isinstance(node, Map):
        return pa.map_(pa.large_string(), expected_arrow_type(node.values, stack))
    if isinstance(node, Enum):
        return pa.dictionary(pa.int32(), pa.string())
    if isinstance(node, Fixed):
        if node.logical == "decimal":
            return _decimal_arrow(node.precision, node.scale)
        if node.logical == "uuid":
            return pa.large_string()
        if node.logical == "duration":
            return _DURATION_ARROW
        return pa.binary(node.size)
    return _primitive_arrow(node)


def _primitive_arrow(node: Primitive) -> pa.DataType:
    logical = node.logical
    if logical == "decimal":
        return _decimal_arrow(node.precision, node.scale)
    if logical == "uuid":
        return pa.large_string()
    if logical == "date":
        return pa.date32()
    if logical == "time-millis":
        return pa.time32("ms")
    if logical == "time-micros":
        return pa.time64("us")
    parts = _timestamp_parts(logical)
    if parts:
        unit, utc = parts
        return pa.timestamp(_TIMESTAMP_UNITS[unit], tz="UTC" if utc else None)
    return _PRIMITIVE_ARROW[node.kind]


def expected_arrow_schema(writer_schema: Any) -> pa.Schema:
    """The Arrow schema of a full read (types in normal form, every field nullable)."""
    root = parse_schema(writer_schema)
    if isinstance(root, Record):
        stack = (root,)
        return pa.schema([(name, expected_arrow_type(t, stack)) for name, t in root.fields])
    return pa.schema([("value", expected_arrow_type(root))])


def normalize_arrow_type(t: pa.DataType) -> pa.DataType:
    """Drop what the mapping leaves free: nullability flags, list/map child names,
    the dictionary's string width and ordered flag."""
    if pa.types.is_struct(t):
        return pa.struct([(t.field(i).name, normalize_arrow_type(t.field(i).type))
                          for i in range(t.num_fields)])
    if pa.types.is_large_list(t):
        return pa.large_list(normalize_arrow_type(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(normalize_arrow_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(normalize_arrow_type(t.key_type), normalize_arrow_type(t.item_type))
    if pa.types.is_dictionary(t):
        value = pa.string() if pa.types.is_large_string(t.value_type) else t.value_type
        return pa.dictionary(t.index_type, value)
    return t


def arrow_type_problems(schema: pa.Schema, writer_schema: Any,
                        columns: Iterable[str] | None = None) -> list[str]:
    """Differences between ``schema`` (of a read) and the expected Arrow mapping."""
    expected = expected_arrow_schema(writer_schema)
    wanted = expected.names if columns is None else list(columns)
    if schema.names != wanted:
        return [f"columns {schema.names} != expected {wanted}"]
    problems = []
    for name in wanted:
        want = expected.field(name).type
        got = normalize_arrow_type(schema.field(name).type)
        if got != want:
            problems.append(f"column {name!r}: got {got}, expected {want}")
    return problems


# ---------------------------------------------------------------------------
# fastavro → canonical
# ---------------------------------------------------------------------------

_EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_ONE_MICRO = dt.timedelta(microseconds=1)


def fastavro_to_canonical(records: Iterable, writer_schema: Any) -> list:
    """Render records as ``fastavro.reader`` returns them (``return_record_name``
    off) as canonical JSON.

    Logical values may be fastavro's Python objects (Decimal, UUID, date, time,
    datetime) or the raw underlying values for logical types fastavro does not
    convert (timestamp-nanos, duration, uuid on fixed). Union branches are
    recognised from the Python value (see :func:`_python_branch`), or taken from
    fastavro's writer tuple notation ``(branch name, value)``, so records drawn
    for writing render too.
    """
    root = parse_schema(writer_schema)
    return [_from_python(root, record, "$") for record in records]


def _from_python(node: Node, value: Any, path: str) -> Any:
    if isinstance(node, Union_):
        if value is None:
            return None
        if _is_tuple_notation(value):  # fastavro's writer form: (branch name, value)
            return _from_python(_branch_by_name(node, value[0], path), value[1], path)
        if node.is_simple:  # one non-null branch: no need to guess
            return _from_python(node.non_null[0], value, path)
        return _from_python(_python_branch(node, value, path), value, path)
    if value is None:
        if isinstance(node, Primitive) and node.kind == "null":
            return None
        raise ValueError(f"at {path}: None for non-null type {node}")
    if isinstance(node, Record):
        return {name: _from_python(t, value[name], f"{path}.{name}") for name, t in node.fields}
    if isinstance(node, Array):
        return [_from_python(node.items, v, f"{path}[]") for v in value]
    if isinstance(node, Map):
        return {k: _from_python(node.values, v, f"{path}{{}}") for k, v in value.items()}
    if isinstance(node, Enum):
        return value
    if isinstance(node, Fixed):
        return _fixed_from_python(node, value)
    return _primitive_from_python(node, value)


def _fixed_from_python(node: Fixed, value: Any) -> Any:
    if node.logical == "decimal":
        return _decimal_from_python(value, node.scale)
    if node.logical == "uuid":
        return render_uuid(value)
    if node.logical == "duration":
        return render_duration_bytes(value)
    return render_bytes(value)


def _decimal_from_python(value: Any, scale: int) -> str:
    if isinstance(value, decimal.Decimal):
        return render_decimal(_unscaled(value, scale), scale)
    return render_decimal(decode_twos_complement(value), scale)


def _primitive_from_python(node: Primitive, value: Any) -> Any:
    logical = node.logical
    if logical == "decimal":
        return _decimal_from_python(value, node.scale)
    if logical == "uuid":
        return render_uuid(value)
    if logical == "date":
        days = value if isinstance(value, int) else (value - _EPOCH_DATE).days
        return render_date(days)
    if logical in ("time-millis", "time-micros"):
        if isinstance(value, dt.time):
            micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**6
            return render_time(micros + value.microsecond)
        return render_time(value * 1000 if logical == "time-millis" else value)
    parts = _timestamp_parts(logical)
    if parts:
        unit, utc = parts
        if isinstance(value, dt.datetime):
            epoch = _EPOCH_UTC if value.tzinfo is not None else _EPOCH_NAIVE
            return render_timestamp((value - epoch) // _ONE_MICRO, "micros", utc)
        return render_timestamp(value, unit, utc)
    if node.kind in ("float", "double"):
        return render_float(value)
    if node.kind == "bytes":
        return render_bytes(value)
    return value


def _fastavro_converts(kind: str, logical: str | None) -> bool:
    """Whether fastavro's reader turns this logical type into a Python object."""
    if logical is None:
        return False
    from fastavro.read import LOGICAL_READERS  # imported late: optional dependency

    return f"{kind}-{logical}" in LOGICAL_READERS


def _python_accepts(node: Node, value: Any) -> bool:
    """Whether fastavro would return ``value`` (by its Python class) for ``node``.

    Unions whose branches cannot be told apart this way (a map and a record,
    two records with the same field names, ...) are ambiguous for any oracle
    that sees only the Python values; the property strategies never build them.
    """
    if isinstance(node, Record):
        return isinstance(value, dict) and list(value) == node.field_names
    if isinstance(node, Map):
        return isinstance(value, dict)
    if isinstance(node, Array):
        return isinstance(value, list)
    if isinstance(node, Enum):
        return isinstance(value, str) and value in node.symbols
    if isinstance(node, Fixed):
        if node.logical == "decimal" and _fastavro_converts("fixed", "decimal"):
            return isinstance(value, decimal.Decimal)
        if node.logical == "uuid" and isinstance(value, uuid.UUID):
            return True  # fastavro 1.13 leaves uuid on fixed as bytes; later ones may not
        return isinstance(value, bytes) and len(value) == node.size
    return _python_accepts_primitive(node, value)


_CONVERTED_CLASS = {
    "decimal": (decimal.Decimal,),
    "uuid": (uuid.UUID,),
    "date": (dt.date,),
    "time-millis": (dt.time,),
    "time-micros": (dt.time,),
}

_PLAIN_CLASS = {
    "null": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (float,),
    "double": (float,),
    "bytes": (bytes,),
    "string": (str,),
}


def _python_accepts_primitive(node: Primitive, value: Any) -> bool:
    if _fastavro_converts(node.kind, node.logical):
        parts = _timestamp_parts(node.logical)
        if parts:  # aware datetime for UTC timestamps, naive for local ones
            return isinstance(value, dt.datetime) and (value.tzinfo is not None) == parts[1]
        if node.logical == "date" and isinstance(value, dt.datetime):
            return False
        return isinstance(value, _CONVERTED_CLASS[node.logical])
    if node.kind in ("int", "long") and isinstance(value, bool):
        return False
    return isinstance(value, _PLAIN_CLASS[node.kind])


def _is_tuple_notation(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)


def _branch_by_name(node: Union_, name: str, path: str) -> Node:
    """The branch fastavro's tuple notation names: fullname of a named type, else
    the type name."""
    for branch in node.branches:
        if isinstance(branch, _NAMED):
            own = branch.fullname
        elif isinstance(branch, Primitive):
            own = branch.kind
        else:
            own = "array" if isinstance(branch, Array) else "map"
        if own == name:
            return branch
    raise ValueError(f"at {path}: no union branch named {name!r}")


def _python_branch(node: Union_, value: Any, path: str) -> Node:
    """The first union branch whose fastavro Python class matches ``value``."""
    for branch in node.branches:
        if _python_accepts(branch, value):
            return branch
    raise ValueError(f"at {path}: no union branch matches {value!r}")


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


def _same_scalar(a: Any, b: Any) -> bool:
    """Exact equality that keeps bool/int/float apart and -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def first_difference(actual: Any, expected: Any, path: str = "$") -> tuple[str, Any, Any] | None:
    """(path, actual part, expected part) of the first difference, or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(actual) != set(expected):
            return f"{path} (keys)", sorted(actual), sorted(expected)
        for key in expected:
            found = first_difference(actual[key], expected[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (a, e) in enumerate(zip(actual, expected)):
            found = first_difference(a, e, f"{path}[{i}]")
            if found:
                return found
        if len(actual) != len(expected):
            return f"{path} (length)", len(actual), len(expected)
        return None
    if _same_scalar(actual, expected):
        return None
    return path, actual, expected


def assert_canonical_equal(actual: list, expected: list, *, context: str = "") -> None:
    """Assert two lists of canonical records are identical, naming the first
    differing record and the path inside it."""
    prefix = f"{context}: " if context else ""
    differing = [
        i for i, (a, e) in enumerate(zip(actual, expected)) if first_difference(a, e)
    ]
    if len(actual) != len(expected):
        first = differing[0] if differing else min(len(actual), len(expected))
        raise AssertionError(
            f"{prefix}{len(actual)} records, expected {len(expected)} "
            f"(first differing index {first})"
            + _describe(actual, expected, first)
        )
    if differing:
        i = differing[0]
        raise AssertionError(
            f"{prefix}{len(differing)} of {len(expected)} records differ; first: record {i}"
            + _describe(actual, expected, i)
        )


def _describe(actual: list, expected: list, i: int) -> str:
    if i >= len(actual) or i >= len(expected):
        return ""
    path, a, e = first_difference(actual[i], expected[i], "$")
    return (
        f"\n  at {path}:\n    actual:   {_short(a)}\n    expected: {_short(e)}"
        f"\n  actual record:   {_short(actual[i])}\n  expected record: {_short(expected[i])}"
    )


def _short(value: Any, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# ---------------------------------------------------------------------------
# Writer schema from a file header
# ---------------------------------------------------------------------------

_MAGIC = b"Obj\x01"


def _read_long(stream: io.BufferedIOBase) -> int:
    """A zig-zag varint."""
    shift = result = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError("file ends inside a varint")
        result |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)


def _read_bytes(stream: io.BufferedIOBase) -> bytes:
    return stream.read(_read_long(stream))


def header_metadata(source: Any) -> dict[str, bytes]:
    """The metadata map of an Avro object container file header."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return header_metadata(f)
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    if stream.read(4) != _MAGIC:
        raise ValueError("not an Avro object container file (bad magic)")
    meta: dict[str, bytes] = {}
    while True:
        count = _read_long(stream)
        if count == 0:
            return meta
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _read_long(stream)
        for _ in range(count):
            key = _read_bytes(stream).decode("utf-8")
            meta[key] = _read_bytes(stream)


def writer_schema_of(source: Any) -> Any:
    """The writer schema (decoded JSON) of a file path, bytes, or binary stream."""
    return json.loads(header_metadata(source)["avro.schema"])
