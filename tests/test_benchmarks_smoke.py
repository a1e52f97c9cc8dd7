"""The benchmark harness runs end to end on tiny files, so it cannot rot.

The full 1M-row benchmark never runs here: ``python -m benchmarks.run`` does that.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["simple", "wide", "complex", "projection"]
READERS = ["jetliner_dist", "jetliner_dist (1 thread)", "jetliner", "polars-avro", "fastavro"]
JD_READERS = READERS[:2]


def _table_rows(report: str, first_header: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the rows (by first cell) of the first table whose header starts so."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("|") and line.strip("|").split("|")[0].strip() == first_header)
    header = [cell.strip() for cell in lines[start].strip("|").split(" | ")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows[cells[0]] = cells
    return header, rows


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One small run of the whole harness through its command line."""
    work = tmp_path_factory.mktemp("bench")
    markdown = work / "report.md"
    command = [
        sys.executable, "-m", "benchmarks.run",
        "--rows", "2000", "--repeat", "1", "--tiny-repeat", "3", "--fresh-repeat", "1",
        "--fastavro-rows", "500", "--data-dir", str(work / "data"), "--markdown", str(markdown),
    ]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == markdown.read_text(encoding="utf-8").strip()
    return markdown.read_text(encoding="utf-8")


def test_scenario_table_has_every_scenario_and_reader(report: str) -> None:
    header, rows = _table_rows(report, "scenario")
    assert header[1 : 1 + len(READERS)] == READERS
    assert "jd / jetliner" in header and "jd / polars-avro" in header
    assert list(rows) == SCENARIOS
    for cells in rows.values():
        assert len(cells) == len(header)
        assert cells[-1] in {"PASS", "FAIL", "n/a"}


def test_peers_are_timed_on_the_simple_scenario(report: str) -> None:
    # Every peer reads the simple layout; only a peer that is not installed may
    # error there (other scenarios may hit a peer's unsupported types).
    _, rows = _table_rows(report, "scenario")
    for column, reader in enumerate(READERS, start=1):
        cell = rows["simple"][column]
        if reader not in JD_READERS:
            assert not cell.startswith("error:") or "not installed" in cell, (reader, cell)
    # fastavro read 500 of 2,000 rows: its figures are marked as scaled.
    fastavro_cell = rows["simple"][READERS.index("fastavro") + 1]
    assert fastavro_cell.startswith("≈") or "not installed" in fastavro_cell


def test_small_file_fresh_process_and_targets_are_reported(report: str) -> None:
    _, tiny = _table_rows(report, "reader")
    assert list(tiny) == READERS
    assert "### First read of the 100-row file in a fresh process" in report
    _, targets = _table_rows(report, "target")
    assert len(targets) == len(SCENARIOS) + 2
    assert all(cells[-1] in {"PASS", "FAIL", "n/a"} for cells in targets.values())


def test_jetliner_dist_reads_every_scenario(report: str) -> None:
    _, rows = _table_rows(report, "scenario")
    for scenario, cells in rows.items():
        cell = cells[READERS.index("jetliner_dist") + 1]
        assert not cell.startswith("error:"), (scenario, cell)


def _run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_parallel_benchmark_reports_every_check(tmp_path: Path) -> None:
    """``benchmarks.parallel_bench`` on 2,000-row files and a 2 MB stream; on
    files this small the speed targets fail, so only the exit code's meaning
    (1: some check failed) and the report are checked."""
    done = _run_module("benchmarks.parallel_bench", "--rows", "2000", "--repeat", "2",
                       "--small-files", "20", "--stream-bytes", "0.002",
                       "--data-dir", str(tmp_path))  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    _, checks = _table_rows(done.stdout, "check")
    assert [name.split(":")[0] for name in checks] == [
        "simple", "simple", "simple", "complex", "complex", "complex", "wide",
        "20 files of 100 rows", "iter_batches over 0.00 GB",
    ]  # fmt: skip
    statuses = [cells[-1] for cells in checks.values()]
    reported = {1, 4, 7}  # how two threads used the cores; the small files
    assert all(s == "n/a" for i, s in enumerate(statuses) if i in reported)
    assert all(s in {"PASS", "FAIL"} for i, s in enumerate(statuses) if i not in reported)
    assert done.returncode == (1 if "FAIL" in statuses else 0)
    # The speed-up's two factors: cores kept busy ÷ CPU time against one thread.
    for name, cells in checks.items():
        if "cores kept busy" in name:
            busy, more_cpu = (float(x) for x in re.findall(r"([\d.]+)(?: cores|×)", cells[1])[:2])
            assert 0 < busy <= 2.5 and more_cpu > 0
            assert float(cells[2].rstrip("×")) == pytest.approx(busy / more_cpu, abs=0.02)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_round_orders_let_each_reader_follow_each_other_equally_often(n: int) -> None:
    """A reader's time depends on the one timed before it (an idle core to
    wake), so the parallel benchmark's rounds are balanced for that."""
    from benchmarks.parallel_bench import balanced_orders

    orders = balanced_orders(n)
    assert all(sorted(order) == list(range(n)) for order in orders)
    follows = Counter(pair for order in orders for pair in zip(order, order[1:]))
    assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(follows.values())) <= 1


def test_s3_benchmark_reads_through_the_server(tmp_path: Path) -> None:
    """``benchmarks.s3_bench`` on 2,000-row files against its own moto server."""
    done = _run_module("benchmarks.s3_bench", "--rows", "2000", "--repeat", "1",
                       "--data-dir", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, files = _table_rows(done.stdout, "file")
    assert list(files) == ["simple", "complex"]
    for cells in files.values():
        assert cells[7].isdigit() and int(cells[7]) >= 1, cells  # GETs per read
        assert cells[11].replace(",", "").isdigit(), cells  # the reader's page faults per read
    assert "target: S3 at most 1.5× local" in done.stdout
