"""Dask: ``jetliner_dist.dask`` against the local engine and ``dask.bag.read_avro``.

    python -m benchmarks.dask_bench                          # everything, 1M-row files
    python -m benchmarks.dask_bench --scenarios simple --repeat 3 --files 500

Three measurements, each a median of ``--repeat`` timed runs after a warm-up;
the two sides of each comparison alternate, so machine noise hits both:

1. read: ``jetliner_dist.dask.read_avro(path).compute(scheduler="threads")``
   (pandas partitions, concatenated) against the local engine,
   ``jetliner_dist.read_table(path)``, on the 1M-row benchmark files
   (target: at most 1.3x the local engine's time);
2. planning ``--files`` small files: building the dask graph (listing, headers,
   splits) against ``dask.bag.read_avro(glob)``, which reads every header too
   (target: at least 5x faster);
3. a groupby-aggregate on a ``distributed.LocalCluster`` of two worker
   processes, against the same query over
   ``dask.bag.read_avro(path).to_dataframe()`` (fastavro, row by row).

Kept out of CI: it takes minutes. Data files are generated once into
``benchmarks/data`` (as ``python -m benchmarks.run`` does) and reused.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.cli import parse_counts, scenario_parser
from benchmarks.datasets import SCENARIOS, ensure_file, small_files
from benchmarks.run import progress
from benchmarks.timing import Timing, time_calls

READ_TARGET = 1.3
PLANNING_TARGET = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line options."""
    parser = scenario_parser("python -m benchmarks.dask_bench", __doc__, repeat=5,
                             repeat_help="timed runs per measurement")  # fmt: skip
    parser.add_argument("--files", type=int, default=2_000,
                        help="small files for the planning measurement (default: 2000)")
    return parse_counts(parser, argv, ("rows", "files", "repeat"))


def timed_pair(first, second, repeat: int, check=None) -> tuple[Timing, Timing]:
    """Warm both up, then alternate their timed calls, so a noisy machine
    slows both alike and the ratio stays meaningful."""
    for call in (first, second):
        result = call()
        if check is not None:
            check(result)
        del result
    times = [time_calls(call, 1)[0] for _ in range(repeat) for call in (first, second)]
    return Timing(tuple(times[0::2])), Timing(tuple(times[1::2]))


def rows_check(rows: int):
    def check(result) -> None:
        if len(result) != rows:
            raise SystemExit(f"expected {rows} rows, got {len(result)}")

    return check


def measure_reads(args: argparse.Namespace) -> list[tuple[str, Timing, Timing]]:
    """Threaded dask read vs the local engine, per scenario file."""
    import jetliner_dist as jd
    import jetliner_dist.dask as jdd

    out = []
    for name in args.scenarios:
        path = str(ensure_file(SCENARIOS[name].dataset, args.rows, args.data_dir))
        local, dask = timed_pair(
            lambda: jd.read_table(path),
            lambda: jdd.read_avro(path).compute(scheduler="threads"),
            args.repeat, rows_check(args.rows),
        )  # fmt: skip
        progress(f"[read {name}] local {local.median:.3f} s  dask threads {dask.median:.3f} s")
        out.append((name, local, dask))
    return out


def measure_planning(args: argparse.Namespace) -> tuple[Timing, Timing, int, int]:
    """Graph construction over many small files, both readers on this machine."""
    import dask.bag as db

    import jetliner_dist.dask as jdd

    glob = str(small_files(args.files, args.data_dir) / "*.avro")
    ours, bag = timed_pair(lambda: jdd.read_avro(glob), lambda: db.read_avro(glob), args.repeat)
    partitions = (jdd.read_avro(glob).npartitions, db.read_avro(glob).npartitions)
    progress(f"[planning {args.files} files] jetliner_dist {ours.median:.3f} s  "
             f"dask.bag {bag.median:.3f} s")  # fmt: skip
    return ours, bag, *partitions


def measure_cluster(args: argparse.Namespace) -> tuple[Timing, Timing, int]:
    """groupby-aggregate on a LocalCluster: jetliner_dist.dask vs dask.bag + fastavro."""
    import dask.bag as db
    import pandas as pd
    from distributed import Client, LocalCluster

    import jetliner_dist.dask as jdd

    path = ensure_file(SCENARIOS["simple"].dataset, args.rows, args.data_dir)
    # The same partitions for both: a few per worker thread.
    blocksize = max(1 << 20, math.ceil(path.stat().st_size / 8))
    aggregations = {"id": "count", "int_val": "sum", "double_val": "mean"}
    meta = pd.DataFrame({
        "id": pd.Series(dtype="int64"), "name": pd.Series(dtype="object"),
        "int_val": pd.Series(dtype="int64"), "float_val": pd.Series(dtype="float64"),
        "double_val": pd.Series(dtype="float64"), "bool_val": pd.Series(dtype="bool"),
    })  # fmt: skip

    def ours():
        df = jdd.read_avro(str(path), blocksize=blocksize)
        return df.groupby("bool_val").agg(aggregations).compute()

    def bag():
        df = db.read_avro(str(path), blocksize=blocksize).to_dataframe(meta=meta)
        return df.groupby("bool_val").agg(aggregations).compute()

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster):  # fmt: skip
        def same(result) -> None:
            expected = bag()
            got = result.reset_index().sort_values("bool_val")
            want = expected.reset_index().sort_values("bool_val")
            if got["id"].tolist() != want["id"].tolist() or got["int_val"].tolist() != want["int_val"].tolist():
                raise SystemExit(f"aggregates differ:\n{result}\n{expected}")

        same(ours())
        ours_t, bag_t = timed_pair(ours, bag, args.repeat)
        partitions = jdd.read_avro(str(path), blocksize=blocksize).npartitions
    progress(f"[cluster groupby] jetliner_dist {ours_t.median:.3f} s  dask.bag {bag_t.median:.3f} s")
    return ours_t, bag_t, partitions


def report(args, reads, planning, cluster) -> str:
    """The results as a Markdown report with ratios and target checks."""
    lines = [
        f"# jetliner_dist.dask benchmark ({args.rows:,} rows, median of {args.repeat})",
        "",
        "## Read: `jetliner_dist.dask.read_avro(path).compute(scheduler=\"threads\")` vs local engine",
        "",
        "| scenario | local `jd.read_table` | dask threads | dask / local | target ≤ 1.3× |",
        "|---|---|---|---|---|",
    ]
    for name, local, dask in reads:
        ratio = dask.median / local.median
        ok = "met" if ratio <= READ_TARGET else "missed"
        lines.append(f"| {name} | {local.median:.3f} s | {dask.median:.3f} s | {ratio:.2f}× | {ok} |")
    ours, bag, our_parts, bag_parts = planning
    speedup = bag.median / ours.median
    lines += [
        "",
        f"## Planning {args.files:,} small files (listing + headers + graph)",
        "",
        "| reader | time | partitions | speed-up | target ≥ 5× |",
        "|---|---|---|---|---|",
        f"| jetliner_dist.dask.read_avro | {ours.median:.3f} s | {our_parts} | {speedup:.1f}× | "
        f"{'met' if speedup >= PLANNING_TARGET else 'missed'} |",
        f"| dask.bag.read_avro | {bag.median:.3f} s | {bag_parts} | 1.0× | |",
    ]
    ours, bag, partitions = cluster
    lines += [
        "",
        f"## LocalCluster (2 worker processes): groupby-aggregate over the simple file ({partitions} partitions)",
        "",
        "| reader | time | speed-up |",
        "|---|---|---|",
        f"| jetliner_dist.dask.read_avro | {ours.median:.3f} s | {bag.median / ours.median:.1f}× |",
        f"| dask.bag.read_avro(...).to_dataframe() | {bag.median:.3f} s | 1.0× |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print the report."""
    args = parse_args(argv)
    reads = measure_reads(args)
    planning = measure_planning(args)
    cluster = measure_cluster(args)
    print(report(args, reads, planning, cluster))
    return 0


if __name__ == "__main__":
    sys.exit(main())
