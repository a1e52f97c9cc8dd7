"""jetliner_dist: fast, splittable Apache Avro reading for Arrow, Polars and pandas.

``import jetliner_dist`` is light: the readers (and numpy, pyarrow, numba) load
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jetliner_dist.errors import (
    AvroFormatError,
    CodecError,
    CorruptBlockError,
    DecodeError,
    DecompressionError,
    HeaderError,
    JetlinerDistError,
    LimitExceededError,
    ObjectChangedError,
    SchemaError,
    SourceError,
    SyncMarkerError,
    TruncatedError,
)

__version__ = "0.1.0"

__all__ = [
    "read_avro",
    "scan_avro",
    "read_table",
    "iter_batches",
    "read_avro_schema",
    "count_rows",
    "plan",
    "AvroReader",
    "Plan",
    "Split",
    "ReadSpec",
    "JetlinerDistError",
    "SourceError",
    "ObjectChangedError",
    "SchemaError",
    "AvroFormatError",
    "HeaderError",
    "CodecError",
    "CorruptBlockError",
    "SyncMarkerError",
    "TruncatedError",
    "DecompressionError",
    "DecodeError",
    "LimitExceededError",
]

_LAZY = {
    "read_avro": "jetliner_dist.local",
    "read_table": "jetliner_dist.local",
    "iter_batches": "jetliner_dist.local",
    "read_avro_schema": "jetliner_dist.local",
    "count_rows": "jetliner_dist.local",
    "plan": "jetliner_dist.local",
    "AvroReader": "jetliner_dist.local",
    "scan_avro": "jetliner_dist.polars",
    "Plan": "jetliner_dist.planning",
    "Split": "jetliner_dist.planning",
    "ReadSpec": "jetliner_dist.planning",
}

if TYPE_CHECKING:
    from jetliner_dist.local import (
        AvroReader,
        count_rows,
        iter_batches,
        plan,
        read_avro,
        read_avro_schema,
        read_table,
    )
    from jetliner_dist.planning import Plan, ReadSpec, Split
    from jetliner_dist.polars import scan_avro


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jetliner_dist' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
