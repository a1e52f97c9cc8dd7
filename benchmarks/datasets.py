"""The benchmark data: jetliner's comparison scenarios, written with fastavro.

Every file is snappy-compressed, generated from a fixed seed with a fixed sync
marker (so the bytes are identical on every machine), and written once: a file
that already exists is reused. The row count and a data version are part of the
file name, so a quick ``--rows 10000`` run never clobbers the 1M-row files and a
change to a generator here invalidates old files.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 20240601
CODEC = "snappy"
# Bump when a schema or generator below changes, so stale files are not reused.
DATA_VERSION = 1

Record = dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    """One Avro file layout: a schema and a deterministic record generator."""

    name: str
    schema: dict
    make_record: Callable[[random.Random, int], Record]

    @property
    def field_names(self) -> list[str]:
        """Top-level column names, in schema order."""
        return [field["name"] for field in self.schema["fields"]]


# --- simple: 1 string + 5 numeric/boolean columns ---------------------------

SIMPLE_SCHEMA = {
    "type": "record",
    "name": "SimpleRecord",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "int_val", "type": "int"},
        {"name": "float_val", "type": "float"},
        {"name": "double_val", "type": "double"},
        {"name": "bool_val", "type": "boolean"},
    ],
}


def simple_record(rng: random.Random, i: int) -> Record:
    """Row ``i`` of the simple layout."""
    return {
        "id": i,
        "name": f"user_{i:08d}",
        "int_val": rng.randint(-1_000_000, 1_000_000),
        "float_val": rng.random() * 1000,
        "double_val": rng.random() * 1_000_000,
        "bool_val": i % 2 == 0,
    }


# --- wide: 100 columns cycling through the primitive types -------------------

WIDE_TYPE_CYCLE = ("long", "string", "double", "int", "boolean", "float", "bytes")
WIDE_COLUMNS = [(f"col_{j:03d}", WIDE_TYPE_CYCLE[j % len(WIDE_TYPE_CYCLE)]) for j in range(100)]
WIDE_SCHEMA = {
    "type": "record",
    "name": "WideRecord",
    "fields": [{"name": name, "type": avro_type} for name, avro_type in WIDE_COLUMNS],
}


def wide_record(rng: random.Random, i: int) -> Record:
    """Row ``i`` of the 100-column layout."""
    record: Record = {}
    for j, (name, avro_type) in enumerate(WIDE_COLUMNS):
        if avro_type == "long":
            record[name] = i + j
        elif avro_type == "string":
            record[name] = f"val_{i}_{j}"
        elif avro_type == "double":
            record[name] = rng.random() * 1000
        elif avro_type == "int":
            record[name] = rng.randint(-1000, 1000)
        elif avro_type == "boolean":
            record[name] = i % 2 == 0
        elif avro_type == "float":
            record[name] = rng.random() * 100
        else:  # bytes
            record[name] = f"bytes_{i}_{j}".encode()
    return record


# --- complex: nested records, arrays of records and strings, a map, nullables --

COMPLEX_SCHEMA = {
    "type": "record",
    "name": "ComplexRecord",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {
            "name": "address",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [
                    {"name": "street", "type": "string"},
                    {"name": "city", "type": "string"},
                    {"name": "zip", "type": "string"},
                    {
                        "name": "coordinates",
                        "type": [
                            "null",
                            {
                                "type": "record",
                                "name": "Coordinates",
                                "fields": [
                                    {"name": "latitude", "type": "double"},
                                    {"name": "longitude", "type": "double"},
                                ],
                            },
                        ],
                    },
                ],
            },
        },
        {
            "name": "contacts",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Contact",
                    "fields": [
                        {"name": "type", "type": "string"},
                        {"name": "value", "type": "string"},
                        {"name": "primary", "type": "boolean"},
                    ],
                },
            },
        },
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "metadata", "type": {"type": "map", "values": "string"}},
        {"name": "score", "type": ["null", "double"]},
    ],
}

CITIES = ("New York", "Los Angeles", "Chicago", "Houston", "Phoenix")
CONTACT_TYPES = ("email", "phone", "mobile", "work", "home")


def complex_record(rng: random.Random, i: int) -> Record:
    """Row ``i`` of the nested layout; list and map lengths vary, including empty."""
    coordinates = None
    if i % 2 == 0:  # half the nested records are null
        coordinates = {
            "latitude": 40.7128 + rng.uniform(-10, 10),
            "longitude": -74.0060 + rng.uniform(-10, 10),
        }
    contacts = [
        {
            "type": CONTACT_TYPES[j % len(CONTACT_TYPES)],
            "value": f"contact_{i}_{j}@example.com" if j % 2 == 0 else f"+1-555-{i:04d}{j}",
            "primary": j == 0,
        }
        for j in range(i % 4)
    ]
    return {
        "id": i,
        "name": f"person_{i:08d}",
        "address": {
            "street": f"{i} Main St",
            "city": CITIES[i % len(CITIES)],
            "zip": f"{10000 + (i % 90000):05d}",
            "coordinates": coordinates,
        },
        "contacts": contacts,
        "tags": [f"tag_{j}" for j in range(i % 6)],
        "metadata": {f"key_{j}": f"value_{i}_{j}" for j in range(i % 4)},
        "score": rng.random() * 100 if i % 3 != 0 else None,
    }


DATASETS = {
    "simple": Dataset("simple", SIMPLE_SCHEMA, simple_record),
    "wide": Dataset("wide", WIDE_SCHEMA, wide_record),
    "complex": Dataset("complex", COMPLEX_SCHEMA, complex_record),
}


def records(dataset: Dataset, rows: int) -> Iterator[Record]:
    """The first ``rows`` records of ``dataset``; the same on every call."""
    rng = random.Random(f"{SEED}-{dataset.name}")
    for i in range(rows):
        yield dataset.make_record(rng, i)


def file_path(dataset: Dataset, rows: int, data_dir: Path = DATA_DIR) -> Path:
    """Where the file of ``rows`` rows of ``dataset`` lives."""
    return Path(data_dir) / f"{dataset.name}_{rows}_v{DATA_VERSION}.avro"


def ensure_file(dataset: Dataset, rows: int, data_dir: Path = DATA_DIR) -> Path:
    """Return the data file, writing it first if it does not exist yet."""
    import fastavro  # only needed when a file has to be written

    path = file_path(dataset, rows, data_dir)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed sync marker (fastavro draws a random one) keeps the bytes reproducible.
    sync_marker = hashlib.sha256(f"{SEED}-{dataset.name}-{rows}".encode()).digest()[:16]
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(partial, "wb") as out:
            fastavro.writer(
                out, dataset.schema, records(dataset, rows), codec=CODEC, sync_marker=sync_marker
            )
        # Publish atomically: an interrupted run must not leave a short file behind
        # that later runs would take for a complete one.
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class Scenario:
    """What one measurement reads: a dataset and, optionally, a column subset."""

    name: str
    dataset: Dataset
    columns: tuple[str, ...] | None
    description: str

    @property
    def column_list(self) -> list[str] | None:
        """``columns`` as the list the readers take."""
        return None if self.columns is None else list(self.columns)

    @property
    def width(self) -> int:
        """Number of columns a correct read returns."""
        return len(self.columns) if self.columns is not None else len(self.dataset.field_names)


# jetliner's own comparison scenarios (its benches/python/compare.py).
SCENARIOS = {
    "simple": Scenario(
        "simple", DATASETS["simple"], None, "6 columns: long, string, int, float, double, boolean"
    ),
    "wide": Scenario("wide", DATASETS["wide"], None, "100 columns of mixed primitive types"),
    "complex": Scenario(
        "complex",
        DATASETS["complex"],
        None,
        "nested records, nullable nested record, arrays of records and strings, map, nullable double",
    ),
    "projection": Scenario(
        "projection",
        DATASETS["wide"],
        ("col_000", "col_020", "col_040", "col_060", "col_080"),
        "5 of the 100 wide columns",
    ),
}

# The small-file latency check: the simple layout, 100 rows.
TINY = Scenario("tiny", DATASETS["simple"], None, "100 rows, simple layout")
TINY_ROWS = 100


SMALL_FILE_ROWS = 100


def small_files(files: int, data_dir: Path = DATA_DIR) -> Path:
    """A folder of ``files`` copies of the 100-row simple file, written once:
    many small files, as streaming sinks leave them."""
    one = ensure_file(DATASETS["simple"], SMALL_FILE_ROWS, data_dir)
    folder = data_dir / f"small_{files}"
    if len(list(folder.glob("*.avro"))) != files:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(files):
            shutil.copyfile(one, folder / f"part-{i:05d}.avro")
    return folder
