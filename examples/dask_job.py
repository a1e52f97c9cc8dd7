"""A Dask job end to end: sample Avro in, a cluster reads and aggregates, Parquet out.

    python examples/dask_job.py                       # 400,000 event rows into out/
    python examples/dask_job.py --rows 2000000 --scheduler tcp://10.0.0.5:8786

It writes the sample ``events`` file of ``main_job.py`` (snappy Avro, made with
fastavro, reused when present), starts a local cluster of two worker processes
(or connects to ``--scheduler``), and with ``jetliner_dist.dask``:

- reads the file into a dask DataFrame cut at sync markers (one partition per
  ``--blocksize`` bytes), prints its partitions and dtypes;
- runs a groupby-aggregate on the cluster and checks it against the local
  engine (``jetliner_dist.read_avro``);
- reads two columns with a filter, pushed into the tasks;
- reads Polars partitions (``read_avro_partitions``) and aggregates each on the
  workers;
- writes the DataFrame as Parquet.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import dask
import polars as pl

from main_job import DATASETS, ensure_sample

import jetliner_dist as jd
import jetliner_dist.dask as jdd

EVENTS = next(d for d in DATASETS if d.name == "events")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000,
                        help="event rows (default: 400000)")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="output directory for sample data and Parquet (default: out)")
    parser.add_argument("--blocksize", default="1 MiB",
                        help="bytes per partition, e.g. '64 MiB' (default: 1 MiB, to show splitting)")
    parser.add_argument("--scheduler", default=None,
                        help="address of a running dask scheduler (default: start a local cluster)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def summarize(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows and amount per kind in one Polars partition (runs on a worker)."""
    return frame.group_by("kind").agg(pl.len().alias("events"), pl.col("amount").sum())


def run(args: argparse.Namespace) -> None:
    """Read, aggregate, check, filter and write on the active client's cluster."""
    source = str(ensure_sample(EVENTS, args.rows, "snappy", args.out / "data"))
    start = time.perf_counter()
    df = jdd.read_avro(source, blocksize=args.blocksize)
    print(f"{source}: planned {df.npartitions} partition(s) "
          f"in {time.perf_counter() - start:.3f} s (no data read)")
    print("dtypes:")
    for name, dtype in df.dtypes.items():
        print(f"  {name}: {dtype}")

    start = time.perf_counter()
    summary = (
        df.groupby("kind", observed=True)
        .agg(events=("event_id", "count"), amount=("amount", "sum"), quantity=("quantity", "mean"))
        .compute()
        .sort_index()
    )
    print(f"\ngroupby-aggregate on the cluster: {time.perf_counter() - start:.3f} s")
    print(summary)
    local = jd.read_avro(source).group_by("kind").agg(pl.len(), pl.col("amount").sum()).sort("kind")
    same = (
        [str(k) for k in summary.index] == local["kind"].to_list()
        and summary["events"].tolist() == local["len"].to_list()
        and all(abs(a - b) < 1e-6 * max(1.0, abs(b)) for a, b in zip(summary["amount"], local["amount"]))
    )
    if not same:
        raise SystemExit("the cluster's aggregate differs from the local engine's")
    print("the aggregate matches the local engine")

    start = time.perf_counter()
    big = jdd.read_avro(source, columns=["user", "amount"], filters=[("amount", ">", 450.0)],
                        blocksize=args.blocksize)
    rows = len(big)
    print(f"\nrows with amount > 450 (two columns read, filtered in the tasks): {rows:,} "
          f"in {time.perf_counter() - start:.3f} s")

    start = time.perf_counter()
    parts = jdd.read_avro_partitions(source, kind="polars", columns=["kind", "amount"],
                                     blocksize=args.blocksize)
    summaries = dask.compute(*[dask.delayed(summarize)(p) for p in parts])
    per_kind = pl.concat(summaries).group_by("kind").agg(pl.col("events", "amount").sum()).sort("kind")
    print(f"\nPolars partitions aggregated on the workers: {time.perf_counter() - start:.3f} s")
    print(per_kind)

    parquet = args.out / "parquet-dask"
    start = time.perf_counter()
    df.to_parquet(parquet, write_index=False, overwrite=True)
    print(f"\nwrote {parquet}/ ({len(list(parquet.glob('*.parquet')))} files) "
          f"in {time.perf_counter() - start:.3f} s")


def main(argv: list[str] | None = None) -> int:
    """Run the job on a local cluster or the given scheduler."""
    args = parse_args(argv)
    from distributed import Client, LocalCluster

    print(f"jetliner_dist Dask job: {args.rows:,} event rows, output in {args.out}/\n")
    start = time.perf_counter()
    if args.scheduler:
        with Client(args.scheduler):
            run(args)
    else:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster):  # fmt: skip
            print(f"local cluster: {cluster.dashboard_link}\n")
            run(args)
    print(f"\ndone in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
