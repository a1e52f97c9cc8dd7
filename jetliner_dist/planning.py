"""Planning: pure functions from files to splits (DESIGN §3.1).

Everything here is data in, data out: no I/O, no engines. What crosses to a
worker is a :class:`Split` (a file's facts and a byte range) and one
:class:`ReadSpec` (the schema and how to decode): frozen, slotted dataclasses
of builtins that pickle small.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from jetliner_dist.errors import SchemaError
from jetliner_dist.sources import REMOTE_READ_SIZE, is_remote

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from jetliner_dist.avro.program import Program

MIN_SPLIT_SIZE = 4 * 1024 * 1024
MAX_SPLIT_SIZE = 128 * 1024 * 1024
# Files in object stores: splits of at least one read window, so a file is
# read in few large requests (each costs tens of milliseconds before any
# byte), and an object of a few windows still gives every worker a split:
# one split fetches while another decodes, and a larger split fetches its
# next window while it decodes one (readahead.py). With splits of two windows,
# one thread decoded a 22 MB object alone: 44 ms from the loopback server,
# against 35 ms in two splits.
REMOTE_MIN_SPLIT_SIZE = REMOTE_READ_SIZE
# With the default split size, each worker gets about this many splits of one
# big file: enough to even out uneven blocks, few enough to keep splits large.
SPLITS_PER_WORKER = 4


@dataclass(frozen=True, slots=True)
class AvroFile:
    """One Avro file as planning knows it: size and header facts, no data.

    ``header_end`` is the offset of the first block; ``version`` identifies the
    object's content where the file system tells (an ETag, a modification time).
    """

    path: str
    size: int
    codec: str
    sync: bytes
    header_end: int
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Split:
    """The blocks of ``file`` whose preceding sync marker begins in [start, end).

    ``index`` is the split's position in the plan (file order, then offset).
    """

    file: AvroFile
    start: int
    end: int
    index: int
    file_index: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """How to decode: the same for every split of a plan.

    ``storage_options`` are passed to fsspec unchanged; ``views`` picks Arrow's
    string_view layout (Polars results) over large_string.
    """

    schema_json: str
    columns: tuple[str, ...] | None = None
    batch_rows: int = 65_536
    max_block_size: int = 512 * 1024 * 1024
    views: bool = False
    include_file_paths: str | None = None
    storage_options: dict[str, Any] | None = field(default=None, hash=False)

    def program(self) -> "Program":
        """The compiled decoder program (cached per process)."""
        from jetliner_dist.avro.program import compile_program

        return compile_program(self.schema_json, self.columns, views=self.views)


@dataclass(frozen=True, eq=False)
class Plan:
    """Files, their splits and the shared read spec; see :func:`jetliner_dist.plan`."""

    files: tuple[AvroFile, ...]
    splits: tuple[Split, ...]
    spec: ReadSpec

    @property
    def arrow_schema(self) -> "pa.Schema":
        """The Arrow schema every split reads into (file path column included)."""
        from jetliner_dist.reading import output_schema

        return output_schema(self.spec)

    @property
    def schema(self) -> "pl.Schema":
        """The Polars schema of the result."""
        from jetliner_dist.frames import polars_schema

        return polars_schema(self.spec.program(), self.spec.include_file_paths)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def __repr__(self) -> str:
        lines = [
            f"Plan: {len(self.files)} file(s), {_human(self.total_bytes)}, "
            f"{len(self.splits)} split(s)"
        ]
        shown = self.splits[:8]
        for split in shown:
            lines.append(
                f"  split {split.index}: {split.file.path} "
                f"[{split.start}, {split.end}) {_human(split.size)}"
            )
        if len(self.splits) > len(shown):
            lines.append(f"  ... {len(self.splits) - len(shown)} more")
        names = ", ".join(self.arrow_schema.names)
        lines.append(f"  columns: {names}")
        return "\n".join(lines)


def plan_splits(files: Sequence[AvroFile], split_size: int) -> list[Split]:
    """Cut each file's blocks into byte ranges of about ``split_size``.

    A file no larger than ``split_size`` (past its header) is one split. The
    first split of a file starts at 0, so it owns the first block (whose
    preceding sync marker ends the header); the last ends at the file's size.
    """
    if split_size <= 0:
        raise ValueError(f"split_size must be positive, got {split_size}")
    splits: list[Split] = []
    for file_index, file in enumerate(files):
        data = max(file.size - file.header_end, 0)
        count = max(1, math.ceil(data / split_size))
        step = data / count
        bounds = [0] + [file.header_end + round(step * k) for k in range(1, count)] + [file.size]
        for start, end in zip(bounds, bounds[1:]):
            splits.append(Split(file, start, end, len(splits), file_index))
    return splits


def default_split_size(files: Sequence[AvroFile], workers: int) -> int:
    """A split size that keeps ``workers`` busy on the largest file without
    making splits smaller than :data:`MIN_SPLIT_SIZE`, or
    :data:`REMOTE_MIN_SPLIT_SIZE` for files read through fsspec."""
    largest = max((f.size for f in files), default=0)
    wanted = largest // max(1, workers * SPLITS_PER_WORKER)
    smallest = REMOTE_MIN_SPLIT_SIZE if any(is_remote(f.path) for f in files) else MIN_SPLIT_SIZE
    return min(max(wanted, smallest), MAX_SPLIT_SIZE)


def runs_of_size(splits: Sequence[Split], size: int) -> list[list[Split]]:
    """Each split alone, or runs of consecutive small splits (small files)
    holding about ``size`` bytes each: a unit of work that is worth handing
    to a worker."""
    groups = max(1, math.ceil(sum(s.size for s in splits) / size))
    if groups >= len(splits):
        return [[split] for split in splits]
    return group_splits(splits, groups)


def group_splits(splits: Sequence[Split], groups: int) -> list[list[Split]]:
    """At most ``groups`` runs of consecutive splits with similar byte totals.

    Deterministic, and order-preserving: concatenating the groups gives the
    splits back.
    """
    if groups <= 0:
        raise ValueError(f"groups must be positive, got {groups}")
    if not splits:
        return []
    groups = min(groups, len(splits))
    total = sum(max(s.size, 1) for s in splits)
    out: list[list[Split]] = [[]]
    done = 0
    for i, split in enumerate(splits):
        left_groups = groups - len(out)
        left_splits = len(splits) - i
        boundary = total * len(out) / groups
        # Close the group at its share of the bytes, but never leave fewer
        # splits than groups still to fill.
        if out[-1] and left_groups > 0 and (done >= boundary or left_splits <= left_groups):
            out.append([])
        out[-1].append(split)
        done += max(split.size, 1)
    return out


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*((?:[kmgtp]i?)?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string like ``"64 MiB"``, ``"128MB"``, ``"1g"``."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"a size must be positive, got {value}")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use bytes or a string like '64 MiB')")
    number, unit = match.groups()
    unit = (unit or "").lower()
    binary = "i" in unit
    letter = unit[:1] if unit[:1] != "b" else ""
    scale = 1024 ** "kmgtp".index(letter) * 1024 if binary and letter else _UNITS[letter]
    size = int(float(number) * scale)
    if size <= 0:
        raise ValueError(f"a size must be positive, got {value!r}")
    return size


def check_same_schema(headers: Sequence[tuple[AvroFile, str]]) -> str:
    """The writer schema shared by every file, or a SchemaError naming two that differ."""
    import json

    first_file, first = headers[0]
    for file, schema in headers[1:]:
        if schema != first and json.loads(schema) != json.loads(first):
            raise SchemaError(
                f"files have different writer schemas: {first_file.path!r} and {file.path!r} "
                f"first differ at {_first_difference(json.loads(first), json.loads(schema))}"
            )
    return first


def _first_difference(a: Any, b: Any, where: str = "$") -> str:
    if type(a) is not type(b):
        return f"{where}: {json_short(a)} vs {json_short(b)}"
    if isinstance(a, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{where}.{key}: present in only one"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{where}.{key}")
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
        return f"{where}: lengths {len(a)} vs {len(b)}"
    return f"{where}: {json_short(a)} vs {json_short(b)}"


def json_short(value: Any, limit: int = 60) -> str:
    import json

    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
