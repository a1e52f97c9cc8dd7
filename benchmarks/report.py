"""Turn measurements into markdown tables and PASS/FAIL target checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .readers import JD, JETLINER, POLARS_AVRO
from .timing import Failure, Outcome, Timing

# The targets, in one place.
TARGET_RATIO_TO_JETLINER = 0.5
TARGET_ROWS = 1_000_000
TARGET_TINY_SECONDS = 0.002
TARGET_FRESH_SECONDS = 1.0


@dataclass
class Results:
    """Everything one benchmark run measured."""

    rows: int
    repeat: int
    reader_names: list[str]
    # scenario name -> reader name -> outcome
    scenarios: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    tiny: dict[str, Outcome] = field(default_factory=dict)
    fresh: dict[str, Outcome] = field(default_factory=dict)
    tiny_repeat: int = 0
    fresh_repeat: int = 0
    notes: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetCheck:
    """One target: what was measured against what was wanted."""

    name: str
    measured: str
    goal: str
    status: str  # PASS, FAIL or n/a (the reference itself failed)


def _cell(text: str) -> str:
    """Make text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _number(value: float) -> str:
    """``value`` with three significant digits, never in scientific notation."""
    if value <= 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(value)))
    return f"{value:.{decimals}f}"


def _runs(count: int) -> str:
    """'1 run' / '5 runs'."""
    return f"{count} run" if count == 1 else f"{count} runs"


def _seconds(outcome: Outcome | None, unit: float = 1.0) -> str:
    """Median of ``outcome`` in ``unit`` seconds; '≈' marks scaled estimates."""
    if outcome is None:
        return "–"
    if isinstance(outcome, Failure):
        return _cell(f"error: {outcome.reason}")
    prefix = "≈ " if outcome.estimated else ""
    return prefix + _number(outcome.median / unit)


def _median_min(outcome: Outcome | None, unit: float = 1.0) -> str:
    """'median / min' of ``outcome`` in ``unit`` seconds."""
    if not isinstance(outcome, Timing):
        return _seconds(outcome, unit)
    prefix = "≈ " if outcome.estimated else ""
    return f"{prefix}{_number(outcome.median / unit)} / {_number(outcome.min / unit)}"


def ratio(numerator: Outcome | None, denominator: Outcome | None) -> float | None:
    """Median over median, or None when either side has no timing."""
    if isinstance(numerator, Timing) and isinstance(denominator, Timing):
        return numerator.median / denominator.median
    return None


def _ratio_text(value: float | None) -> str:
    """A ratio as '0.42×', or '–' when there is none."""
    return "–" if value is None else f"{value:.2f}×"


def _not_timed(name: str, outcome: Outcome | None, goal: str) -> TargetCheck | None:
    """A FAIL check when jetliner_dist produced no timing, else None."""
    if isinstance(outcome, Timing):
        return None
    reason = outcome.reason if isinstance(outcome, Failure) else "not measured"
    return TargetCheck(name, f"error: {reason}", goal, "FAIL")


def _time_limit_check(
    name: str, outcome: Outcome | None, limit: float, goal: str, unit: float, unit_name: str
) -> TargetCheck:
    """A target that ``outcome``'s median stays under ``limit`` seconds."""
    failed = _not_timed(name, outcome, goal)
    if failed:
        return failed
    status = "PASS" if outcome.median < limit else "FAIL"
    return TargetCheck(name, f"{_number(outcome.median / unit)} {unit_name}", goal, status)


def scenario_check(scenario: str, outcomes: dict[str, Outcome]) -> TargetCheck:
    """jetliner_dist's median against half of jetliner's on one scenario."""
    name = f"{scenario}: jetliner_dist ≤ {TARGET_RATIO_TO_JETLINER}× jetliner"
    goal = f"≤ {TARGET_RATIO_TO_JETLINER:.2f}×"
    failed = _not_timed(name, outcomes.get(JD), goal)
    if failed:
        return failed
    value = ratio(outcomes.get(JD), outcomes.get(JETLINER))
    if value is None:
        return TargetCheck(name, "jetliner has no timing", goal, "n/a")
    status = "PASS" if value <= TARGET_RATIO_TO_JETLINER else "FAIL"
    return TargetCheck(name, f"{value:.2f}×", goal, status)


def target_checks(results: Results) -> list[TargetCheck]:
    """Every target this run measured, in report order."""
    checks = [scenario_check(name, outcomes) for name, outcomes in results.scenarios.items()]
    if results.tiny:
        checks.append(
            _time_limit_check("tiny file, warm process: jetliner_dist", results.tiny.get(JD),
                   TARGET_TINY_SECONDS, "< 2 ms", 1e-3, "ms")
        )
    if results.fresh:
        checks.append(
            _time_limit_check("first read in a fresh process: jetliner_dist", results.fresh.get(JD),
                   TARGET_FRESH_SECONDS, "< 1 s", 1.0, "s")
        )
    return checks


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table as lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def scenario_table(results: Results) -> list[str]:
    """Scenarios × readers (medians), then the ratios and the target status."""
    header = ["scenario", *results.reader_names, "jd / jetliner", "jd / polars-avro",
              f"target jd ≤ {TARGET_RATIO_TO_JETLINER}× jetliner"]
    rows = []
    for name, outcomes in results.scenarios.items():
        jd = outcomes.get(JD)
        rows.append([
            name,
            *(_seconds(outcomes.get(reader)) for reader in results.reader_names),
            _ratio_text(ratio(jd, outcomes.get(JETLINER))),
            _ratio_text(ratio(jd, outcomes.get(POLARS_AVRO))),
            scenario_check(name, outcomes).status,
        ])
    return _table(header, rows)


def scenario_min_table(results: Results) -> list[str]:
    """Scenarios × readers, 'median / min' in each cell."""
    rows = [
        [name, *(_median_min(outcomes.get(reader)) for reader in results.reader_names)]
        for name, outcomes in results.scenarios.items()
    ]
    return _table(["scenario", *results.reader_names], rows)


def _reader_table(outcomes: dict[str, Outcome], reader_names: list[str], unit: float) -> list[str]:
    """One row per measured reader: median and min."""
    rows = [[reader, _median_min(outcomes[reader], unit)] for reader in reader_names if reader in outcomes]
    return _table(["reader", "median / min"], rows)


def render_markdown(results: Results) -> str:
    """The whole report as markdown: tables, targets, notes, environment."""
    lines = []
    if results.scenarios:
        lines += [f"### Reading {results.rows:,} rows (median seconds, "
                  f"{_runs(results.repeat)} after a warm-up)", ""]
        lines += scenario_table(results)
        lines += ["", "Median / min seconds:", ""]
        lines += scenario_min_table(results)
        lines += [""]
    if results.tiny:
        lines += [f"### 100-row file in a warm process (ms, {_runs(results.tiny_repeat)})", ""]
        lines += _reader_table(results.tiny, results.reader_names, 1e-3)
        lines += [""]
    if results.fresh:
        lines += ["### First read of the 100-row file in a fresh process (s, imports included, "
                  f"{_runs(results.fresh_repeat)} after one untimed run)", ""]
        lines += _reader_table(results.fresh, results.reader_names, 1.0)
        lines += [""]
    lines += ["### Targets", ""]
    lines += _table(["target", "measured", "goal", "status"],
                    [[c.name, _cell(c.measured), c.goal, c.status] for c in target_checks(results)])
    if results.rows != TARGET_ROWS and results.scenarios:
        lines += ["", f"The scenario targets are defined on {TARGET_ROWS:,} rows; this run read "
                  f"{results.rows:,}, so their status is indicative only."]
    if results.notes:
        lines += ["", *(f"- {note}" for note in results.notes)]
    if results.environment:
        lines += ["", "Environment: " + "; ".join(f"{k} {v}" for k, v in results.environment.items())]
    return "\n".join(lines) + "\n"
