"""Ray Data: ``jetliner_dist.ray.read_avro`` against ``ray.data.read_avro`` in one run.

    python -m benchmarks.ray_bench                        # simple + complex, 1M rows
    python -m benchmarks.ray_bench --scenarios simple --repeat 3
    python -m benchmarks.ray_bench --expansion            # re-measure CODEC_EXPANSION

Both readers run on one local Ray instance (``--num-cpus``, default all cores):
``read_avro(path).materialize()`` once as a warm-up (worker start-up, numba's
cache, imports) and a check of the row count, then ``--repeat`` timed runs.
Ray's own reader decodes each file row by row with fastavro in one task; the
target is jetliner_dist ≥ 5× faster. Kept out of CI: it takes minutes.

``--expansion`` writes 100,000 rows of every benchmark layout with every codec
into the data directory and prints Arrow bytes per file byte: the figures
behind ``jetliner_dist.ray.CODEC_EXPANSION``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.cli import parse_counts, scenario_parser
from benchmarks.datasets import DATASETS, SCENARIOS, ensure_file, records
from benchmarks.run import progress
from benchmarks.timing import Timing, time_calls

TARGET = 5.0
CODECS = ("null", "deflate", "snappy", "zstandard", "bzip2", "xz")
EXPANSION_ROWS = 100_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = scenario_parser("python -m benchmarks.ray_bench", __doc__, repeat=3,
                             repeat_help="timed runs per reader and file")  # fmt: skip
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(),
                        help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--expansion", action="store_true",
                        help="measure Arrow bytes per Avro file byte for every codec instead")
    return parse_counts(parser, argv)


def read_jetliner_dist(path: str):
    import jetliner_dist.ray

    return jetliner_dist.ray.read_avro(path).materialize()


def read_ray(path: str):
    import ray.data

    return ray.data.read_avro(path).materialize()


READERS = {"jetliner_dist.ray": read_jetliner_dist, "ray.data": read_ray}


def run(args: argparse.Namespace) -> int:
    import ray
    import ray.data

    paths = {name: ensure_file(SCENARIOS[name].dataset, args.rows, args.data_dir)
             for name in args.scenarios}  # fmt: skip
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)  # fmt: skip
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    results: dict[tuple[str, str], Timing] = {}
    try:
        for name, path in paths.items():
            for reader, read in READERS.items():
                progress(f"{name}: {reader} (warm-up)")
                rows = read(str(path)).count()
                if rows != args.rows:
                    raise RuntimeError(f"{reader} read {rows} rows of {path}, expected {args.rows}")
                times = time_calls(lambda: read(str(path)), args.repeat)
                results[(name, reader)] = Timing(times)
                progress(f"{name}: {reader} median {Timing(times).median:.3f} s")
    finally:
        ray.shutdown()
    print(report(args, results))
    ok = all(_ratio(results, name) >= TARGET for name in paths)
    return 0 if ok else 1


def _ratio(results: dict, name: str) -> float:
    return results[(name, "ray.data")].median / results[(name, "jetliner_dist.ray")].median


def report(args: argparse.Namespace, results: dict) -> str:
    lines = [
        f"Ray Data, {args.rows:,} rows, snappy, local Ray with {args.num_cpus} CPUs; "
        f"median (min) of {args.repeat} runs of read_avro(path).materialize()",
        "",
        "| file | jetliner_dist.ray | ray.data.read_avro | speed-up | target ≥ 5× |",
        "|---|---|---|---|---|",
    ]
    for name in args.scenarios:
        jd, rd = results[(name, "jetliner_dist.ray")], results[(name, "ray.data")]
        ratio = _ratio(results, name)
        lines.append(
            f"| {name} | {jd.median:.3f} s ({jd.min:.3f}) | {rd.median:.3f} s ({rd.min:.3f}) "
            f"| {ratio:.1f}× | {'met' if ratio >= TARGET else 'MISSED'} |"
        )
    return "\n".join(lines)


def measure_expansion(data_dir: Path) -> int:
    """Print Arrow bytes per file byte for each layout and codec, and the geometric means."""
    import fastavro

    import jetliner_dist as jd

    out = Path(data_dir) / "expansion"
    out.mkdir(parents=True, exist_ok=True)
    factors: dict[str, list[float]] = {codec: [] for codec in CODECS}
    print("| layout | codec | file bytes | Arrow bytes | expansion |\n|---|---|---|---|---|")
    for name, dataset in DATASETS.items():
        rows = None
        for codec in CODECS:
            path = out / f"{name}_{EXPANSION_ROWS}_{codec}.avro"
            if not path.exists():
                rows = rows if rows is not None else list(records(dataset, EXPANSION_ROWS))
                with open(path, "wb") as f:
                    fastavro.writer(f, dataset.schema, rows, codec=codec)
            size = path.stat().st_size
            arrow = jd.read_table(str(path)).nbytes
            factors[codec].append(arrow / size)
            print(f"| {name} | {codec} | {size:,} | {arrow:,} | {arrow / size:.2f} |")
    print("\ngeometric mean per codec (CODEC_EXPANSION):")
    for codec, values in factors.items():
        mean = math.exp(sum(map(math.log, values)) / len(values))
        print(f"  {codec!r}: {mean:.1f},  # {min(values):.2f} - {max(values):.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.expansion:
        return measure_expansion(args.data_dir)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
