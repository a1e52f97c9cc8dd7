"""Hypothesis strategies: random Avro schemas over the whole type system, and
records that fastavro writes.

:func:`avro_cases` draws a :class:`Case`: a writer schema (decoded JSON) and a
list of records for it. The schema may use every Avro type: primitives,
records (nested, zero-field, recursive), enums, fixed, arrays, maps, nullable
unions, general unions of 2–4 branches, named types reused by reference (also
across namespaces), and logical types (decimal on bytes and fixed up to
precision 76, uuid, date, time-*, timestamp-*, local-timestamp-*, duration,
unknown or misplaced annotations).

Records hold *raw* underlying values for logical types (ints for temporal
types, two's complement bytes for decimals, 12 bytes for a duration): fastavro
passes them through when writing, so values outside what fastavro converts
(timestamp-nanos, duration, uuid on fixed) are written too. Values stay within
Python's datetime range because the oracle reads them back through fastavro.

Union values use fastavro's tuple notation ``(branch name, value)`` so each
value lands in the branch it was drawn for. General unions only combine
branches that fastavro's *read* values tell apart (see
``canonical._python_accepts``): one branch per Python class, records with
distinct field-name sets, never a map and a record together.
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from corruption import zigzag

CODECS = ("null", "deflate", "snappy", "zstandard", "bzip2", "xz")

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
# Bounds that keep fastavro's date/time/datetime conversions within Python's range.
_DATE_DAYS = (-719_162, 2_932_896)  # 0001-01-01 .. 9999-12-31
_TS_MILLIS = (-62_135_596_800_000, 253_402_300_799_999)
_TS_MICROS = (_TS_MILLIS[0] * 1000, _TS_MILLIS[1] * 1000 + 999)
_DAY_MILLIS = 86_400_000

_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
_NAMESPACES = ("", "ns1", "org.example")

# Primitive logical types with the raw value range fastavro reads back safely.
_PRIMITIVE_LOGICAL = {
    "date": ("int", _DATE_DAYS),
    "time-millis": ("int", (0, _DAY_MILLIS - 1)),
    "time-micros": ("long", (0, _DAY_MILLIS * 1000 - 1)),
    "timestamp-millis": ("long", _TS_MILLIS),
    "timestamp-micros": ("long", _TS_MICROS),
    "timestamp-nanos": ("long", _INT64),
    "local-timestamp-millis": ("long", _TS_MILLIS),
    "local-timestamp-micros": ("long", _TS_MICROS),
    "local-timestamp-nanos": ("long", _INT64),
}

# Annotations the reader must ignore: unknown names, or a known name on the
# wrong primitive (fastavro ignores them too, so its values stay raw).
_IGNORED_LOGICAL = (
    ("int", "no-such-logical-type"),
    ("long", "time-millis"),
    ("int", "timestamp-millis"),
    ("string", "date"),
    ("bytes", "uuid"),
    ("double", "decimal"),
)


@dataclass
class Case:
    """One generated file's content."""

    schema: Any
    records: list


@dataclass
class _Named:
    """A completed named type definition that later types may refer to."""

    fullname: str
    namespace: str
    read_class: tuple


@dataclass
class _Context:
    """Mutable state of one schema draw."""

    max_depth: int
    counter: int = 0
    named: dict[str, _Named] = field(default_factory=dict)
    enclosing: list[str] = field(default_factory=list)

    def new_name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def snapshot(self) -> dict[str, _Named]:
        return dict(self.named)

    def restore(self, snap: dict[str, _Named]) -> None:
        self.named = dict(snap)


# ---------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------
#
# Every schema drawer returns (schema JSON, read class). The read class is how
# fastavro's read value of that type looks to the oracle: (python class, tag).
# Two union branches clash when the classes are equal but the tags differ (or,
# for dicts, when either is a map or both records have the same fields).


@st.composite
def avro_schemas(draw, max_depth: int = 3, min_fields: int | None = None) -> Any:
    """A writer schema: usually a record, sometimes any other type.

    With ``min_fields`` set, always a record with at least that many fields.
    """
    ctx = _Context(max_depth=max_depth)
    if min_fields is not None or draw(st.integers(0, 4)):
        return _record(draw, ctx, 0, "", min_fields=min_fields or 0)[0]
    return _type(draw, ctx, 1, "", allow_union=True)[0]


def _record(draw, ctx: _Context, depth: int, namespace: str, min_fields: int = 0) -> tuple:
    name = ctx.new_name("R")
    schema: dict[str, Any] = {"type": "record", "name": name}
    own_namespace = _draw_namespace(draw, namespace)
    if own_namespace is not None:
        schema["namespace"] = own_namespace
        namespace = own_namespace
    fullname = _join(namespace, name)
    field_names = draw(st.lists(_IDENT, min_size=min_fields, max_size=5, unique=True))
    ctx.enclosing.append(fullname)
    schema["fields"] = [
        {"name": fname, "type": _field_type(draw, ctx, depth + 1, namespace)}
        for fname in field_names
    ]
    ctx.enclosing.pop()
    read_class = ("dict", frozenset(field_names))
    ctx.named[fullname] = _Named(fullname, namespace, read_class)
    return schema, read_class


def _field_type(draw, ctx: _Context, depth: int, namespace: str) -> Any:
    """A field's type; occasionally a terminating recursive reference."""
    if ctx.enclosing and draw(st.integers(0, 14)) == 0:
        target = draw(st.sampled_from(ctx.enclosing))
        ref = _reference_name(target, namespace)
        if ref is not None:
            form = draw(st.sampled_from(["nullable", "nullable-last", "array", "map"]))
            if form == "nullable":
                return ["null", ref]
            if form == "nullable-last":
                return [ref, "null"]
            return {"type": form, ("items" if form == "array" else "values"): ref}
    return _type(draw, ctx, depth, namespace, allow_union=True)[0]


def _type(draw, ctx: _Context, depth: int, namespace: str, allow_union: bool) -> tuple:
    """Any type (no union directly inside a union: ``allow_union`` False)."""
    kinds = ["primitive"] * 3 + ["logical"] * 2 + ["enum", "fixed"]
    if depth < ctx.max_depth:
        kinds += ["array", "map", "record"]
    if allow_union:
        kinds += ["nullable", "union"]
    if _referable(ctx, namespace):
        kinds.append("reference")
    kind = draw(st.sampled_from(kinds))
    if kind == "primitive":
        return _primitive(draw)
    if kind == "logical":
        return _logical(draw, ctx, namespace)
    if kind == "enum":
        return _enum(draw, ctx, namespace)
    if kind == "fixed":
        return _fixed(draw, ctx, namespace, logical=None)
    if kind == "array":
        items = _type(draw, ctx, depth + 1, namespace, allow_union=True)[0]
        return {"type": "array", "items": items}, ("list", None)
    if kind == "map":
        values = _type(draw, ctx, depth + 1, namespace, allow_union=True)[0]
        return {"type": "map", "values": values}, ("dict", "map")
    if kind == "record":
        return _record(draw, ctx, depth, namespace)
    if kind == "nullable":
        inner, read_class = _type(draw, ctx, depth, namespace, allow_union=False)
        if read_class[0] == "None":  # ["null", "null"] is not a valid union
            inner = "int"
        branches = ["null", inner] if draw(st.booleans()) else [inner, "null"]
        return branches, ("union", None)
    if kind == "union":
        return _union(draw, ctx, depth, namespace), ("union", None)
    return _reference(draw, ctx, namespace)


_PRIMITIVE_CLASS = {
    "null": ("None", None),
    "boolean": ("bool", None),
    "int": ("int", None),
    "long": ("int", None),
    "float": ("float", None),
    "double": ("float", None),
    "bytes": ("bytes", None),
    "string": ("str", None),
}


def _primitive(draw) -> tuple:
    kind = draw(st.sampled_from(list(_PRIMITIVE_CLASS)))
    wrapped = draw(st.integers(0, 5)) == 0  # {"type": "int"} is the same as "int"
    return ({"type": kind} if wrapped else kind), _PRIMITIVE_CLASS[kind]


def _logical(draw, ctx: _Context, namespace: str) -> tuple:
    choice = draw(st.sampled_from(_LOGICAL_CHOICES))
    if choice in _PRIMITIVE_LOGICAL:
        kind = _PRIMITIVE_LOGICAL[choice][0]
        return {"type": kind, "logicalType": choice}, _logical_class(choice)
    if choice == "decimal":
        precision = draw(st.integers(1, 76))
        scale = draw(st.integers(0, precision))
        schema = {"type": "bytes", "logicalType": "decimal", "precision": precision}
        if scale or draw(st.booleans()):
            schema["scale"] = scale
        return schema, ("Decimal", scale)
    if choice == "uuid":
        return {"type": "string", "logicalType": "uuid"}, ("UUID", None)
    if choice == "ignored":
        kind, logical = draw(st.sampled_from(_IGNORED_LOGICAL))
        return {"type": kind, "logicalType": logical}, _PRIMITIVE_CLASS[kind]
    return _fixed(draw, ctx, namespace, logical=choice.replace("fixed-", ""))


# Decimals and uuids come in more variants, so they are drawn more often.
_LOGICAL_CHOICES = list(_PRIMITIVE_LOGICAL) + ["decimal"] * 3 + ["fixed-decimal"] * 3 + [
    "uuid", "uuid", "fixed-uuid", "duration", "ignored", "ignored"]


def _logical_class(logical: str) -> tuple:
    if logical == "date":
        return ("date", None)
    if logical.startswith("time-"):
        return ("time", None)
    if logical.endswith("nanos"):  # fastavro leaves these as ints
        return ("int", logical)
    if logical.startswith("local-"):
        return ("datetime", "naive")
    return ("datetime", "aware")


def _enum(draw, ctx: _Context, namespace: str) -> tuple:
    schema = _named_header(draw, ctx, "E", namespace)
    if draw(st.integers(0, 9)):
        symbols = draw(st.lists(_IDENT, min_size=1, max_size=4, unique=True))
    else:  # more than 127 symbols: indexes take two varint bytes
        symbols = [f"S{i}" for i in range(draw(st.integers(120, 300)))]
    schema.update(type="enum", symbols=symbols)
    return _define(ctx, schema, namespace, ("str", None))


def _fixed(draw, ctx: _Context, namespace: str, logical: str | None) -> tuple:
    schema = _named_header(draw, ctx, "F", namespace)
    if logical == "decimal":
        size = draw(st.integers(1, 32))
        precision = draw(st.integers(1, _max_fixed_precision(size)))
        scale = draw(st.integers(0, precision))
        schema.update(type="fixed", size=size, logicalType="decimal", precision=precision,
                      scale=scale)
        read_class = ("Decimal", scale)
    elif logical == "uuid":
        schema.update(type="fixed", size=16, logicalType="uuid")
        read_class = ("bytes", "uuid")  # fastavro does not convert uuid on fixed
    elif logical == "duration":
        schema.update(type="fixed", size=12, logicalType="duration")
        read_class = ("bytes", "duration")
    else:
        schema.update(type="fixed", size=draw(st.integers(0, 20)))
        read_class = ("bytes", None)
    return _define(ctx, schema, namespace, read_class)


def _max_fixed_precision(size: int) -> int:
    return min(76, len(str(2 ** (8 * size - 1) - 1)) - 1)


def _named_header(draw, ctx: _Context, prefix: str, namespace: str) -> dict:
    schema: dict[str, Any] = {"name": ctx.new_name(prefix)}
    own = _draw_namespace(draw, namespace)
    if own is not None:
        schema["namespace"] = own
    return schema


def _define(ctx: _Context, schema: dict, namespace: str, read_class: tuple) -> tuple:
    ns = schema.get("namespace", namespace)
    fullname = _join(ns, schema["name"])
    ctx.named[fullname] = _Named(fullname, ns, read_class)
    return schema, read_class


def _draw_namespace(draw, enclosing: str) -> str | None:
    """None (inherit the enclosing namespace) most of the time."""
    if draw(st.integers(0, 3)):
        return None
    return draw(st.sampled_from(_NAMESPACES))


def _join(namespace: str, name: str) -> str:
    return f"{namespace}.{name}" if namespace else name


def _reference_name(fullname: str, namespace: str) -> str | None:
    """How to write a reference from ``namespace`` (None: not expressible)."""
    ns, _, simple = fullname.rpartition(".")
    if ns == namespace:
        return simple
    return fullname if ns else None  # a null-namespace name can't be reached from a namespace


def _referable(ctx: _Context, namespace: str) -> list[_Named]:
    return [n for n in ctx.named.values() if _reference_name(n.fullname, namespace)]


def _reference(draw, ctx: _Context, namespace: str) -> tuple:
    target = draw(st.sampled_from(sorted(_referable(ctx, namespace), key=lambda n: n.fullname)))
    return _reference_name(target.fullname, namespace), target.read_class


def _union(draw, ctx: _Context, depth: int, namespace: str) -> list:
    """A union of 2–4 non-null branches (maybe plus null) fastavro's values tell apart."""
    wanted = draw(st.integers(2, 4))
    branches: list = []
    classes: list[tuple] = []
    identities: set[str] = set()
    for _ in range(wanted * 3):
        if len(branches) == wanted:
            break
        snap = ctx.snapshot()
        branch, read_class = _type(draw, ctx, depth, namespace, allow_union=False)
        identity = _branch_identity(branch, namespace, ctx)
        if identity in identities or read_class[0] == "None" or _clashes(read_class, classes):
            ctx.restore(snap)  # drop definitions made by the rejected branch
            continue
        branches.append(branch)
        classes.append(read_class)
        identities.add(identity)
    if len(branches) < 2:
        return ["null", branches[0]] if branches else ["null", "int"]
    if draw(st.booleans()):
        branches.insert(draw(st.integers(0, len(branches))), "null")
    return branches


def _branch_identity(schema: Any, namespace: str, ctx: _Context) -> str:
    """What Avro allows once per union: a named type's fullname, or an unnamed
    type (logical annotations don't count)."""
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind not in ("record", "enum", "fixed"):
            return kind
        return _join(schema.get("namespace", namespace), schema["name"])
    if schema in _PRIMITIVE_CLASS:
        return schema
    local = _join(namespace, schema)
    return local if "." not in schema and local in ctx.named else schema


def _clashes(read_class: tuple, taken: list[tuple]) -> bool:
    for other in taken:
        if read_class[0] != other[0]:
            continue
        if read_class[0] == "dict":
            if "map" in (read_class[1], other[1]) or read_class[1] == other[1]:
                return True
        elif read_class[1] != other[1]:
            return True
    return False


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@st.composite
def avro_values(draw, schema: Any, definitions: dict[str, Any], max_depth: int = 4) -> Any:
    """One value of ``schema`` in fastavro's writer form (raw logical values,
    tuple notation for unions)."""
    return _value(draw, schema, definitions, "", 0, max_depth)


def _value(draw, schema: Any, defs: dict, namespace: str, depth: int, max_depth: int) -> Any:
    if isinstance(schema, list):
        return _union_value(draw, schema, defs, namespace, depth, max_depth)
    if isinstance(schema, str):
        if schema in _PRIMITIVE_CLASS:
            return _primitive_value(draw, schema)
        fullname = _resolve(schema, namespace, defs)
        return _value(draw, defs[fullname], defs, fullname.rpartition(".")[0], depth, max_depth)
    kind = schema["type"]
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _COMPLEX
                                          and kind not in _PRIMITIVE_CLASS):
        return _value(draw, kind, defs, namespace, depth, max_depth)
    if kind == "record":
        inner = schema.get("namespace", namespace)
        return {f["name"]: _value(draw, f["type"], defs, inner, depth + 1, max_depth)
                for f in schema["fields"]}
    if kind == "array":
        size = 0 if depth >= max_depth else draw(st.integers(0, 3))
        return [_value(draw, schema["items"], defs, namespace, depth + 1, max_depth)
                for _ in range(size)]
    if kind == "map":
        size = 0 if depth >= max_depth else draw(st.integers(0, 3))
        keys = draw(st.lists(st.text(max_size=4), min_size=size, max_size=size, unique=True))
        return {k: _value(draw, schema["values"], defs, namespace, depth + 1, max_depth)
                for k in keys}
    if kind == "enum":
        return draw(st.sampled_from(schema["symbols"]))
    if kind == "fixed":
        return _fixed_value(draw, schema)
    return _annotated_value(draw, schema)


_COMPLEX = ("record", "enum", "fixed", "array", "map")


def _union_value(draw, branches: list, defs: dict, namespace: str, depth: int,
                 max_depth: int) -> Any:
    candidates = list(branches)
    if depth >= max_depth and "null" in candidates:
        candidates = ["null"]  # ends recursive structures
    branch = draw(st.sampled_from(candidates))
    if branch == "null":
        return None
    value = _value(draw, branch, defs, namespace, depth + 1, max_depth)
    return (_branch_name(branch, namespace, defs), value)


def _branch_name(branch: Any, namespace: str, defs: dict) -> str:
    """fastavro's name for a branch: the fullname of a named type, else its type."""
    if isinstance(branch, str):
        return branch if branch in _PRIMITIVE_CLASS else _resolve(branch, namespace, defs)
    kind = branch["type"]
    if kind not in ("record", "enum", "fixed"):
        return kind
    name = branch["name"]
    return name if "." in name else _join(branch.get("namespace", namespace), name)


def _resolve(name: str, namespace: str, defs: dict) -> str:
    if "." not in name and _join(namespace, name) in defs:
        return _join(namespace, name)
    return name


def _primitive_value(draw, kind: str) -> Any:
    if kind == "null":
        return None
    if kind == "boolean":
        return draw(st.booleans())
    if kind == "int":
        return draw(st.integers(*_INT32))
    if kind == "long":
        return draw(st.integers(*_INT64))
    if kind == "float":
        return draw(st.floats(width=32))
    if kind == "double":
        return draw(st.floats())
    long = draw(st.integers(0, 19)) == 0  # past 127 bytes: two-byte length varints
    if kind == "bytes":
        return draw(st.binary(min_size=100, max_size=300) if long else st.binary(max_size=12))
    return draw(st.text(min_size=60, max_size=200) if long else st.text(max_size=8))


def _annotated_value(draw, schema: dict) -> Any:
    kind, logical = schema["type"], schema.get("logicalType")
    if logical in _PRIMITIVE_LOGICAL and _PRIMITIVE_LOGICAL[logical][0] == kind:
        return draw(st.integers(*_PRIMITIVE_LOGICAL[logical][1]))
    if logical == "decimal" and kind == "bytes":
        unscaled = _unscaled(draw, schema["precision"])
        width = (unscaled.bit_length() + 8) // 8 + draw(st.integers(0, 2))  # may be padded
        return unscaled.to_bytes(width, "big", signed=True)
    if logical == "uuid" and kind == "string":
        text = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
        return text.upper() if draw(st.booleans()) else text
    return _primitive_value(draw, kind)


def _fixed_value(draw, schema: dict) -> bytes:
    size = schema["size"]
    if schema.get("logicalType") == "decimal":
        return _unscaled(draw, schema["precision"]).to_bytes(size, "big", signed=True)
    return draw(st.binary(min_size=size, max_size=size))


def _unscaled(draw, precision: int) -> int:
    limit = 10**precision - 1
    return draw(st.integers(-limit, limit) | st.sampled_from([0, limit, -limit]))


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


def named_definitions(schema: Any) -> dict[str, Any]:
    """fullname -> JSON of every named type defined in ``schema``."""
    found: dict[str, Any] = {}

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "enum", "fixed"):
                name = node["name"]
                fullname = name if "." in name else _join(node.get("namespace", namespace), name)
                found[fullname] = node
                namespace = fullname.rpartition(".")[0]
            for f in node.get("fields", ()):
                walk(f["type"], namespace)
            for key in ("items", "values"):
                if key in node:
                    walk(node[key], namespace)
            if isinstance(kind, (dict, list)):
                walk(kind, namespace)

    walk(schema, "")
    return found


@st.composite
def avro_cases(draw, max_records: int = 25, min_fields: int | None = None) -> Case:
    """A schema and up to ``max_records`` records for it (see :func:`avro_schemas`)."""
    schema = draw(avro_schemas(min_fields=min_fields))
    defs = named_definitions(schema)
    count = draw(st.integers(0, max_records))
    records = [draw(avro_values(schema, defs)) for _ in range(count)]
    return Case(schema, records)


codecs = st.sampled_from(CODECS)
# Mostly tiny blocks (many per file); sometimes fastavro's default (one block).
sync_intervals = st.integers(1, 400) | st.just(16000)


# ---------------------------------------------------------------------------
# Files with arrays and maps in several blocks
# ---------------------------------------------------------------------------
#
# fastavro writes every array and map as one block with a positive count. The
# specification also allows several blocks, and a negative count followed by
# the block's byte size (so readers can skip it); Java's blocking encoder writes
# those. This small encoder writes them, for the ``null`` codec.


@st.composite
def blocked_files(draw, case: Case) -> bytes:
    """``case`` as an uncompressed container file whose arrays and maps are
    cut into random blocks (some with negative counts and byte sizes), and
    whose records are spread over random file blocks."""
    import fastavro  # the header (schema, sync marker) comes from fastavro

    header = io.BytesIO()
    fastavro.writer(header, case.schema, [], codec="null")
    head = header.getvalue()
    sync = head[-16:]
    encoder = _BlockingEncoder(draw, named_definitions(case.schema))
    out = bytearray(head)
    records = list(case.records)
    while records:
        count = draw(st.integers(1, len(records)))
        data = b"".join(encoder.encode(case.schema, r, "") for r in records[:count])
        out += zigzag(count) + zigzag(len(data)) + data + sync
        records = records[count:]
    return bytes(out)


class _BlockingEncoder:
    """Avro binary encoding of values in fastavro's writer form."""

    def __init__(self, draw, defs: dict[str, Any]) -> None:
        self.draw, self.defs = draw, defs

    def encode(self, schema: Any, value: Any, namespace: str) -> bytes:
        if isinstance(schema, list):
            return self._union(schema, value, namespace)
        if isinstance(schema, str):
            if schema in _PRIMITIVE_CLASS:
                return self._primitive(schema, value)
            fullname = _resolve(schema, namespace, self.defs)
            return self.encode(self.defs[fullname], value, fullname.rpartition(".")[0])
        kind = schema["type"]
        if kind == "record":
            inner = schema.get("namespace", namespace)
            return b"".join(self.encode(f["type"], value[f["name"]], inner)
                            for f in schema["fields"])
        if kind == "enum":
            return zigzag(schema["symbols"].index(value))
        if kind == "fixed":
            return bytes(value)
        if kind == "array":
            items = [self.encode(schema["items"], v, namespace) for v in value]
            return self._blocks(items)
        if kind == "map":
            entries = [self._primitive("string", k) + self.encode(schema["values"], v, namespace)
                       for k, v in value.items()]
            return self._blocks(entries)
        if kind in _PRIMITIVE_CLASS:
            return self._primitive(kind, value)
        return self.encode(kind, value, namespace)  # {"type": <name or schema>}

    def _union(self, branches: list, value: Any, namespace: str) -> bytes:
        if value is None:
            return zigzag(branches.index("null"))
        name, inner = value
        for index, branch in enumerate(branches):
            if _branch_name(branch, namespace, self.defs) == name:
                return zigzag(index) + self.encode(branch, inner, namespace)
        raise ValueError(f"no branch {name!r} in {branches}")

    def _blocks(self, items: list[bytes]) -> bytes:
        out = bytearray()
        while items:
            count = self.draw(st.integers(1, len(items)))
            data = b"".join(items[:count])
            if self.draw(st.booleans()):  # negative count, then the byte size
                out += zigzag(-count) + zigzag(len(data)) + data
            else:
                out += zigzag(count) + data
            items = items[count:]
        return bytes(out + zigzag(0))

    @staticmethod
    def _primitive(kind: str, value: Any) -> bytes:
        if kind == "null":
            return b""
        if kind == "boolean":
            return b"\x01" if value else b"\x00"
        if kind in ("int", "long"):
            return zigzag(value)
        if kind == "float":
            return struct.pack("<f", value)
        if kind == "double":
            return struct.pack("<d", value)
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return zigzag(len(data)) + data
