"""Time jetliner_dist against jetliner, polars-avro and fastavro in one run.

    python -m benchmarks.run                         # everything, 1M rows
    python -m benchmarks.run --rows 10000 --repeat 1 # a quick smoke run
    python -m benchmarks.run --scenarios simple tiny --markdown out.md

Every reader is timed in this process: one warm-up call (which also checks the
result's shape), then ``--repeat`` timed calls; median and min are reported.
fastavro builds a Python dict per row, so it reads at most ``--fastavro-rows``
rows and its times are scaled linearly to the file (marked '≈'). A reader that
fails a scenario gets "error: <reason>" in the table; the run goes on.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.datasets import DATA_DIR, SCENARIOS, TINY, TINY_ROWS, Scenario, ensure_file
from benchmarks.readers import Reader, make_readers
from benchmarks.report import Results, render_markdown, target_checks
from benchmarks.timing import Failure, Outcome, Timing, short_reason, time_calls, time_fresh_process

REPO_ROOT = Path(__file__).resolve().parent.parent
CHOICES = [*SCENARIOS, "tiny", "fresh"]
DISTRIBUTIONS = ("jetliner-dist", "jetliner", "polars-avro", "fastavro", "polars", "pyarrow", "numba")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenarios", nargs="+", choices=CHOICES, default=CHOICES, metavar="NAME",
                        help=f"what to measure (default: all of {', '.join(CHOICES)})")
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows per scenario file (default: 1000000)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per scenario and reader, after one warm-up (default: 5)")
    parser.add_argument("--tiny-repeat", type=int, default=200,
                        help="timed runs on the 100-row file (default: 200)")
    parser.add_argument("--fresh-repeat", type=int, default=3,
                        help="timed fresh-process runs, after one untimed run (default: 3)")
    parser.add_argument("--fastavro-rows", type=int, default=100_000,
                        help="rows fastavro reads; its times are scaled to the file (default: 100000)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help=f"where data files are generated and reused (default: {DATA_DIR})")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args(argv)
    for name in ("rows", "repeat", "tiny_repeat", "fresh_repeat", "fastavro_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def progress(message: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


def measure(reader: Reader, path: Path, scenario: Scenario, rows: int, repeat: int) -> Outcome:
    """Warm up ``reader`` on ``path``, check the result's shape, then time it."""
    call = functools.partial(reader.read, str(path), scenario.column_list)
    rows_read = rows if reader.max_rows is None else min(rows, reader.max_rows)
    try:
        result = call()
        shape = tuple(result.shape)
        del result
        if shape != (rows_read, scenario.width):
            return Failure(f"wrong shape {shape}, expected {(rows_read, scenario.width)}")
        times = time_calls(call, repeat)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # Rust panics surface as BaseException subclasses
        return Failure(short_reason(error))
    return Timing(times, scale=rows / rows_read)


def describe(outcome: Outcome, unit: float = 1.0, unit_name: str = "s") -> str:
    """One progress line's worth of an outcome."""
    if isinstance(outcome, Failure):
        return f"error: {outcome.reason}"
    note = " (scaled from a subset)" if outcome.estimated else ""
    return (f"median {outcome.median / unit:.4f} {unit_name}  min {outcome.min / unit:.4f} {unit_name}"
            f"  ({len(outcome.times)} timed){note}")


def run_scenarios(args: argparse.Namespace, readers: list[Reader], results: Results) -> None:
    """Time every reader on every selected scenario file."""
    for name in (n for n in SCENARIOS if n in args.scenarios):
        scenario = SCENARIOS[name]
        progress(f"[{name}] preparing {args.rows:,} rows ({scenario.description})")
        path = ensure_file(scenario.dataset, args.rows, args.data_dir)
        outcomes = results.scenarios.setdefault(name, {})
        for reader in readers:
            outcomes[reader.name] = measure(reader, path, scenario, args.rows, args.repeat)
            progress(f"[{name}] {reader.name:<26} {describe(outcomes[reader.name])}")


def run_tiny(args: argparse.Namespace, readers: list[Reader], results: Results) -> None:
    """Time every reader on the 100-row file, many times, in this warm process."""
    path = ensure_file(TINY.dataset, TINY_ROWS, args.data_dir)
    results.tiny_repeat = args.tiny_repeat
    for reader in readers:
        results.tiny[reader.name] = measure(reader, path, TINY, TINY_ROWS, args.tiny_repeat)
        progress(f"[tiny] {reader.name:<26} {describe(results.tiny[reader.name], 1e-3, 'ms')}")


def run_fresh(args: argparse.Namespace, readers: list[Reader], results: Results) -> None:
    """Time a first read of the 100-row file in new Python processes."""
    path = ensure_file(TINY.dataset, TINY_ROWS, args.data_dir)
    results.fresh_repeat = args.fresh_repeat
    for reader in (r for r in readers if r.fresh_statement):
        outcome = time_fresh_process(reader.fresh_statement, path, args.fresh_repeat, REPO_ROOT)
        results.fresh[reader.name] = outcome
        progress(f"[fresh] {reader.name:<26} {describe(outcome)}")


def environment() -> dict[str, str]:
    """Machine, interpreter, library versions and commit, for the record."""
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": str(os.cpu_count()),
    }
    try:
        import psutil

        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        pass
    for name in DISTRIBUTIONS:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    if commit.returncode == 0:
        info["commit"] = commit.stdout.strip()
    return info


def notes(args: argparse.Namespace) -> list[str]:
    """What a reader of the tables needs to know to read them right."""
    items = [
        "Files: fastavro-written, snappy, default block size; generated once with a fixed seed.",
        "jd = jetliner_dist.read_avro with its defaults (all cores); the '1 thread' column passes "
        "max_workers=1. Every reader returns a polars.DataFrame and is given the projection.",
    ]
    if args.rows > args.fastavro_rows:
        items.append(f"fastavro reads the first {args.fastavro_rows:,} rows of each file and its "
                     f"times are scaled linearly to {args.rows:,} rows ('≈'); it builds one dict per row.")
    return items


def main(argv: list[str] | None = None) -> int:
    """Run the selected measurements and print (and optionally write) the report."""
    args = parse_args(argv)
    readers = make_readers(args.fastavro_rows)
    results = Results(rows=args.rows, repeat=args.repeat, reader_names=[r.name for r in readers],
                      notes=notes(args), environment=environment())
    run_scenarios(args, readers, results)
    if "tiny" in args.scenarios:
        run_tiny(args, readers, results)
    if "fresh" in args.scenarios:
        run_fresh(args, readers, results)
    report = render_markdown(results)
    print(report)
    for check in target_checks(results):
        progress(f"{check.status:<4}  {check.name}: {check.measured} (goal {check.goal})")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report, encoding="utf-8")
        progress(f"report written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
