"""Arrow → Polars: the dtypes of DESIGN §3.3 that Arrow alone does not carry.

Polars reads Arrow dictionaries as Categorical and cannot hold decimal256; an
Avro enum becomes ``pl.Enum(symbols)`` everywhere (schema, scan and read) and a
decimal wider than 38 digits becomes its exact string form.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from jetliner_dist.avro import opcodes as oc
from jetliner_dist.avro.program import ColumnSpec, Program
from jetliner_dist.planning import ReadSpec


def polars_schema(
    program: Program, include_file_paths: str | None = None, row_index_name: str | None = None
) -> pl.Schema:
    """The Polars schema of what ``program`` reads, with the optional extra columns."""
    schema = {} if row_index_name is None else {row_index_name: pl.UInt32()}
    schema.update((name, _dtype(program, c)) for name, c in program.outputs)
    if include_file_paths:
        schema[include_file_paths] = pl.String()
    return pl.Schema(schema)


def to_polars(
    data: pa.Table | pa.RecordBatch, spec: ReadSpec, row_index_name: str | None = None
) -> pl.DataFrame:
    """Decoded Arrow data as a DataFrame with the dtypes of :func:`polars_schema`."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    for i, field in enumerate(data.schema):
        if _needs_cast(field.type):
            wide = _for_polars(field.type)
            data = data.set_column(i, field.with_type(wide), data.column(i).cast(wide))
    frame = pl.from_arrow(data, rechunk=False)
    schema = polars_schema(spec.program(), spec.include_file_paths, row_index_name)
    if frame.width == 0 or frame.schema == schema:
        return frame
    return frame.cast(dict(schema))


def _dtype(program: Program, column: int) -> pl.DataType:
    spec: ColumnSpec = program.columns[column]
    if spec.finish == "enum":
        return pl.Enum(list(spec.detail))
    if spec.kind == oc.K_STRUCT:
        return pl.Struct({n: _dtype(program, c) for n, c in zip(spec.names, spec.children)})
    if spec.finish == "map":
        key, value = program.columns[spec.children[0]].children
        return pl.Map(_dtype(program, key), _dtype(program, value))
    if spec.kind == oc.K_LIST:
        return pl.List(_dtype(program, spec.children[0]))
    return _primitive_dtype(spec.arrow)


def _primitive_dtype(t: pa.DataType) -> pl.DataType:
    """The Polars dtype of a non-nested Arrow type this package produces.

    Spelled out rather than asked of ``pl.from_arrow``, whose Series path
    imports pandas (0.2 s of a fresh process).
    """
    if pa.types.is_decimal256(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pl.String()
    if pa.types.is_decimal128(t):
        return pl.Decimal(t.precision, t.scale)
    if pa.types.is_timestamp(t):
        return pl.Datetime(t.unit, t.tz)
    if pa.types.is_time(t):
        return pl.Time()
    if (
        pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return pl.Binary()
    return _SIMPLE[t]


_SIMPLE = {
    pa.null(): pl.Null(),
    pa.bool_(): pl.Boolean(),
    pa.int32(): pl.Int32(),
    pa.int64(): pl.Int64(),
    pa.uint32(): pl.UInt32(),
    pa.float32(): pl.Float32(),
    pa.float64(): pl.Float64(),
    pa.date32(): pl.Date(),
}


def _needs_cast(t: pa.DataType) -> bool:
    """Whether ``t`` holds a type Polars cannot import (see :func:`_for_polars`)."""
    if pa.types.is_decimal256(t) or (pa.types.is_fixed_size_binary(t) and t.byte_width == 0):
        return True
    return any(_needs_cast(t.field(i).type) for i in range(t.num_fields))


def _for_polars(t: pa.DataType) -> pa.DataType:
    """``t`` with decimal256 as large_string and fixed_size_binary(0) as
    large_binary: Polars imports neither (both map to its String / Binary)."""
    if pa.types.is_decimal256(t):
        return pa.large_string()
    if pa.types.is_fixed_size_binary(t) and t.byte_width == 0:
        return pa.large_binary()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_for_polars(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_for_polars(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(t.key_field, t.item_field.with_type(_for_polars(t.item_type)))
    return t
