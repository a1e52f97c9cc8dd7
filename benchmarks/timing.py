"""Timing primitives: repeated in-process calls and fresh-process runs."""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union


@dataclass(frozen=True)
class Timing:
    """Wall times of the timed runs, in seconds.

    ``scale`` > 1 marks a measurement taken on a subset of the rows and scaled
    linearly to the whole file (only for slow row-at-a-time readers).
    """

    times: tuple[float, ...]
    scale: float = 1.0

    @property
    def median(self) -> float:
        """Median run time, scaled to the whole file."""
        return statistics.median(self.times) * self.scale

    @property
    def min(self) -> float:
        """Fastest run time, scaled to the whole file."""
        return min(self.times) * self.scale

    @property
    def estimated(self) -> bool:
        """True when the figures are scaled from a subset of the rows."""
        return self.scale != 1.0


@dataclass(frozen=True)
class Failure:
    """A reader could not run a measurement; ``reason`` is one short line."""

    reason: str


Outcome = Union[Timing, Failure]


def short_reason(error: BaseException, limit: int = 90) -> str:
    """One line naming the error, short enough for a table cell."""
    if isinstance(error, ImportError):
        text = f"not installed ({error})"
    else:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def time_calls(call: Callable[[], object], repeat: int) -> tuple[float, ...]:
    """Time ``repeat`` calls of ``call`` with ``time.perf_counter``.

    The caller has warmed ``call`` up. Garbage from the previous run is dropped
    and collected before each timed run, so one run does not pay for another.
    """
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
        del result
    gc.collect()
    return tuple(times)


def time_fresh_process(statement: str, path: Path, repeat: int, cwd: Path) -> Outcome:
    """Wall time of ``python -c statement`` (imports included), after one untimed run.

    The untimed run fills the numba on-disk cache and the OS page cache, so the
    timed runs measure a user's second and later jobs, not a first install.
    """
    code = f"path = {str(path)!r}\n{statement}"
    command = [sys.executable, "-c", code]
    times = []
    for run in range(repeat + 1):
        start = time.perf_counter()
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
        if completed.returncode != 0:
            lines = completed.stderr.strip().splitlines() or [f"exit code {completed.returncode}"]
            return Failure(lines[-1][:90])
        if run > 0:
            times.append(elapsed)
    return Timing(tuple(times))
