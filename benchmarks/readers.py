"""The readers under comparison, each as ``read(path, columns) -> polars.DataFrame``.

Every reader imports its library on call, so a peer that is not installed (or a
jetliner_dist that does not import yet) fails its own measurements with an error
the report shows, instead of stopping the whole run.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

Columns = Optional[Sequence[str]]


def read_jetliner_dist(path: str, columns: Columns) -> object:
    """jetliner_dist with its defaults (all cores)."""
    import jetliner_dist as jd

    return jd.read_avro(path, columns=columns)


def read_jetliner_dist_one_thread(path: str, columns: Columns) -> object:
    """jetliner_dist on one thread: the decoder's speed without parallelism."""
    import jetliner_dist as jd

    if "max_workers" not in inspect.signature(jd.read_avro).parameters:
        raise NotImplementedError("read_avro has no max_workers option yet")
    return jd.read_avro(path, columns=columns, max_workers=1)


def read_jetliner(path: str, columns: Columns) -> object:
    """jetliner (Rust) with projection pushdown."""
    import jetliner

    return jetliner.read_avro(path, columns=columns)


def read_polars_avro(path: str, columns: Columns) -> object:
    """polars-avro (Rust, arrow-avro) with projection pushdown."""
    import polars_avro

    return polars_avro.read_avro(path, columns=columns)


def read_fastavro(path: str, columns: Columns, max_rows: int | None = None) -> object:
    """fastavro records → ``polars.DataFrame``; at most ``max_rows`` rows.

    Projection goes through a reader schema that keeps only the wanted fields,
    the way a fastavro user skips columns; fastavro still walks every value.
    """
    import fastavro
    import polars as pl

    with open(path, "rb") as file:
        reader_schema = None
        if columns is not None:
            reader_schema = _projected_schema(fastavro.reader(file).writer_schema, columns)
            file.seek(0)
        rows = itertools.islice(fastavro.reader(file, reader_schema=reader_schema), max_rows)
        return pl.DataFrame(list(rows))


def _projected_schema(writer_schema: dict, columns: Sequence[str]) -> dict:
    """The writer's record schema restricted to ``columns``, in the order asked."""
    fields = {field["name"]: field for field in writer_schema["fields"]}
    return {**writer_schema, "fields": [fields[name] for name in columns]}


@dataclass(frozen=True)
class Reader:
    """A reader under test: how to call it in-process and in a fresh process."""

    name: str
    read: Callable[[str, Columns], object]
    # Python statement the fresh-process measurement runs (``path`` is bound);
    # None where a fresh process would measure nothing new.
    fresh_statement: str | None
    # Row cap of a slow row-at-a-time reader; its times are scaled to the file.
    max_rows: int | None = None


JD = "jetliner_dist"
JD_ONE_THREAD = "jetliner_dist (1 thread)"
JETLINER = "jetliner"
POLARS_AVRO = "polars-avro"
FASTAVRO = "fastavro"


def make_readers(fastavro_rows: int | None) -> list[Reader]:
    """Every reader, in report order; fastavro is capped at ``fastavro_rows`` rows."""
    return [
        Reader(JD, read_jetliner_dist, "import jetliner_dist as jd; jd.read_avro(path)"),
        Reader(JD_ONE_THREAD, read_jetliner_dist_one_thread, None),
        Reader(JETLINER, read_jetliner, "import jetliner; jetliner.read_avro(path)"),
        Reader(POLARS_AVRO, read_polars_avro, "import polars_avro; polars_avro.read_avro(path)"),
        Reader(
            FASTAVRO,
            functools.partial(read_fastavro, max_rows=fastavro_rows),
            "import fastavro, polars as pl; "
            "pl.DataFrame(list(fastavro.reader(open(path, 'rb'))))",
            max_rows=fastavro_rows,
        ),
    ]
