"""The Avro schema model: parse schema JSON into a graph of typed nodes.

Named types are single objects shared by every reference, so a recursive schema
is a graph with a cycle; code that walks it keeps a stack of the enclosing
named types (see :func:`is_recursive_reference`). Logical types that are unknown
or invalid for their underlying type are dropped, as the specification says.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Union

from jetliner_dist.errors import SchemaError

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")

# Logical types on a primitive: name → the primitive it annotates.
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


@dataclass(frozen=True, slots=True)
class Logical:
    """A valid logical type annotation; ``precision``/``scale`` for decimals."""

    name: str
    precision: int = 0
    scale: int = 0


@dataclass(eq=False, slots=True)
class Primitive:
    type: str
    logical: Logical | None = None


@dataclass(eq=False, slots=True)
class Field:
    name: str
    type: "Schema"
    aliases: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class Record:
    fullname: str
    fields: list[Field] = field(default_factory=list)
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]


@dataclass(eq=False, slots=True)
class Enum:
    fullname: str
    symbols: tuple[str, ...]
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]


@dataclass(eq=False, slots=True)
class Fixed:
    fullname: str
    size: int
    logical: Logical | None = None
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]


@dataclass(eq=False, slots=True)
class Array:
    items: "Schema"


@dataclass(eq=False, slots=True)
class Map:
    values: "Schema"


@dataclass(eq=False, slots=True)
class UnionType:
    branches: list["Schema"]

    @property
    def null_index(self) -> int | None:
        """Index of the null branch, if any."""
        for i, branch in enumerate(self.branches):
            if isinstance(branch, Primitive) and branch.type == "null":
                return i
        return None


Schema = Union[Primitive, Record, Enum, Fixed, Array, Map, UnionType]
Named = (Record, Enum, Fixed)


def parse_schema(source: str | dict | list) -> Schema:
    """Parse schema JSON text (or its decoded form) into the model."""
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except ValueError:
            pass  # a bare name such as "int" is valid schema text without quotes
    return _Parser().parse(source, "")


def is_nullable_union(node: Schema) -> bool:
    """``["null", T]`` or ``[T, "null"]``: maps to T, nullable."""
    return (
        isinstance(node, UnionType)
        and len(node.branches) == 2
        and node.null_index is not None
    )


def branch_name(node: Schema) -> str:
    """The field name of a general-union branch in its Arrow struct."""
    if isinstance(node, Named):
        return node.name
    if isinstance(node, Primitive):
        return node.type
    if isinstance(node, Array):
        return "array"
    if isinstance(node, Map):
        return "map"
    raise SchemaError("a union cannot directly contain another union")


def type_name(node: Schema) -> str:
    """A short human name of a node for messages."""
    if isinstance(node, Named):
        return node.fullname
    if isinstance(node, Primitive):
        return node.type
    return type(node).__name__.lower().replace("uniontype", "union")


class _Parser:
    def __init__(self) -> None:
        self.named: dict[str, Schema] = {}

    def parse(self, obj: Any, namespace: str) -> Schema:
        if isinstance(obj, str):
            return self._reference(obj, namespace)
        if isinstance(obj, list):
            return self._union(obj, namespace)
        if not isinstance(obj, dict):
            raise SchemaError(f"a schema must be a name, an object or a union list, got {obj!r}")
        kind = obj.get("type")
        if isinstance(kind, (dict, list)):  # {"type": {...}} wraps another schema
            return self.parse(kind, namespace)
        if kind in PRIMITIVES:
            return Primitive(kind, _primitive_logical(kind, obj))
        if kind == "record" or kind == "error":
            return self._record(obj, namespace)
        if kind == "enum":
            return self._enum(obj, namespace)
        if kind == "fixed":
            return self._fixed(obj, namespace)
        if kind == "array":
            if "items" not in obj:
                raise SchemaError("array schema has no 'items'")
            return Array(self.parse(obj["items"], namespace))
        if kind == "map":
            if "values" not in obj:
                raise SchemaError("map schema has no 'values'")
            return Map(self.parse(obj["values"], namespace))
        if isinstance(kind, str):
            return self._reference(kind, namespace)
        raise SchemaError(f"schema object has no valid 'type': {obj!r}")

    def _reference(self, name: str, namespace: str) -> Schema:
        if name in PRIMITIVES:
            return Primitive(name)
        for candidate in (_full_name(name, namespace), name):
            if candidate in self.named:
                return self.named[candidate]
        raise SchemaError(f"unknown type name {name!r}")

    def _union(self, branches: list, namespace: str) -> Schema:
        parsed = [self.parse(b, namespace) for b in branches]
        seen: set[str] = set()
        for branch in parsed:
            if isinstance(branch, UnionType):
                raise SchemaError("a union cannot directly contain another union")
            key = branch.fullname if isinstance(branch, Named) else branch_name(branch)
            if key in seen:
                raise SchemaError(f"union has two branches of type {key!r}")
            seen.add(key)
        return UnionType(parsed)

    def _declare(self, obj: dict, namespace: str) -> tuple[str, str, tuple[str, ...]]:
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"named type without a valid 'name': {obj!r}")
        own_namespace = obj.get("namespace")
        if isinstance(own_namespace, str) and "." not in name:
            fullname = f"{own_namespace}.{name}" if own_namespace else name
        else:
            fullname = _full_name(name, namespace)
        if fullname in self.named or fullname in PRIMITIVES:
            raise SchemaError(f"type name {fullname!r} is defined twice")
        enclosing = fullname.rpartition(".")[0]
        aliases = tuple(_full_name(a, enclosing) for a in obj.get("aliases", ()) or ())
        return fullname, enclosing, aliases

    def _record(self, obj: dict, namespace: str) -> Record:
        fullname, enclosing, aliases = self._declare(obj, namespace)
        record = Record(fullname, aliases=aliases)
        self.named[fullname] = record  # before the fields: they may refer to it
        fields = obj.get("fields")
        if not isinstance(fields, list):
            raise SchemaError(f"record {fullname!r} has no 'fields' list")
        names: set[str] = set()
        for spec in fields:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise SchemaError(f"record {fullname!r} has a field without a name: {spec!r}")
            if spec["name"] in names:
                raise SchemaError(f"record {fullname!r} has two fields named {spec['name']!r}")
            names.add(spec["name"])
            if "type" not in spec:
                raise SchemaError(f"field {spec['name']!r} of {fullname!r} has no type")
            node = self.parse(spec["type"], enclosing)
            record.fields.append(Field(spec["name"], node, tuple(spec.get("aliases", ()) or ())))
        return record

    def _enum(self, obj: dict, namespace: str) -> Enum:
        fullname, _, aliases = self._declare(obj, namespace)
        symbols = obj.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise SchemaError(f"enum {fullname!r} has no list of string symbols")
        if len(set(symbols)) != len(symbols):
            raise SchemaError(f"enum {fullname!r} has duplicate symbols")
        enum = Enum(fullname, tuple(symbols), aliases)
        self.named[fullname] = enum
        return enum

    def _fixed(self, obj: dict, namespace: str) -> Fixed:
        fullname, _, aliases = self._declare(obj, namespace)
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise SchemaError(f"fixed {fullname!r} has no valid non-negative 'size'")
        fixed = Fixed(fullname, size, _fixed_logical(size, obj), aliases)
        self.named[fullname] = fixed
        return fixed


def _full_name(name: str, namespace: str) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _primitive_logical(kind: str, obj: dict) -> Logical | None:
    name = obj.get("logicalType")
    if not isinstance(name, str):
        return None
    if name == "decimal" and kind == "bytes":
        return _decimal(obj, max_precision=None)
    if _PRIMITIVE_LOGICAL.get(name) == kind:
        return Logical(name)
    return None


def _fixed_logical(size: int, obj: dict) -> Logical | None:
    name = obj.get("logicalType")
    if name == "decimal" and size > 0:
        # The largest precision whose values fit in `size` bytes, two's complement.
        return _decimal(obj, max_precision=math.floor(math.log10(2 ** (8 * size - 1) - 1)))
    if name == "uuid" and size == 16:
        return Logical("uuid")
    if name == "duration" and size == 12:
        return Logical("duration")
    return None


# Arrow's widest decimal (decimal256) holds 76 digits.
MAX_DECIMAL_PRECISION = 76


def _decimal(obj: dict, max_precision: int | None) -> Logical | None:
    precision = obj.get("precision")
    scale = obj.get("scale", 0)
    if not isinstance(precision, int) or isinstance(precision, bool) or precision <= 0:
        return None
    if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= precision:
        return None
    if max_precision is not None and precision > max_precision:
        return None
    if precision > MAX_DECIMAL_PRECISION:
        return None
    return Logical("decimal", precision, scale)
