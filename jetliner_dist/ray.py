"""Ray Data: :class:`AvroDatasource` and :func:`read_avro`.

A thin adapter: the driver plans (files, headers, splits), ``get_read_tasks``
groups splits into at most ``parallelism`` byte-balanced runs, and each
:class:`~ray.data.datasource.ReadTask` runs :func:`read_splits` — a module-level
function bound with :func:`functools.partial`, so a task ships its splits and
the read spec, never the datasource. Column selection and filters that Ray's
optimizer pushes down (``ds.select_columns``, ``ds.filter(expr=...)``) reach
the reader: unselected columns are never decoded and rows are filtered per
batch, before Ray builds blocks.

Install with ``pip install jetliner-dist[ray]``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

try:
    import ray
    import ray.data
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "jetliner_dist.ray needs Ray Data; install it with: pip install jetliner-dist[ray]"
    ) from exc

import pyarrow as pa

from jetliner_dist import reading
from jetliner_dist.errors import SchemaError
from jetliner_dist.local import Source, default_max_workers
from jetliner_dist.local import plan as make_plan
from jetliner_dist.planning import Plan, ReadSpec, Split, group_splits

if TYPE_CHECKING:
    import pyarrow.compute as pc
    from ray.data.expressions import Expr

__all__ = ["AvroDatasource", "read_avro", "read_splits"]

_METADATA_FIELDS = frozenset(f.name for f in dataclasses.fields(BlockMetadata))
_READ_TASK_PARAMETERS = frozenset(inspect.signature(ReadTask.__init__).parameters)

# Rows per Arrow table a read task yields unless ``batch_rows`` says otherwise.
# Ray concatenates them into blocks of DataContext.target_max_block_size.
DEFAULT_RAY_BATCH_ROWS = 131_072

# In-memory Arrow bytes per byte of Avro file, by the header's codec. Measured
# with benchmarks/ray_bench.py --expansion (100,000 rows of each benchmark
# layout written with every codec, Table.nbytes / file size): geometric mean of
# the simple / wide / complex layouts; per-layout range in the comment. The
# range is wide (nested data compresses best), so these are estimates for
# Ray's block sizing, not promises.
CODEC_EXPANSION = {
    "null": 1.5,  # 1.37 - 1.72
    "deflate": 3.7,  # 2.38 - 7.02
    "snappy": 3.0,  # 2.04 - 5.32
    "zstandard": 3.7,  # 2.37 - 7.37
    "bzip2": 3.9,  # 2.41 - 7.52
    "xz": 4.4,  # 2.62 - 8.91
}
# Ray's placeholder column that keeps the row count of a block without
# columns; Ray hides it from users. An internal name, hence the fallback.
try:
    from ray.data._internal.arrow_block import _BATCH_SIZE_PRESERVING_STUB_COL_NAME as _STUB_COLUMN
except ImportError:  # pragma: no cover - a Ray that moved it
    _STUB_COLUMN = "__bsp_stub"

# A codec not measured above (a custom registration): assume it compresses well.
UNKNOWN_CODEC_EXPANSION = 4.0


class AvroDatasource(Datasource):
    """A Ray Data source reading the splits of a :class:`jetliner_dist.Plan`.

    Build one with :func:`read_avro`, or from a plan of paths / URLs::

        plan = jetliner_dist.plan("s3://bucket/topic/*.avro", split_size="32 MiB")
        ds = ray.data.read_datasource(AvroDatasource(plan))

    The plan's files must be readable from every Ray worker (paths on shared
    storage or URLs); bytes and file objects only work with the local engine.
    Supports projection and predicate pushdown.
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        if not isinstance(plan, Plan):
            raise TypeError(f"AvroDatasource needs a jetliner_dist.Plan, got {type(plan).__name__}")
        self._plan = plan
        # Ray's pushdown mixins keep their state in these two attributes.
        self._projection_map: dict[str, str] | None = None
        self._predicate_expr: "Expr | None" = None

    @property
    def plan(self) -> Plan:
        """The plan this source reads (projection pushdown not applied)."""
        return self._plan

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of the blocks, after any pushed-down projection."""
        names = self._output_columns()
        schema = self._plan.arrow_schema
        return schema if names is None else pa.schema([schema.field(n) for n in names])

    def get_name(self) -> str:
        return "JetlinerAvro"

    def supports_projection_pushdown(self) -> bool:
        return True

    def supports_predicate_pushdown(self) -> bool:
        return True

    def apply_projection(self, projection_map: Mapping[str, str] | None) -> "AvroDatasource":
        if projection_map is not None:
            available = set(self._plan.arrow_schema.names)
            unknown = [name for name in projection_map if name not in available]
            if unknown:
                raise SchemaError(
                    f"cannot select unknown column(s) {unknown}; the Avro files have "
                    f"{self._plan.arrow_schema.names}"
                )
        return super().apply_projection(projection_map)

    def estimate_inmemory_data_size(self) -> int:
        return _estimate_size(self._plan.splits, self._column_share())

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[ReadTask]:
        """At most ``parallelism`` tasks, each reading a run of consecutive
        splits with about the same number of file bytes (plan order kept)."""
        # Unpack everything a task needs into locals, so read functions bind
        # small values and never ``self`` (Ray's parquet_datasource does the same).
        spec, keep, predicate = self._read_spec()
        schema = self.arrow_schema
        share = self._column_share()
        tasks = []
        for group in group_splits(self._plan.splits, max(1, parallelism)):
            read_fn = _named(functools.partial(
                read_splits, tuple(group), spec, columns=keep, predicate=predicate,
                row_limit=per_task_row_limit,
            ))  # fmt: skip
            tasks.append(_read_task(
                read_fn,
                num_rows=None,  # known only after reading: planning reads headers alone
                size_bytes=_estimate_size(group, share),
                input_files=list(dict.fromkeys(split.file.path for split in group)),
                schema=_block_schema(schema),
                row_limit=per_task_row_limit,
            ))  # fmt: skip
        return tasks

    # -- the read spec after pushdown -----------------------------------------

    def _output_columns(self) -> list[str] | None:
        """Output column names in order, or None for all of the plan's."""
        if self._projection_map is None:
            return None
        return list(self._projection_map)

    def _column_share(self) -> float:
        """The fraction of the plan's columns the output keeps (for size estimates)."""
        names = self._output_columns()
        total = len(self._plan.arrow_schema)
        if names is None or total == 0:
            return 1.0
        return len(names) / total

    def _read_spec(self) -> tuple[ReadSpec, tuple[str, ...] | None, "pc.Expression | None"]:
        """The spec tasks decode with, the columns they return (None: all
        decoded) and the Arrow filter they apply per batch.

        The spec decodes the output columns plus those the predicate needs; the
        latter are dropped after filtering.
        """
        spec = self._plan.spec
        output = self._output_columns()
        predicate = None
        needed: list[str] | None = []
        if self._predicate_expr is not None:
            predicate = self._predicate_expr.to_pyarrow()
            needed = _column_references(self._predicate_expr)
        if output is None:
            return spec, None, predicate
        if needed is None:  # decode everything, filter, then select
            return spec, tuple(output), predicate
        paths = spec.include_file_paths
        wanted = list(dict.fromkeys([*output, *needed]))
        data = [name for name in wanted if name != paths]
        narrowed = dataclasses.replace(
            spec,
            columns=tuple(data),
            include_file_paths=paths if paths in wanted else None,
        )
        keep = None if wanted == output and data == output else tuple(output)
        return narrowed, keep, predicate


def read_splits(
    splits: Sequence[Split],
    spec: ReadSpec,
    *,
    columns: Sequence[str] | None = None,
    predicate: "pc.Expression | None" = None,
    row_limit: int | None = None,
) -> Iterator[pa.Table]:
    """Decode ``splits`` in order into Arrow tables of about ``spec.batch_rows``
    rows: the read function of every Ray read task.

    ``predicate`` (a pyarrow compute expression) filters each batch; then
    ``columns`` selects and orders the output. Without a predicate, decoding
    stops after ``row_limit`` rows. Empty tables are not yielded.
    """
    limit = row_limit if predicate is None else None
    # One decoder for the whole run: small files share tables (reading.read_splits).
    for batch in reading.read_splits(splits, spec, n_rows=limit):
        table = pa.Table.from_batches([batch])
        if predicate is not None:
            table = table.filter(predicate)
        if columns is not None:
            table = table.select(list(columns))
        if table.num_rows:
            yield _keep_row_count(table)


def read_avro(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    filter: "Expr | None" = None,
    storage_options: dict[str, Any] | None = None,
    include_file_paths: str | None = None,
    batch_rows: int | None = None,
    split_size: int | str | None = None,
    max_block_size: int | str | None = None,
    override_num_blocks: int | None = None,
    concurrency: int | None = None,
    num_cpus: float | None = None,
    memory: float | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> "ray.data.Dataset":
    """Read Avro files into a :class:`ray.data.Dataset` of Arrow blocks.

    Files are listed and their headers read on the driver; big files are cut
    at sync markers into splits (``split_size``, default: enough for every
    CPU of the Ray cluster), and splits are grouped into read tasks balanced
    by bytes. Options:

    - ``columns``: top-level fields to read; the rest are never decoded.
      ``ds.select_columns`` later narrows the read the same way.
    - ``filter``: a ``ray.data.expressions`` predicate, e.g. ``col("x") > 3``;
      the same as ``ds.filter(expr=...)``, which Ray pushes into the reader.
    - ``storage_options``: passed to fsspec for URLs (credentials, endpoint_url...).
    - ``include_file_paths``: name of a column holding each row's file path.
    - ``batch_rows``: rows per Arrow table a task yields (default 131,072).
    - ``split_size``: bytes per split ("64 MiB").
    - ``max_block_size``: refuse Avro blocks that decompress beyond this.
    - ``override_num_blocks``: read tasks (and blocks) to make; default: one
      per split, at most Ray's default number of read blocks.
    - ``concurrency``, ``num_cpus``, ``memory``, ``ray_remote_args``: as in
      :func:`ray.data.read_parquet`.

    ``source`` is a path, glob, directory or fsspec URL, or a list of them;
    every Ray worker must be able to read it.
    """
    _check_source(source)
    cpus = _cluster_cpus()
    plan = make_plan(
        source, columns=columns, storage_options=storage_options,
        include_file_paths=include_file_paths,
        batch_rows=DEFAULT_RAY_BATCH_ROWS if batch_rows is None else batch_rows,
        split_size=split_size, max_workers=cpus, max_block_size=max_block_size,
    )  # fmt: skip
    if override_num_blocks is None:
        override_num_blocks = _default_num_blocks(len(plan.splits), cpus)
    dataset = ray.data.read_datasource(
        AvroDatasource(plan), override_num_blocks=override_num_blocks, concurrency=concurrency,
        num_cpus=num_cpus, memory=memory, ray_remote_args=ray_remote_args,
    )  # fmt: skip
    if filter is not None:
        dataset = dataset.filter(expr=filter)
    return dataset


# -- helpers ---------------------------------------------------------------------


def _estimate_size(splits: Sequence[Split], share: float) -> int:
    """Arrow bytes the splits decode to: file bytes × the codec's expansion ×
    the share of columns kept (per split, so tasks add up to the whole)."""
    return sum(
        int(split.size * CODEC_EXPANSION.get(split.file.codec, UNKNOWN_CODEC_EXPANSION) * share)
        for split in splits
    )


def _keep_row_count(table: pa.Table) -> pa.Table:
    """``table``, with Ray's hidden stub column if it has no columns: Ray counts
    the rows of a zero-column table as 0 (its parquet reader does the same)."""
    if table.num_columns:
        return table
    return table.append_column(_STUB_COLUMN, pa.nulls(table.num_rows))


def _block_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of the blocks :func:`read_splits` yields."""
    return schema if len(schema) else pa.schema([pa.field(_STUB_COLUMN, pa.null())])


def _column_references(expr: "Expr") -> list[str] | None:
    """The columns ``expr`` reads, or None if this Ray cannot say (then every
    column is decoded)."""
    try:
        from ray.data._internal.planner.plan_expression.expression_visitors import (
            get_column_references,
        )
    except ImportError:  # pragma: no cover - an internal module that moved
        return None
    return list(dict.fromkeys(get_column_references(expr)))


def _read_task(read_fn, *, schema: pa.Schema, row_limit: int | None, **metadata: Any) -> ReadTask:
    """A ReadTask for this Ray: the block schema moved from BlockMetadata to
    ReadTask, and ReadTask learnt per_task_row_limit, in later Ray versions."""
    task: dict[str, Any] = {}
    if "schema" in _METADATA_FIELDS:
        metadata["schema"] = schema
    else:
        task["schema"] = schema
    if row_limit is not None and "per_task_row_limit" in _READ_TASK_PARAMETERS:
        task["per_task_row_limit"] = row_limit
    return ReadTask(read_fn, BlockMetadata(exec_stats=None, **metadata), **task)


def _named(read_fn: functools.partial) -> functools.partial:
    """Give the partial a ``__name__``: Ray names read functions in warnings."""
    read_fn.__name__ = read_fn.__qualname__ = read_fn.func.__name__  # type: ignore[attr-defined]
    return read_fn


def _check_source(source: Any) -> None:
    items = source if isinstance(source, (list, tuple)) else [source]
    for item in items:
        if isinstance(item, (bytes, bytearray, memoryview, io.IOBase)) or hasattr(item, "read"):
            raise TypeError(
                "jetliner_dist.ray.read_avro reads paths, globs, directories and URLs that "
                "every Ray worker can open; bytes and file objects work with the local "
                "engine (jetliner_dist.read_avro) only"
            )


def _cluster_cpus() -> int:
    """CPUs of the connected Ray cluster, or of this machine before Ray starts
    (``read_datasource`` then starts a local Ray on it)."""
    if ray.is_initialized():
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    return default_max_workers()


def _default_num_blocks(splits: int, cpus: int) -> int:
    """One read task and block per split, up to Ray's default number of read
    blocks (``DataContext.read_op_min_num_blocks``, or two per CPU if more).

    Left to itself, Ray asks for about one block per MiB of estimated data and
    slices each task's output to get there: with one task per split that made
    11 blocks per task and doubled the time of reading a 1M-row file (measured
    with benchmarks/ray_bench.py). Blocks larger than the target block size
    are still cut by Ray as they are produced.
    """
    context = ray.data.DataContext.get_current()
    ceiling = max(getattr(context, "read_op_min_num_blocks", 200), 2 * cpus)
    return max(1, min(splits, ceiling))
