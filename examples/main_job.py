"""The main job on an embedded default: sample Avro in, summaries and Parquet out.

    python examples/main_job.py                  # 200,000 rows per dataset into out/
    python examples/main_job.py --rows 1000000 --out /tmp/job

It writes two deterministic sample datasets with fastavro (a flat ``events``
table and a nested ``customers`` table, snappy-compressed) unless they already
exist, reads them with jetliner_dist, prints rows, columns, schema, a small
Polars aggregate and timings, and writes each table as Parquet.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl

import jetliner_dist as jd

SEED = 7
Record = dict[str, Any]

EVENTS_SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "event_id", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "kind", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "quantity", "type": "int"},
        {"name": "discount", "type": "float"},
        {"name": "is_mobile", "type": "boolean"},
    ],
}

CUSTOMERS_SCHEMA = {
    "type": "record",
    "name": "Customer",
    "fields": [
        {"name": "customer_id", "type": "long"},
        {"name": "name", "type": "string"},
        {
            "name": "address",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [
                    {"name": "city", "type": "string"},
                    {"name": "zip", "type": "string"},
                    {
                        "name": "location",
                        "type": [
                            "null",
                            {
                                "type": "record",
                                "name": "Location",
                                "fields": [
                                    {"name": "lat", "type": "double"},
                                    {"name": "lon", "type": "double"},
                                ],
                            },
                        ],
                    },
                ],
            },
        },
        {
            "name": "orders",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Order",
                    "fields": [
                        {"name": "order_id", "type": "long"},
                        {"name": "total", "type": "double"},
                    ],
                },
            },
        },
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attributes", "type": {"type": "map", "values": "string"}},
        {"name": "score", "type": ["null", "double"]},
    ],
}

KINDS = ("view", "click", "cart", "purchase", "refund")
CITIES = ("Lisbon", "Osaka", "Denver", "Nairobi", "Tallinn", "Recife")


def event_record(rng: random.Random, i: int) -> Record:
    """Row ``i`` of the flat events table."""
    return {
        "event_id": i,
        "user": f"user_{rng.randrange(50_000):05d}",
        "kind": rng.choice(KINDS),
        "amount": round(rng.uniform(0, 500), 2),
        "quantity": rng.randint(1, 10),
        "discount": rng.random() * 0.3,
        "is_mobile": rng.random() < 0.6,
    }


def customer_record(rng: random.Random, i: int) -> Record:
    """Row ``i`` of the nested customers table; lists and maps vary in length."""
    location = None
    if rng.random() < 0.7:  # some customers have no known location
        location = {"lat": rng.uniform(-60, 60), "lon": rng.uniform(-180, 180)}
    return {
        "customer_id": i,
        "name": f"customer_{i:07d}",
        "address": {"city": rng.choice(CITIES), "zip": f"{rng.randrange(100_000):05d}",
                    "location": location},
        "orders": [{"order_id": i * 10 + j, "total": round(rng.uniform(5, 300), 2)}
                   for j in range(rng.randrange(4))],
        "tags": [f"tag_{rng.randrange(20)}" for _ in range(rng.randrange(3))],
        "attributes": {f"attr_{j}": f"value_{rng.randrange(100)}" for j in range(rng.randrange(3))},
        "score": rng.uniform(0, 100) if rng.random() < 0.8 else None,
    }


@dataclass(frozen=True)
class Dataset:
    """A sample dataset: a schema, a record generator and the job's aggregate."""

    name: str
    schema: dict
    make_record: Callable[[random.Random, int], Record]
    summarize: Callable[[pl.DataFrame], pl.DataFrame]
    projection: tuple[str, ...]


def summarize_events(events: pl.DataFrame) -> pl.DataFrame:
    """Events, amount and quantity per kind."""
    return (
        events.group_by("kind")
        .agg(
            pl.len().alias("events"),
            pl.col("amount").sum().alias("amount"),
            pl.col("quantity").mean().alias("mean_quantity"),
            pl.col("is_mobile").mean().alias("mobile_share"),
        )
        .sort("kind")
    )


def summarize_customers(customers: pl.DataFrame) -> pl.DataFrame:
    """Customers, orders and mean score per city (reaches into the nested columns)."""
    return (
        customers.with_columns(
            pl.col("address").struct.field("city").alias("city"),
            pl.col("orders").list.len().alias("order_count"),
        )
        .group_by("city")
        .agg(
            pl.len().alias("customers"),
            pl.col("order_count").sum().alias("orders"),
            pl.col("score").mean().alias("mean_score"),
        )
        .sort("city")
    )


DATASETS = (
    Dataset("events", EVENTS_SCHEMA, event_record, summarize_events, ("kind", "amount")),
    Dataset("customers", CUSTOMERS_SCHEMA, customer_record, summarize_customers,
            ("customer_id", "score")),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per dataset (default: 200000)")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="output directory for sample data and Parquet (default: out)")
    parser.add_argument("--codec", choices=("null", "deflate", "snappy"), default="snappy",
                        help="Avro codec of the sample files (default: snappy)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def records(dataset: Dataset, rows: int) -> Iterator[Record]:
    """The first ``rows`` records of ``dataset``, the same on every run."""
    rng = random.Random(f"{SEED}-{dataset.name}")
    for i in range(rows):
        yield dataset.make_record(rng, i)


def ensure_sample(dataset: Dataset, rows: int, codec: str, data_dir: Path) -> Path:
    """Write the dataset's Avro file unless it exists already; return its path."""
    try:
        import fastavro
    except ImportError:
        sys.exit("the sample data is written with fastavro: python -m pip install fastavro")
    path = data_dir / f"{dataset.name}_{rows}_{codec}.avro"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    # A fixed sync marker keeps the bytes identical on every run and machine.
    sync_marker = hashlib.sha256(f"{SEED}-{dataset.name}".encode()).digest()[:16]
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(partial, "wb") as out:
            fastavro.writer(out, dataset.schema, records(dataset, rows), codec=codec,
                            sync_marker=sync_marker)
        os.replace(partial, path)  # never leave a half-written file under the final name
    finally:
        partial.unlink(missing_ok=True)
    return path


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()`` and its wall time in seconds."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def run_dataset(dataset: Dataset, args: argparse.Namespace) -> None:
    """Generate (if needed), read, summarize and convert one dataset."""
    data_dir = args.out / "data"
    path, generate_seconds = timed(lambda: ensure_sample(dataset, args.rows, args.codec, data_dir))
    size_mb = path.stat().st_size / 1e6
    _, first_seconds = timed(lambda: jd.read_avro(str(path), n_rows=1))
    frame, read_seconds = timed(lambda: jd.read_avro(str(path)))
    columns = list(dataset.projection)
    projected, projected_seconds = timed(lambda: jd.read_avro(str(path), columns=columns))

    print(f"== {dataset.name}: {path} ({size_mb:.1f} MB, {args.codec}, "
          f"prepared in {generate_seconds:.2f} s)")
    print(f"rows {frame.height:,}  columns {frame.width}")
    # The first read in a process also loads the compiled decoder from its disk cache.
    print(f"first row: {first_seconds:.3f} s")
    print(f"read all columns: {read_seconds:.3f} s ({frame.height / read_seconds / 1e6:.1f} M rows/s, "
          f"{size_mb / read_seconds:.0f} MB/s)")
    print(f"read {', '.join(projected.columns)}: {projected_seconds:.3f} s")
    print("schema:")
    for name, dtype in frame.schema.items():
        print(f"  {name}: {dtype}")
    with pl.Config(tbl_rows=20, tbl_hide_dataframe_shape=True, float_precision=2):
        print(dataset.summarize(frame))

    parquet = args.out / "parquet" / f"{dataset.name}.parquet"
    parquet.parent.mkdir(parents=True, exist_ok=True)
    _, write_seconds = timed(lambda: frame.write_parquet(parquet))
    print(f"wrote {parquet} ({parquet.stat().st_size / 1e6:.1f} MB) in {write_seconds:.3f} s\n")


def main(argv: list[str] | None = None) -> int:
    """Run the job over every sample dataset."""
    args = parse_args(argv)
    print(f"jetliner_dist main job: {args.rows:,} rows per dataset, output in {args.out}/\n")
    start = time.perf_counter()
    for dataset in DATASETS:
        run_dataset(dataset, args)
    print(f"done in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
