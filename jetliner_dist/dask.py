"""Dask: Avro files as a ``dask.dataframe``, one partition per split.

Listing, headers and planning happen here, on the client; each partition is
one task, :func:`_read_frame` bound with :func:`functools.partial`, that reads
its splits with :func:`jetliner_dist.reading.read_split` on a worker. What a
task carries is a :class:`_Partition` (its splits: a path and a byte range
each) and, shared by every task, one :class:`_PartitionReader` (the read
spec, filters and the path column's categories). ``meta`` comes from the
plan's Arrow schema: no data is read to build the graph.

Install with ``pip install jetliner-dist[dask]``.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Sequence, Union

try:
    import dask
    import dask.dataframe as dd
    import pandas as pd
    from dask.base import tokenize
    from dask.dataframe.utils import pyarrow_strings_enabled
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        f"jetliner_dist.dask needs dask[dataframe] and pandas ({exc}); "
        "install them with: pip install jetliner-dist[dask]"
    ) from exc

import pyarrow as pa

from jetliner_dist.errors import SchemaError
from jetliner_dist.local import Source, _prepare
from jetliner_dist.planning import ReadSpec, Split, default_split_size, parse_size, runs_of_size
from jetliner_dist.reading import COLLECT_BATCH_ROWS, output_schema, read_splits

if TYPE_CHECKING:
    import polars as pl
    from dask.delayed import Delayed

__all__ = ["read_avro", "read_avro_partitions"]

LABEL = "read-avro"
PATH_COLUMN = "path"

Filter = tuple[str, str, Any]
Filters = Union[Sequence[Filter], Sequence[Sequence[Filter]]]
"""pyarrow's DNF, as ``dd.read_parquet`` takes it: ``[("a", ">", 1), ...]`` (AND)
or ``[[...], [...]]`` (OR of ANDs)."""


def read_avro(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    blocksize: int | str | None = None,
    storage_options: dict[str, Any] | None = None,
    include_path_column: bool | str = False,
    batch_rows: int | None = None,
    max_block_size: int | str | None = None,
) -> dd.DataFrame:
    """Read Avro files into a :class:`dask.dataframe.DataFrame`.

    Files are listed and their headers read now; data is read when the graph
    runs. Partitions are pandas DataFrames with pyarrow-backed dtypes; Avro
    enums are categoricals whose categories are the schema's symbols, in
    schema order. Options:

    - ``source``: a path, glob, directory or fsspec URL, or a list of them.
    - ``columns``: top-level fields to read; selecting columns of the result
      (``df[["a", "b"]]``) also reads only those, through dask's optimizer.
    - ``filters``: pyarrow-style DNF, as ``dd.read_parquet`` takes it; rows
      that fail it are dropped inside each task, batch by batch.
    - ``blocksize``: bytes per partition (``"64 MiB"``): a large file becomes
      one partition per ``blocksize`` byte range (cut at sync markers), small
      files are grouped until a partition holds about ``blocksize``. The
      default gives every thread of the cluster (of this machine when no
      ``distributed`` client is active) a few partitions of the largest file.
    - ``storage_options``: passed to fsspec (credentials, ``endpoint_url``...).
    - ``include_path_column``: ``True`` adds a ``path`` column, a string names
      it; its dtype is categorical over all paths, as in ``dd.read_csv``.
    - ``batch_rows``: rows per decoded batch inside a task (filters run per batch).
    - ``max_block_size``: refuse blocks that decompress beyond this (bomb guard).
    """
    built = _build(
        source, views=False, columns=columns, filters=filters, blocksize=blocksize,
        storage_options=storage_options, include_path_column=include_path_column,
        batch_rows=batch_rows, max_block_size=max_block_size,
    )  # fmt: skip
    reader = built.reader
    schema = output_schema(reader.spec)
    meta = _to_pandas(schema.empty_table(), reader, (), schema.names)
    # Partitions already hold the string dtype dask's convert-string option
    # asks for (reader.pandas_strings): spare every partition dask's pass.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            partial(_read_frame, reader=reader), built.partitions, meta=meta, label=LABEL,
            enforce_metadata=False,
        )  # fmt: skip


def read_avro_partitions(
    source: Source,
    *,
    kind: Literal["arrow", "polars"] = "arrow",
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
    blocksize: int | str | None = None,
    storage_options: dict[str, Any] | None = None,
    include_path_column: bool | str = False,
    batch_rows: int | None = None,
    max_block_size: int | str | None = None,
) -> list[Delayed]:
    """One :class:`dask.delayed.Delayed` per partition, computing a
    :class:`pyarrow.Table` (``kind="arrow"``) or a :class:`polars.DataFrame`
    (``kind="polars"``), in file order.

    The partitions, options and types are those of :func:`read_avro`, except
    that the tables and frames have the types of the local engine
    (:func:`jetliner_dist.read_table` / :func:`jetliner_dist.read_avro`): the
    path column is a string column.
    """
    if kind not in ("arrow", "polars"):
        raise ValueError(f"kind must be 'arrow' or 'polars', got {kind!r}")
    # Polars reads string_view without a copy, but pyarrow cannot compare it:
    # filtered reads decode large_string.
    views = kind == "polars" and filters is None
    built = _build(
        source, views=views, columns=columns, filters=filters, blocksize=blocksize,
        storage_options=storage_options, include_path_column=include_path_column,
        batch_rows=batch_rows, max_block_size=max_block_size,
    )  # fmt: skip
    read = _read_arrow if kind == "arrow" else _read_polars
    func = dask.delayed(partial(read, reader=built.reader), pure=True)
    token = tokenize(built.reader, built.partitions)
    return [
        func(partition, dask_key_name=f"{LABEL}-{kind}-{token}-{i}")
        for i, partition in enumerate(built.partitions)
    ]


# -- what travels to workers ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PartitionReader:
    """Everything a task needs beside its splits; one per graph.

    ``filters`` is the DNF as an OR of ANDs of ``(column, op, value)``;
    ``paths`` are the path column's categories (every file, in plan order);
    ``pandas_strings`` makes string columns pandas' ``string[pyarrow]``, which
    dask converts them to when its ``dataframe.convert-string`` option is on
    (decided on the client, where the graph is built).
    """

    spec: ReadSpec
    filters: tuple[tuple[Filter, ...], ...] | None = None
    path_column: str | None = None
    paths: tuple[str, ...] = ()
    pandas_strings: bool = False

    def narrowed(self, columns: Sequence[str] | None, path_as_string: bool) -> ReadSpec:
        """The spec that reads ``columns`` (all when None) and the filters' columns.

        The reader adds the path column as strings only when it is wanted as
        strings (Arrow and Polars partitions) or a filter needs it; pandas
        partitions build it as a categorical from the splits instead.
        """
        spec = self.spec
        path = self.path_column
        filtered = _filter_columns(self.filters)
        wanted = list(output_schema(spec).names) if columns is None else list(columns)
        data = [c for c in dict.fromkeys(wanted + filtered) if c != path]
        needs_path = path is not None and (path in filtered or (path_as_string and path in wanted))
        changes: dict[str, Any] = {}
        if data != _data_columns(spec):
            changes["columns"] = tuple(data)
        if needs_path != bool(spec.include_file_paths):
            changes["include_file_paths"] = path if needs_path else None
        return dataclasses.replace(spec, **changes) if changes else spec

    def expression(self):
        """The filters as a pyarrow compute expression (None when there are none)."""
        if self.filters is None:
            return None
        import pyarrow.parquet as pq

        return pq.filters_to_expression([list(conjunction) for conjunction in self.filters])


class _Partition:
    """The splits one task reads, in order.

    A plain slotted class rather than a dataclass: dask walks a dataclass
    field by field, splits and files included, each time it tokenizes the
    graph or builds a delayed call, which took a second for 2,000
    partitions. The token is the byte ranges and file versions it covers.
    """

    __slots__ = ("splits",)

    def __init__(self, splits: Sequence[Split]) -> None:
        self.splits = tuple(splits)

    def __reduce__(self):
        return (_Partition, (self.splits,))

    def __dask_tokenize__(self) -> str:
        import hashlib

        ranges = [(s.file.path, s.file.version, s.file.size, s.start, s.end) for s in self.splits]
        return hashlib.sha1(repr(ranges).encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Partition) and other.splits == self.splits

    def __hash__(self) -> int:
        return hash(self.splits)

    def __repr__(self) -> str:
        return f"_Partition({len(self.splits)} split(s) from {self.splits[0].file.path!r})"


@dataclass(frozen=True)
class _Built:
    reader: _PartitionReader
    partitions: list[_Partition]


def _read_frame(
    partition: _Partition, reader: _PartitionReader, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The worker task of :func:`read_avro`: a partition as a pandas DataFrame.

    ``columns`` is set by dask's optimizer when the graph uses only some of
    the columns; only those are decoded.
    """
    table, file_rows = _read(partition, reader, columns, path_as_string=False)
    wanted = list(output_schema(reader.spec).names) if columns is None else list(columns)
    return _to_pandas(table, reader, file_rows, wanted)


def _read_arrow(partition: _Partition, reader: _PartitionReader) -> pa.Table:
    """The worker task of ``read_avro_partitions(kind="arrow")``."""
    return _read(partition, reader, None, path_as_string=True)[0]


def _read_polars(partition: _Partition, reader: _PartitionReader) -> "pl.DataFrame":
    """The worker task of ``read_avro_partitions(kind="polars")``."""
    from jetliner_dist.frames import to_polars

    return to_polars(_read(partition, reader, None, path_as_string=True)[0], reader.spec)


def _read(
    partition: _Partition,
    reader: _PartitionReader,
    columns: Sequence[str] | None,
    *,
    path_as_string: bool,
) -> tuple[pa.Table, list[tuple[int, int]]]:
    """Read, filter and concatenate; also (file index, rows) of each batch kept.

    Batches are filtered as they come, so rows that fail the filters never
    pile up. The table has ``columns`` in that order (all when None), minus
    the path column unless ``path_as_string``.
    """
    spec = reader.narrowed(columns, path_as_string)
    expression = reader.expression()
    batches: list[pa.RecordBatch] = []
    file_rows: list[tuple[int, int]] = []
    # Pandas partitions build the path column from each file's row count.
    per_file = reader.path_column is not None and not path_as_string
    runs: list[list[tuple[int, int]]] = []  # per batch: (split position, rows)
    for batch in read_splits(partition.splits, spec, on_batch_splits=runs.append):
        rows = runs.pop()
        if expression is not None and per_file:
            batch, rows = _filtered(batch, expression, rows)
        elif expression is not None:
            batch = batch.filter(expression)
        batches.append(batch)
        file_rows.extend((partition.splits[split].file_index, count) for split, count in rows)
    table = pa.Table.from_batches(batches, schema=output_schema(spec))
    wanted = list(output_schema(reader.spec).names) if columns is None else list(columns)
    if not path_as_string:
        wanted = [c for c in wanted if c != reader.path_column]
    names = table.column_names
    present = set(names)
    keep = [c for c in wanted if c in present]
    if keep != names:
        table = table.select(keep)
    return table, file_rows


def _filtered(batch: pa.RecordBatch, expression, rows: list[tuple[int, int]]):
    """``batch`` filtered, and how many rows of each split's run are left."""
    import numpy as np

    numbered = batch.append_column("__row__", pa.array(np.arange(batch.num_rows, dtype=np.int64)))
    kept = numbered.filter(expression)
    left = kept.column(kept.num_columns - 1).to_numpy()
    ends = np.cumsum([count for _, count in rows])
    counts = np.diff(np.searchsorted(left, ends, side="left"), prepend=0)
    return kept.drop_columns(["__row__"]), [(split, int(n)) for (split, _), n in zip(rows, counts)]


# -- Arrow → pandas ---------------------------------------------------------------


def _to_pandas(
    table: pa.Table,
    reader: _PartitionReader,
    file_rows: Sequence[tuple[int, int]],
    order: Sequence[str],
) -> pd.DataFrame:
    """The columns ``order`` names as pandas: pyarrow-backed dtypes, enums and
    the path column as categoricals (the path from ``file_rows``)."""
    import numpy as np

    enums = _enum_dtypes(reader.spec)
    data: dict[str, Any] = {}
    for name in order:
        if name == reader.path_column:
            files = np.asarray([i for i, _ in file_rows], dtype=np.int32)
            codes = np.repeat(files, [n for _, n in file_rows])
            data[name] = pd.Categorical.from_codes(codes, dtype=_path_dtype(reader))
        elif name in enums:
            codes = _dictionary_codes(table.column(name))
            data[name] = pd.Categorical.from_codes(codes, dtype=enums[name])
        else:
            column = table.column(name)
            if reader.pandas_strings and column.type == pa.large_string():
                # What dask would convert it to; zero-copy here, a copy per partition there.
                data[name] = pd.arrays.ArrowStringArray(column)
            else:
                data[name] = pd.arrays.ArrowExtensionArray(column)
    return pd.DataFrame(data, index=pd.RangeIndex(table.num_rows), copy=False)


def _dictionary_codes(column: pa.ChunkedArray):
    """The int32 codes of a dictionary column (-1 for null).

    The reader puts the enum's symbols, in schema order, in every batch's
    dictionary, so the indices are the categorical codes as they are.
    """
    import numpy as np

    indices = [chunk.indices.fill_null(-1).to_numpy() for chunk in column.chunks]
    return np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32)


def _enum_dtypes(spec: ReadSpec) -> dict[str, pd.CategoricalDtype]:
    """The categorical dtype of each top-level enum column: the schema's symbols."""
    program = spec.program()
    return {
        name: pd.CategoricalDtype(list(program.columns[c].detail), ordered=False)
        for name, c in program.outputs
        if program.columns[c].finish == "enum"
    }


def _path_dtype(reader: _PartitionReader) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(reader.paths), ordered=False)


# -- planning on the client -----------------------------------------------------


def _build(
    source: Source,
    *,
    views: bool,
    columns: Sequence[str] | None,
    filters: Filters | None,
    blocksize: int | str | None,
    storage_options: dict[str, Any] | None,
    include_path_column: bool | str,
    batch_rows: int | None,
    max_block_size: int | str | None,
) -> _Built:
    """List, read headers, plan and group splits into partitions."""
    path_column = _path_column_name(include_path_column)
    workers = _cluster_threads()
    prepared = _prepare(
        source, views=views, columns=columns, storage_options=storage_options,
        include_file_paths=path_column, batch_rows=batch_rows, split_size=blocksize,
        max_workers=workers, max_block_size=max_block_size, default_rows=COLLECT_BATCH_ROWS,
    )  # fmt: skip
    if prepared.found.memory:
        raise TypeError(
            "jetliner_dist.dask reads paths, globs and URLs that workers can open; "
            "for bytes or file objects use jetliner_dist.read_table or read_avro"
        )
    plan = prepared.plan
    reader = _PartitionReader(
        spec=plan.spec,
        filters=_normalize_filters(filters),
        path_column=path_column,
        paths=tuple(f.path for f in plan.files) if path_column else (),
        pandas_strings=pyarrow_strings_enabled(),
    )
    _check_filters(reader)
    if blocksize is None:
        size = default_split_size(plan.files, prepared.workers)
    else:
        size = parse_size(blocksize)
    return _Built(reader, _group(plan.splits, size))


def _group(splits: Sequence[Split], size: int) -> list[_Partition]:
    """One partition per split, or runs of consecutive small splits (small
    files) that hold about ``size`` bytes each."""
    return [_Partition(tuple(run)) for run in runs_of_size(splits, size)]


def _cluster_threads() -> int | None:
    """Threads of the active ``distributed`` client's cluster, if there is one.

    None lets planning size splits for this machine's cores.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        client = distributed.default_client()
    except ValueError:  # no client
        return None
    threads = client.scheduler_info(n_workers=0).get("total_threads")
    return threads if isinstance(threads, int) and threads > 0 else None


def _path_column_name(include_path_column: bool | str) -> str | None:
    if include_path_column is True:
        return PATH_COLUMN
    if include_path_column is False or include_path_column is None:
        return None
    if isinstance(include_path_column, str) and include_path_column:
        return include_path_column
    raise TypeError(
        f"include_path_column must be True, False or a column name, got {include_path_column!r}"
    )


def _normalize_filters(filters: Filters | None) -> tuple[tuple[Filter, ...], ...] | None:
    """DNF as a tuple (OR) of tuples (AND) of ``(column, op, value)``, hashable."""
    if filters is None:
        return None
    if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence) or not filters:
        raise TypeError(
            "filters must be a non-empty list of (column, op, value) tuples, or a list of such lists"
        )
    conjunctions = [filters] if _is_predicate(filters[0]) else list(filters)
    out = []
    for conjunction in conjunctions:
        if isinstance(conjunction, (str, bytes)) or not isinstance(conjunction, Sequence):
            raise TypeError(f"not a list of (column, op, value) tuples: {conjunction!r}")
        predicates = []
        for predicate in conjunction:
            if not _is_predicate(predicate):
                raise TypeError(f"a filter is a (column, op, value) tuple, got {predicate!r}")
            column, op, value = predicate
            if isinstance(value, (list, set, frozenset)):
                value = tuple(value)
            predicates.append((column, op, value))
        out.append(tuple(predicates))
    return tuple(out)


def _is_predicate(item: Any) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 3 and isinstance(item[0], str)


def _check_filters(reader: _PartitionReader) -> None:
    """Unknown columns, operators or mismatched types fail here, not on a worker."""
    if reader.filters is None:
        return
    import pyarrow.lib

    everything = dataclasses.replace(reader.spec, columns=None)
    known = set(_data_columns(everything)) | {reader.path_column}
    unknown = [c for c in _filter_columns(reader.filters) if c not in known]
    if unknown:
        raise SchemaError(f"filters name columns the files do not have: {unknown}")
    try:
        output_schema(everything).empty_table().filter(reader.expression())
    except (pyarrow.lib.ArrowException, TypeError) as exc:
        raise ValueError(f"filters {list(reader.filters)} cannot apply to the files: {exc}") from exc


def _filter_columns(filters: tuple[tuple[Filter, ...], ...] | None) -> list[str]:
    if filters is None:
        return []
    return list(dict.fromkeys(column for conjunction in filters for column, _, _ in conjunction))


def _data_columns(spec: ReadSpec) -> list[str]:
    """The Avro columns a spec reads (no path column)."""
    return [name for name, _ in spec.program().outputs]
