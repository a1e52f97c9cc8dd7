"""Command-line options the scenario benchmarks share."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.datasets import DATA_DIR


def scenario_parser(prog: str, description: str | None, *, repeat: int,
                    repeat_help: str) -> argparse.ArgumentParser:  # fmt: skip
    """A parser with --scenarios, --rows, --repeat and --data-dir."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", nargs="+", choices=["simple", "complex", "wide"],
                        default=["simple", "complex"], metavar="NAME",
                        help="files to read (default: simple complex)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file (default: 1000000)")
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"{repeat_help}, after one warm-up (default: {repeat})")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help=f"where data files are generated and reused (default: {DATA_DIR})")
    return parser  # fmt: skip


def parse_counts(parser: argparse.ArgumentParser, argv: list[str] | None,
                 counts: tuple[str, ...] = ("rows", "repeat")) -> argparse.Namespace:  # fmt: skip
    """Parse ``argv``; each option named in ``counts`` must be at least 1."""
    args = parser.parse_args(argv)
    if min(getattr(args, name) for name in counts) < 1:
        names = [f"--{name.replace('_', '-')}" for name in counts]
        parser.error(f"{', '.join(names[:-1])} and {names[-1]} must be at least 1")
    return args
