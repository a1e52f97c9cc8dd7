"""Polars: ``scan_avro`` as an IO plugin with projection, predicate and
``n_rows`` pushdown. The schema comes from the plan, never from data."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import polars as pl
from polars.io.plugins import register_io_source

from jetliner_dist.frames import polars_schema, to_polars
from jetliner_dist.local import Source, _check_rows, _prepare, _Prepared
from jetliner_dist.planning import Plan
from jetliner_dist.progress import ProgressMode

__all__ = ["scan_avro"]


def scan_avro(
    source: Source,
    *,
    n_rows: int | None = None,
    storage_options: dict[str, Any] | None = None,
    include_file_paths: str | None = None,
    row_index_name: str | None = None,
    batch_rows: int | None = None,
    split_size: int | str | None = None,
    max_workers: int | None = None,
    max_block_size: int | str | None = None,
    progress: ProgressMode = False,
) -> pl.LazyFrame:
    """Lazily scan Avro into a :class:`polars.LazyFrame`.

    Files are listed and their headers read now; data is read on ``collect``.
    Selected columns are the only ones decoded, filters run on each batch
    before batches are concatenated, and ``head``/``limit`` stop reading early.
    Options as :func:`jetliner_dist.iter_batches`.
    """
    _check_rows(n_rows)
    prepared = _prepare(
        source, views=True, storage_options=storage_options,
        include_file_paths=include_file_paths, batch_rows=batch_rows, split_size=split_size,
        max_workers=max_workers, max_block_size=max_block_size,
    )  # fmt: skip
    spec = prepared.plan.spec
    schema = polars_schema(spec.program(), include_file_paths, row_index_name)

    def source_generator(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        limit: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        projected = _project(prepared, with_columns, batch_size)
        rows = n_rows if predicate is not None else _smaller(n_rows, limit)
        left = limit if predicate is not None else None
        batches = projected.batches(rows, row_index_name, progress)
        try:
            for batch in batches:
                frame = to_polars(batch, projected.plan.spec, row_index_name)
                if predicate is not None:
                    frame = frame.filter(predicate)
                if left is not None:
                    frame = frame.head(left)
                    left -= frame.height
                yield frame
                if left == 0:
                    return
        finally:
            batches.close()

    return register_io_source(
        source_generator,
        schema=schema,
        is_pure=True,
        explain_name="jetliner_dist.scan_avro",
        explain_detail=f"{len(prepared.plan.files)} file(s), {len(prepared.plan.splits)} split(s)",
    )


def _project(prepared: _Prepared, with_columns: Sequence[str] | None, batch_size: int | None) -> _Prepared:
    """The prepared read narrowed to the columns Polars asks for."""
    spec = prepared.plan.spec
    changes: dict[str, Any] = {}
    if with_columns is not None:
        data = set(spec.program().arrow_schema.names)
        changes["columns"] = tuple(c for c in with_columns if c in data)
        if spec.include_file_paths and spec.include_file_paths not in with_columns:
            changes["include_file_paths"] = None
    if batch_size:
        changes["batch_rows"] = batch_size
    if not changes:
        return prepared
    narrowed = dataclasses.replace(spec, **changes)
    plan = Plan(prepared.plan.files, prepared.plan.splits, narrowed)
    return dataclasses.replace(prepared, plan=plan)


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
