"""The local engine: read Avro into Arrow and Polars in this process."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Iterator, Sequence, Union

from jetliner_dist.avro.program import Program, compile_program
from jetliner_dist.errors import SourceError
from jetliner_dist.reading import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_MAX_BLOCK_SIZE,
    AvroFile,
    ReadOptions,
    inspect_file,
    read_blocks,
)
from jetliner_dist.sources import ByteSource, FileObjectSource, LocalFileSource, MemorySource

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

# Reads that collect a whole table use large batches: their buffers pass the
# size from which numpy asks for transparent huge pages, which cuts the page
# faults of filling fresh memory (a large share of decoding time).
COLLECT_BATCH_ROWS = 1 << 20

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]
"""A path, the bytes of a file, or a binary file object."""


def iter_batches(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    n_rows: int | None = None,
    batch_rows: int | None = None,
    max_block_size: int | None = None,
) -> Iterator["pa.RecordBatch"]:
    """Stream :class:`pyarrow.RecordBatch` objects of at most ``batch_rows`` rows.

    Memory stays near one batch plus one read window, whatever the file's size.
    ``columns`` selects top-level fields (output in that order), ``n_rows``
    stops after that many rows, ``max_block_size`` bounds one block's
    decompressed size (a guard against decompression bombs).
    """
    request = _Request.make(source, columns, n_rows, batch_rows, max_block_size)
    return request.batches()


def read_table(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    n_rows: int | None = None,
    batch_rows: int | None = None,
    max_block_size: int | None = None,
) -> "pa.Table":
    """Read Avro into a :class:`pyarrow.Table` (options as :func:`iter_batches`)."""
    request = _Request.make(
        source, columns, n_rows, batch_rows, max_block_size, default_rows=COLLECT_BATCH_ROWS
    )
    return request.table()


def read_avro(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    n_rows: int | None = None,
    batch_rows: int | None = None,
    max_block_size: int | None = None,
) -> "pl.DataFrame":
    """Read Avro into a :class:`polars.DataFrame` (options as :func:`iter_batches`).

    Enums become ``pl.Enum`` with the schema's symbols, decimals wider than 38
    digits exact strings; the README's type table lists every mapping.
    """
    from jetliner_dist.frames import to_polars

    request = _Request.make(
        source, columns, n_rows, batch_rows, max_block_size,
        views=True, default_rows=COLLECT_BATCH_ROWS,
    )  # fmt: skip
    return to_polars(request.table(), request.program)


def read_avro_schema(source: Source) -> "pl.Schema":
    """The Polars schema that reading ``source`` produces, from its header alone."""
    from jetliner_dist.frames import polars_schema

    byte_source = open_source(source)
    return polars_schema(compile_program(inspect_file(byte_source).schema_json))


@dataclass(frozen=True, slots=True)
class _Request:
    """One read: where, what, and how."""

    source: ByteSource
    file: AvroFile
    program: Program
    options: ReadOptions
    n_rows: int | None

    @classmethod
    def make(
        cls, source, columns, n_rows, batch_rows, max_block_size,
        views: bool = False, default_rows: int = DEFAULT_BATCH_ROWS,
    ) -> "_Request":  # fmt: skip
        """Validate options, read the header and compile the program.

        ``views`` picks Arrow's view layout for strings, for Polars results;
        ``default_rows`` is the batch size when the caller gives none.
        """
        if n_rows is not None and (not isinstance(n_rows, int) or n_rows < 0):
            raise ValueError(f"n_rows must be a non-negative integer or None, got {n_rows!r}")
        if columns is not None and isinstance(columns, str):
            raise TypeError("columns must be a list of names, not a string")
        options = ReadOptions(
            batch_rows=_positive("batch_rows", batch_rows, default_rows),
            max_block_size=_positive("max_block_size", max_block_size, DEFAULT_MAX_BLOCK_SIZE),
        )
        byte_source = open_source(source)
        file = inspect_file(byte_source)
        program = compile_program(file.schema_json, columns, views=views)
        return cls(byte_source, file, program, options, n_rows)

    def batches(self) -> Iterator["pa.RecordBatch"]:
        return read_blocks(self.source, self.file, self.program, self.options, n_rows=self.n_rows)

    def table(self) -> "pa.Table":
        import pyarrow as pa

        return pa.Table.from_batches(list(self.batches()), schema=self.program.arrow_schema)


def open_source(source: Source | ByteSource) -> ByteSource:
    """Turn what a user passed into a :class:`ByteSource`."""
    if isinstance(source, (str, os.PathLike)):
        return LocalFileSource.open(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return MemorySource(source)
    if isinstance(source, (MemorySource, LocalFileSource, FileObjectSource)):
        return source
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        return FileObjectSource(source)
    raise SourceError(
        f"cannot read from a {type(source).__name__}: pass a path, bytes or a binary file object"
    )


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value
