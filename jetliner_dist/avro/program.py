"""Compile a schema (and a projection) into a decoder program.

The program is plain data: int64 tables of instructions, sequences, union
descriptors and null-fill lists, plus one :class:`ColumnSpec` per Arrow array the
kernel fills. It is built once per (schema, projection) and reused for every
block, file and thread; it pickles, so workers can receive it or rebuild it.

The Arrow mapping of DESIGN §3.3 lives here, next to the instructions that
produce it, so the two cannot drift apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np
import pyarrow as pa

from jetliner_dist.avro import opcodes as oc
from jetliner_dist.avro.schema import (
    Array,
    Enum,
    Fixed,
    Map,
    Primitive,
    Record,
    Schema,
    UnionType,
    branch_name,
    parse_schema,
)
from jetliner_dist.errors import SchemaError

VALUE_COLUMN = "value"
"""The one column of a file whose top-level schema is not a record."""

_TIME_UNITS = {"millis": "ms", "micros": "us", "nanos": "ns"}


@dataclass(eq=False)
class ColumnSpec:
    """One Arrow array the kernel fills, and how to finish it.

    ``arrow`` is the final type; ``finish`` names a step that turns the kernel's
    physical layout into it (``enum``, ``map``, ``uuid``, ``json``), with
    ``detail`` holding what that step needs (symbols, the recursive schema).
    """

    kind: int
    arrow: pa.DataType
    nullable: bool = False
    width: int = 0
    children: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    finish: str | None = None
    detail: object = None


@dataclass(eq=False)
class Program:
    """Everything the kernel needs to decode one schema with one projection."""

    instructions: np.ndarray
    sequences: np.ndarray
    root: int
    unions: np.ndarray
    entries: np.ndarray
    fills: np.ndarray
    kinds: np.ndarray
    widths: np.ndarray
    columns: list[ColumnSpec]
    aligned: np.ndarray
    """Columns with exactly one slot per row: their length is the row count."""
    outputs: list[tuple[str, int]]
    """Top-level (name, column) pairs in output order."""
    record_min_bytes: int
    arrow_schema: pa.Schema
    schema_json: str


def compile_program(
    schema_json: str, columns: Sequence[str] | None = None, *, views: bool = False
) -> Program:
    """Build the decoder program for a writer schema and a top-level projection.

    ``columns`` selects top-level fields (a top-level non-record has one column,
    ``"value"``); the output follows its order. Unknown names raise
    :class:`SchemaError`. ``views=True`` lays strings and bytes out as Arrow
    string_view / binary_view, Polars' own layout, so handing batches to Polars
    copies nothing; otherwise they are large_string / large_binary, which every
    Arrow consumer reads.
    """
    key = None if columns is None else tuple(columns)
    return _compile_cached(schema_json, key, views)


@lru_cache(maxsize=64)
def _compile_cached(
    schema_json: str, columns: tuple[str, ...] | None, views: bool
) -> Program:
    try:
        return _Compiler(views).program(schema_json, parse_schema(schema_json), columns)
    except RecursionError:
        raise SchemaError(
            "the schema nests too deeply to compile (more than about "
            f"{sys.getrecursionlimit() // 4} levels)"
        ) from None


def arrow_schema_of(schema_json: str) -> pa.Schema:
    """The Arrow schema a file with this writer schema reads into."""
    return compile_program(schema_json).arrow_schema


def min_encoded_size(node: Schema, _active: frozenset = frozenset()) -> int:
    """The fewest bytes one value of ``node`` can take (bounds untrusted counts)."""
    if isinstance(node, Primitive):
        return {"null": 0, "float": 4, "double": 8}.get(node.type, 1)
    if isinstance(node, Fixed):
        return node.size
    if isinstance(node, (Enum, Array, Map, UnionType)):
        return 1
    if node in _active:  # a recursive reference: count it as empty, a lower bound
        return 0
    return sum(min_encoded_size(f.type, _active | {node}) for f in node.fields)


class _Compiler:
    def __init__(self, views: bool) -> None:
        self.views = views
        self.sequences: list[list[tuple[int, int, int, int]]] = []
        self.columns: list[ColumnSpec] = []
        self.unions: list[tuple[int, int, int]] = []
        self.entries: list[tuple[int, int, int, int]] = []
        self.fills: list[int] = []
        self.skip_sequences: dict[int, int] = {}  # id(record) → sequence
        self.skipping: set[int] = set()  # records being expanded inline by _skip

    # -- the whole program -------------------------------------------------

    def program(
        self, schema_json: str, root: Schema, columns: tuple[str, ...] | None
    ) -> Program:
        root_seq = self._new_sequence()
        outputs: list[tuple[str, int]] = []
        if isinstance(root, Record):
            available = [f.name for f in root.fields]
            wanted = _check_projection(columns, available)
            by_name = {}
            for fld in root.fields:
                if fld.name in wanted:
                    by_name[fld.name] = self._value(fld.type, root_seq, (root,))
                else:
                    self._skip(fld.type, root_seq)
            outputs = [(name, by_name[name]) for name in wanted]
        else:
            wanted = _check_projection(columns, [VALUE_COLUMN])
            if wanted:
                outputs = [(VALUE_COLUMN, self._value(root, root_seq, ()))]
            else:
                self._skip(root, root_seq)
        fields = [
            pa.field(name, self.columns[c].arrow, self.columns[c].nullable) for name, c in outputs
        ]
        return self._assemble(schema_json, root, root_seq, outputs, pa.schema(fields))

    def _assemble(self, schema_json, root, root_seq, outputs, arrow_schema) -> Program:
        aligned = {c for _, top in outputs for c in self._aligned(top)}

        def operand(column: int) -> int:
            """A column operand, flagged when the column is aligned (see opcodes.ALIGNED)."""
            return column | oc.ALIGNED if column in aligned else column

        flat: list[tuple[int, int, int, int]] = []
        bounds = []
        for seq in self.sequences:
            bounds.append((len(flat), len(flat) + len(seq)))
            for op, column, a, b in seq:
                if op == oc.OP_DURATION:
                    b = operand(b)
                flat.append((op, operand(column), a, b))
        return Program(
            instructions=_table(flat, 4),
            sequences=_table(bounds, 2),
            root=root_seq,
            unions=_table([(n, operand(struct), first) for n, struct, first in self.unions], 3),
            entries=_table(self.entries, 4),
            fills=np.array([operand(c) for c in self.fills], dtype=np.int64),
            aligned=np.array(sorted(aligned), dtype=np.int64),
            kinds=np.array([c.kind for c in self.columns], dtype=np.int64),
            widths=np.array([c.width for c in self.columns], dtype=np.int64),
            columns=self.columns,
            outputs=outputs,
            record_min_bytes=min_encoded_size(root),
            arrow_schema=arrow_schema,
            schema_json=schema_json,
        )

    # -- building blocks -----------------------------------------------------

    def _new_sequence(self) -> int:
        self.sequences.append([])
        return len(self.sequences) - 1

    def _emit(self, seq: int, op: int, column: int = -1, a: int = 0, b: int = 0) -> None:
        self.sequences[seq].append((op, column, a, b))

    def _column(self, kind: int, arrow: pa.DataType, nullable: bool, **extra) -> int:
        self.columns.append(ColumnSpec(kind, arrow, nullable, **extra))
        return len(self.columns) - 1

    def _aligned(self, column: int) -> list[int]:
        """The columns that take one slot whenever ``column`` does (struct children)."""
        spec = self.columns[column]
        out = [column]
        if spec.kind == oc.K_STRUCT:
            for child in spec.children:
                out.extend(self._aligned(child))
        return out

    # -- values that produce columns ---------------------------------------

    def _value(
        self, node: Schema, seq: int, enclosing: tuple, nullable: bool = False
    ) -> int:
        """Emit the decoding of one ``node`` value into ``seq``; return its column."""
        if isinstance(node, Primitive):
            return self._primitive(node, seq, nullable)
        if isinstance(node, Record):
            if node in enclosing:
                return self._recursive(node, seq, nullable)
            return self._record(node, seq, enclosing, nullable)
        if isinstance(node, Enum):
            column = self._column(
                oc.K_FIXED,
                pa.dictionary(pa.int32(), pa.string()),
                nullable,
                width=4,
                finish="enum",
                detail=node.symbols,
            )
            self._emit(seq, oc.OP_ENUM, column, len(node.symbols))
            return column
        if isinstance(node, Fixed):
            return self._fixed(node, seq, nullable)
        if isinstance(node, Array):
            return self._list(node.items, seq, enclosing, nullable)
        if isinstance(node, Map):
            return self._map(node, seq, enclosing, nullable)
        return self._union(node, seq, enclosing, nullable)

    def _primitive(self, node: Primitive, seq: int, nullable: bool) -> int:
        logical = node.logical.name if node.logical else None
        kind = node.type
        if kind == "null":
            column = self._column(oc.K_NULL, pa.null(), True)
            self._emit(seq, oc.OP_NULL, column)
        elif kind == "boolean":
            column = self._column(oc.K_BITS, pa.bool_(), nullable)
            self._emit(seq, oc.OP_BOOLEAN, column)
        elif kind == "int":
            arrow = {"date": pa.date32(), "time-millis": pa.time32("ms")}.get(logical, pa.int32())
            column = self._column(oc.K_FIXED, arrow, nullable, width=4)
            self._emit(seq, oc.OP_INT, column)
        elif kind == "long":
            column = self._column(oc.K_FIXED, _long_type(logical), nullable, width=8)
            self._emit(seq, oc.OP_LONG, column)
        elif kind == "float":
            column = self._column(oc.K_FIXED, pa.float32(), nullable, width=4)
            self._emit(seq, oc.OP_FLOAT, column)
        elif kind == "double":
            column = self._column(oc.K_FIXED, pa.float64(), nullable, width=8)
            self._emit(seq, oc.OP_DOUBLE, column)
        elif kind == "bytes" and logical == "decimal":
            arrow, width = _decimal_type(node.logical.precision, node.logical.scale)
            column = self._column(oc.K_FIXED, arrow, nullable, width=width)
            self._emit(seq, oc.OP_DECIMAL_BYTES, column, width)
        elif kind == "bytes":
            column = self._bytes(seq, nullable, text=False)
        elif logical == "uuid":  # lower-cased after decoding, in the plain layout
            column = self._column(oc.K_VAR, pa.large_string(), nullable, finish="uuid")
            self._emit(seq, oc.OP_BYTES, column, 1)
        else:
            column = self._bytes(seq, nullable, text=True)
        return column

    def _bytes(self, seq: int, nullable: bool, text: bool) -> int:
        """A string (UTF-8 checked) or bytes column, in the program's layout."""
        if self.views:
            arrow = pa.string_view() if text else pa.binary_view()
            column = self._column(oc.K_VIEW, arrow, nullable, width=16)
        else:
            arrow = pa.large_string() if text else pa.large_binary()
            column = self._column(oc.K_VAR, arrow, nullable)
        self._emit(seq, oc.OP_BYTES, column, int(text), int(self.views))
        return column

    def _fixed(self, node: Fixed, seq: int, nullable: bool) -> int:
        logical = node.logical.name if node.logical else None
        if logical == "decimal":
            arrow, width = _decimal_type(node.logical.precision, node.logical.scale)
            column = self._column(oc.K_FIXED, arrow, nullable, width=width)
            self._emit(seq, oc.OP_DECIMAL_FIXED, column, node.size, width)
        elif logical == "uuid":
            column = self._column(oc.K_VAR, pa.large_string(), nullable)
            self._emit(seq, oc.OP_UUID_FIXED, column)
        elif logical == "duration":
            parts = [
                self._column(oc.K_FIXED, pa.uint32(), False, width=4)
                for _ in ("months", "days", "millis")
            ]
            names = ["months", "days", "millis"]
            arrow = pa.struct([pa.field(n, pa.uint32(), False) for n in names])
            column = self._column(oc.K_STRUCT, arrow, nullable, children=parts, names=names)
            self._emit(seq, oc.OP_DURATION, column, 0, parts[0])
        else:
            column = self._column(
                oc.K_FIXED, pa.binary(node.size), nullable, width=node.size
            )
            self._emit(seq, oc.OP_FIXED, column, node.size)
        return column

    def _record(self, node: Record, seq: int, enclosing: tuple, nullable: bool) -> int:
        column = self._column(oc.K_STRUCT, pa.struct([]), nullable)
        self._emit(seq, oc.OP_RECORD, column)
        children = [self._value(f.type, seq, enclosing + (node,)) for f in node.fields]
        spec = self.columns[column]
        spec.children = children
        spec.names = [f.name for f in node.fields]
        spec.arrow = pa.struct(
            [
                pa.field(f.name, self.columns[c].arrow, self.columns[c].nullable)
                for f, c in zip(node.fields, children)
            ]
        )
        return column

    def _recursive(self, node: Record, seq: int, nullable: bool) -> int:
        """A reference to an enclosing record: its value as canonical JSON text."""
        column = self._column(
            oc.K_VAR, pa.large_string(), nullable, finish="json", detail=node
        )
        self._emit(seq, oc.OP_RAW, column, self._skip_record(node))
        return column

    def _list(self, items: Schema, seq: int, enclosing: tuple, nullable: bool) -> int:
        item_seq = self._new_sequence()
        item = self._value(items, item_seq, enclosing)
        spec = self.columns[item]
        arrow = pa.large_list(pa.field("item", spec.arrow, spec.nullable))
        column = self._column(oc.K_LIST, arrow, nullable, children=[item])
        self._emit(seq, oc.OP_ARRAY, column, item_seq, min_encoded_size(items))
        return column

    def _map(self, node: Map, seq: int, enclosing: tuple, nullable: bool) -> int:
        entry_seq = self._new_sequence()
        entry = self._column(oc.K_STRUCT, pa.struct([]), False)
        self._emit(entry_seq, oc.OP_RECORD, entry)
        key = self._bytes(entry_seq, False, text=True)
        value = self._value(node.values, entry_seq, enclosing)
        value_spec = self.columns[value]
        self.columns[entry].children = [key, value]
        self.columns[entry].names = ["key", "value"]
        arrow = pa.map_(
            pa.field("key", self.columns[key].arrow, False),
            pa.field("value", value_spec.arrow, value_spec.nullable),
        )
        self.columns[entry].arrow = pa.struct(
            [arrow.key_field, arrow.item_field]
        )
        column = self._column(oc.K_LIST, arrow, nullable, children=[entry], finish="map")
        self._emit(seq, oc.OP_MAP, column, entry_seq, 1 + min_encoded_size(node.values))
        return column

    def _union(self, node: UnionType, seq: int, enclosing: tuple, nullable: bool) -> int:
        if not node.branches:
            raise SchemaError("a union needs at least one branch")
        null_index = node.null_index
        values = [b for i, b in enumerate(node.branches) if i != null_index]
        if not values:  # ["null"]: read the branch index, then a null column
            self._emit_union(seq, [(None, 0, 0)], -1)
            return self._primitive(Primitive("null"), seq, True)
        general = len(values) > 1
        struct = -1
        if general:
            struct = self._column(oc.K_STRUCT, pa.struct([]), nullable or null_index is not None)
        branch_entries = []
        children = []
        for i, branch in enumerate(node.branches):
            if i == null_index:
                branch_entries.append((None, 0, 0))
                continue
            branch_seq = self._new_sequence()
            # A branch that is not taken gets a null slot, so it needs validity.
            branch_nullable = general or null_index is not None or nullable
            column = self._value(branch, branch_seq, enclosing, branch_nullable)
            children.append(column)
            fill = self._aligned(column)
            branch_entries.append((branch_seq, len(self.fills), len(self.fills) + len(fill)))
            self.fills.extend(fill)
        self._emit_union(seq, branch_entries, struct)
        if not general:
            return children[0]
        names = _unique([branch_name(b) for b in values])
        spec = self.columns[struct]
        spec.children = children
        spec.names = names
        spec.arrow = pa.struct(
            [pa.field(n, self.columns[c].arrow, True) for n, c in zip(names, children)]
        )
        return struct

    def _emit_union(self, seq: int, branches: list, struct: int) -> None:
        """A union instruction followed by its branches' bodies, inline.

        ``branches`` holds (body sequence or None for null, fill start, fill
        end) per branch. Each body is moved into ``seq`` after the union
        instruction and ends with a jump past the last one, so taking a branch
        is a jump, not a call. Offsets are relative, so a body (with the unions
        nested in it) can move as a block.
        """
        code = self.sequences[seq]
        at = len(code)
        union = len(self.unions)
        self._emit(seq, oc.OP_UNION, -1, union)
        entries = []
        jumps = []
        for body, fill_start, fill_end in branches:
            if body is None:
                entries.append([None, 1, fill_start, fill_end])
                continue
            entries.append([len(code) - at, 0, fill_start, fill_end])
            code.extend(self.sequences[body])
            self.sequences[body] = []
            jumps.append(len(code))
            self._emit(seq, oc.OP_JUMP)
        end = len(code)
        for jump in jumps:
            code[jump] = (oc.OP_JUMP, -1, end - jump, 0)
        for entry in entries:
            if entry[0] is None:
                entry[0] = end - at
        self.unions.append((len(branches), struct, len(self.entries)))
        self.entries.extend(tuple(e) for e in entries)

    # -- values that are skipped (projection, recursive JSON) ---------------

    def _skip(self, node: Schema, seq: int) -> None:
        """Emit instructions that read past one ``node`` value, writing nothing."""
        if isinstance(node, Primitive):
            op = {
                "null": oc.OP_NULL,
                "boolean": oc.OP_BOOLEAN,
                "int": oc.OP_LONG,  # skipping does not range-check ints
                "long": oc.OP_LONG,
                "float": oc.OP_FLOAT,
                "double": oc.OP_DOUBLE,
                "bytes": oc.OP_BYTES,
                "string": oc.OP_BYTES,
            }[node.type]
            self._emit(seq, op, -1, 0)
        elif isinstance(node, Fixed):
            self._emit(seq, oc.OP_FIXED, -1, node.size)
        elif isinstance(node, Enum):
            self._emit(seq, oc.OP_ENUM, -1, len(node.symbols))
        elif isinstance(node, Record):
            if id(node) in self.skipping:  # recursion: a call ends it
                self._emit(seq, oc.OP_CALL, -1, self._skip_record(node))
            else:
                self.skipping.add(id(node))
                for fld in node.fields:
                    self._skip(fld.type, seq)
                self.skipping.discard(id(node))
        elif isinstance(node, (Array, Map)):
            item_seq = self._new_sequence()
            if isinstance(node, Map):
                self._emit(item_seq, oc.OP_BYTES, -1, 0)
                self._skip(node.values, item_seq)
                op, min_bytes = oc.OP_MAP, 1 + min_encoded_size(node.values)
            else:
                self._skip(node.items, item_seq)
                op, min_bytes = oc.OP_ARRAY, min_encoded_size(node.items)
            self._emit(seq, op, -1, item_seq, min_bytes)
        else:
            branch_entries = []
            for branch in node.branches:
                if isinstance(branch, Primitive) and branch.type == "null":
                    branch_entries.append((None, 0, 0))
                    continue
                branch_seq = self._new_sequence()
                self._skip(branch, branch_seq)
                branch_entries.append((branch_seq, 0, 0))
            self._emit_union(seq, branch_entries, -1)

    def _skip_record(self, node: Record) -> int:
        """The sequence that skips one ``node`` record (shared, so recursion ends)."""
        seq = self.skip_sequences.get(id(node))
        if seq is None:
            seq = self._new_sequence()
            self.skip_sequences[id(node)] = seq
            outer = id(node) in self.skipping
            self.skipping.add(id(node))
            for fld in node.fields:
                self._skip(fld.type, seq)
            if not outer:
                self.skipping.discard(id(node))
        return seq


def _check_projection(columns: tuple[str, ...] | None, available: list[str]) -> list[str]:
    if columns is None:
        return list(available)
    missing = [c for c in columns if c not in available]
    if missing:
        raise SchemaError(
            f"columns {missing} are not in the file's schema (available: {available})"
        )
    if len(set(columns)) != len(columns):
        raise SchemaError(f"columns {list(columns)} name a column twice")
    return list(columns)


def _long_type(logical: str | None) -> pa.DataType:
    if logical == "time-micros":
        return pa.time64("us")
    if logical and logical.startswith("timestamp-"):
        return pa.timestamp(_TIME_UNITS[logical.rpartition("-")[2]], tz="UTC")
    if logical and logical.startswith("local-timestamp-"):
        return pa.timestamp(_TIME_UNITS[logical.rpartition("-")[2]])
    return pa.int64()


def _decimal_type(precision: int, scale: int) -> tuple[pa.DataType, int]:
    if precision <= 38:
        return pa.decimal128(precision, scale), 16
    return pa.decimal256(precision, scale), 32


def _unique(names: list[str]) -> list[str]:
    """Branch names made unique (two records of one simple name, two namespaces)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count}")
    return out


def _table(rows: list, width: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, width), dtype=np.int64)
    return np.ascontiguousarray(np.array(rows, dtype=np.int64).reshape(len(rows), width))
