"""A Ray Data job on jetliner_dist: sample Avro in, an aggregate and Parquet out.

    python examples/ray_job.py                        # 200,000 rows, a local Ray on all cores
    python examples/ray_job.py --rows 20000 --out /tmp/job
    python examples/ray_job.py --address auto         # join a running Ray cluster

It writes a deterministic sample dataset with fastavro (four snappy files of
``events``) unless it already exists, then reads it with
``jetliner_dist.ray.read_avro``: the files are split at sync markers into read
tasks, ``select_columns`` and ``filter(expr=...)`` are pushed into the reader,
and every block is an Arrow table. It prints the schema, counts, a per-kind
aggregate and timings, and writes the dataset as Parquet. Needs
``pip install jetliner-dist[ray] fastavro``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import jetliner_dist as jd

FILES = 4
SEED = 11
KINDS = ["view", "click", "purchase", "refund"]
SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "event_id", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": KINDS}},
        {"name": "amount", "type": "double"},
        {"name": "quantity", "type": "int"},
        {"name": "coupon", "type": ["null", "string"]},
    ],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the sample dataset (default: 200000)")
    parser.add_argument("--out", type=Path, default=Path("out/ray"), help="output directory (default: out/ray)")
    parser.add_argument("--address", help="address of a Ray cluster to join (default: start a local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    args = parser.parse_args(argv)
    if args.rows < FILES:
        parser.error(f"--rows must be at least {FILES}")
    return args


def write_sample(folder: Path, rows: int) -> Path:
    """``rows`` events in FILES files under ``folder/avro-<rows>``; reused if present."""
    import fastavro

    target = folder / f"avro-{rows}"
    if target.is_dir() and len(list(target.glob("*.avro"))) == FILES:
        return target
    target.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    per_file = -(-rows // FILES)
    for k in range(FILES):
        first, last = k * per_file, min(rows, (k + 1) * per_file)
        events = (
            {
                "event_id": i,
                "user": f"user{rng.randrange(5_000):04d}",
                "kind": rng.choices(KINDS, weights=[70, 20, 8, 2])[0],
                "amount": round(rng.uniform(0, 200), 2),
                "quantity": rng.randrange(1, 10),
                "coupon": None if rng.random() < 0.9 else f"C{rng.randrange(100)}",
            }
            for i in range(first, last)
        )
        partial = target / f"part-{k}.avro.tmp"
        with open(partial, "wb") as out:
            fastavro.writer(out, SCHEMA, events, codec="snappy", sync_interval=64_000)
        os.replace(partial, target / f"part-{k}.avro")
    return target


def per_kind(batch: pa.Table) -> pa.Table:
    """Partial aggregate of one batch (runs on the workers, on Arrow)."""
    return batch.group_by("kind").aggregate([("amount", "sum"), ("amount", "count")])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import ray
    import ray.data
    from ray.data.expressions import col

    import jetliner_dist.ray

    folder = write_sample(args.out, args.rows)
    if args.address:
        ray.init(address=args.address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)  # fmt: skip
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        started = time.perf_counter()
        ds = jetliner_dist.ray.read_avro(str(folder))
        rows = ds.count()
        read_time = time.perf_counter() - started
        print(f"dataset: {folder} ({FILES} files, {sum(p.stat().st_size for p in folder.glob('*.avro')):,} bytes)")
        print(f"rows: {rows:,} (read and counted in {read_time:.2f} s, worker start-up included)")
        print(f"schema:\n{ds.schema()}")
        if rows != jd.count_rows(str(folder)):
            print("row count differs from the Avro block headers", file=sys.stderr)
            return 1

        # Only user and amount are decoded; the filter runs on each batch in the reader.
        started = time.perf_counter()
        big = ds.filter(expr=(col("amount") > 150) & (col("kind") == "purchase")).select_columns(["user", "amount"])
        print(f"purchases over 150: {big.count():,} ({time.perf_counter() - started:.2f} s)")

        started = time.perf_counter()
        partial = ds.select_columns(["kind", "amount"]).map_batches(per_kind, batch_format="pyarrow")
        totals = (
            pa.concat_tables(ray.get(partial.to_arrow_refs()))
            .group_by("kind")
            .aggregate([("amount_sum", "sum"), ("amount_count", "sum")])
            .sort_by([("amount_count_sum", "descending")])
        )
        print(f"per kind ({time.perf_counter() - started:.2f} s):")
        for kind, total, count in zip(*totals.to_pydict().values()):
            print(f"  {kind:<9} {count:>9,} events  amount {total:>14,.2f}")
        assert pc.sum(totals["amount_count_sum"]).as_py() == rows

        started = time.perf_counter()
        parquet = args.out / "parquet"
        shutil.rmtree(parquet, ignore_errors=True)  # Ray appends to an existing directory
        ds.write_parquet(str(parquet))
        print(f"wrote {parquet} ({len(list(parquet.glob('*.parquet')))} files, "
              f"{time.perf_counter() - started:.2f} s)")  # fmt: skip
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
