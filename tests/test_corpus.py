"""The conformance corpus (``../shared/avro-corpus``): real files from other
implementations.

- every ``valid`` file decodes to its expected records (canonical JSON), with
  the Arrow types of DESIGN §3.3, and streams to the same rows in small batches;
- every ``adversarial-upstream`` file ends in a ``JetlinerDistError`` — read in
  a subprocess, so a crash or a hang fails the test instead of taking pytest down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pytest

import jetliner_dist as jd
from canonical import (
    arrow_to_canonical,
    arrow_type_problems,
    assert_canonical_equal,
    writer_schema_of,
)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "avro-corpus"
# The directory holding the jetliner_dist under test: child processes run there
# so they import the same package as this process.
PACKAGE_ROOT = Path(jd.__file__).resolve().parents[1]


def _manifest() -> list[dict]:
    return json.loads((CORPUS / "manifest.json").read_text())


VALID = [e for e in _manifest() if e["kind"] == "valid"]
ADVERSARIAL = [e for e in _manifest() if e["kind"] == "adversarial-upstream"]


def _ids(entries: list[dict]) -> list[str]:
    return [e["file"].removeprefix("files/") for e in entries]


def _expected(entry: dict) -> list:
    with (CORPUS / entry["expected"]).open() as f:
        return [json.loads(line) for line in f]


def test_corpus_is_present():
    """A missing corpus must fail loudly, not parametrize to nothing."""
    assert len(VALID) == 185 and len(ADVERSARIAL) == 27


# ---------------------------------------------------------------------------
# Valid files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_file_decodes_to_expected_records(entry):
    path = CORPUS / entry["file"]
    table = jd.read_table(str(path))
    expected = _expected(entry)
    assert table.num_rows == len(expected) == entry["records"]
    actual = arrow_to_canonical(table, writer_schema_of(path))
    assert_canonical_equal(actual, expected, context=entry["file"])


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_file_has_the_design_arrow_types(entry):
    path = CORPUS / entry["file"]
    table = jd.read_table(str(path))
    assert arrow_type_problems(table.schema, writer_schema_of(path)) == []


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_file_streams_in_small_batches(entry):
    """``iter_batches`` with a small batch size gives the rows of ``read_table``."""
    path = str(CORPUS / entry["file"])
    whole = jd.read_table(path)
    batches = list(jd.iter_batches(path, batch_rows=7))
    assert all(b.num_rows <= 7 for b in batches)
    assert all(b.schema.equals(whole.schema) for b in batches)
    streamed = pa.Table.from_batches(batches, schema=whole.schema)
    assert streamed.num_rows == whole.num_rows
    schema = writer_schema_of(path)
    assert_canonical_equal(arrow_to_canonical(streamed, schema),
                           arrow_to_canonical(whole, schema), context=entry["file"])


@pytest.mark.parametrize("splits", [200, 7])
@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_file_reads_the_same_in_small_splits(entry, splits):
    """Splits that start anywhere (inside the header, inside blocks, on sync
    bytes hidden in header metadata) read every block exactly once, in order.

    About ``splits`` splits per file, none smaller than 97 bytes, so large
    files stay quick."""
    path = str(CORPUS / entry["file"])
    split_size = max(97, Path(path).stat().st_size // splits)
    table = jd.read_table(path, split_size=split_size, max_workers=2)
    assert_canonical_equal(arrow_to_canonical(table, writer_schema_of(path)), _expected(entry),
                           context=f"{entry['file']} split_size={split_size}")


def _record_fields(path) -> list[str]:
    schema = writer_schema_of(path)
    if isinstance(schema, dict) and schema.get("type") in ("record", "error"):
        return [f["name"] for f in schema["fields"]]
    return []


PROJECTABLE = [e for e in VALID if _record_fields(CORPUS / e["file"])]


@pytest.mark.parametrize("entry", PROJECTABLE, ids=_ids(PROJECTABLE))
def test_valid_file_projection_selects_and_orders_fields(entry):
    """``columns=`` (every other field, reversed) gives those fields of the
    expected records, in the order asked for."""
    path = CORPUS / entry["file"]
    columns = _record_fields(path)[::-2]
    table = jd.read_table(str(path), columns=columns)
    assert table.column_names == columns
    expected = [{name: row[name] for name in columns} for row in _expected(entry)]
    actual = arrow_to_canonical(table, writer_schema_of(path), columns=columns)
    assert_canonical_equal(actual, expected, context=entry["file"])


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_file_reads_into_polars_with_the_announced_schema(entry):
    path = str(CORPUS / entry["file"])
    frame = jd.read_avro(path)
    assert frame.schema == jd.read_avro_schema(path)
    assert frame.height == entry["records"]


# ---------------------------------------------------------------------------
# Adversarial files
# ---------------------------------------------------------------------------

# Runs in a child interpreter: reads each path given on stdin, printing one JSON
# line per file. "start" is flushed before reading, so if the process dies the
# parent knows which file killed it.
_CHILD = r"""
import json, sys
import jetliner_dist as jd
from jetliner_dist.errors import JetlinerDistError

def emit(**fields):
    print(json.dumps(fields), flush=True)

for path in sys.stdin.read().split("\n"):
    if not path:
        continue
    emit(file=path, event="start")
    try:
        table = jd.read_table(path)
    except BaseException as exc:
        emit(file=path, event="raised", cls=type(exc).__name__,
             mro=[c.__name__ for c in type(exc).__mro__],
             typed=isinstance(exc, JetlinerDistError), message=str(exc)[:500])
    else:
        emit(file=path, event="returned", rows=table.num_rows)
"""

_BATCH_TIMEOUT = 300  # the whole batch, numba's first compile included
_FILE_TIMEOUT = 120


def _run_child(paths: list[str], timeout: float, script: str = _CHILD
               ) -> tuple[dict[str, dict], str | None]:
    """Read ``paths`` in one child process running ``script``.

    Returns (finished results by path, None) or, when the child died or hung,
    the results it finished plus a description of how it ended.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script], input="\n".join(paths), capture_output=True,
            text=True, timeout=timeout, cwd=PACKAGE_ROOT,
        )
        stdout, ended = proc.stdout, _describe_exit(proc.returncode, proc.stderr)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        stdout = out.decode(errors="replace") if isinstance(out, bytes) else out
        ended = f"timed out after {timeout} s"
    results = {}
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # stray output from the library
        if event.get("event") in ("raised", "returned"):
            results[event["file"]] = event
    return results, ended


def _describe_exit(returncode: int, stderr: str) -> str | None:
    if returncode == 0:
        return None
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}; stderr: {stderr[-800:]}"
    return f"exited with status {returncode}; stderr: {stderr[-800:]}"


@lru_cache(maxsize=1)
def _adversarial_results() -> dict[str, dict]:
    """Outcome of every adversarial file: one batch child, then one child per
    file for whatever the batch did not finish (so a crash names its file)."""
    paths = [str(CORPUS / e["file"]) for e in ADVERSARIAL]
    results, _ = _run_child(paths, _BATCH_TIMEOUT)
    for path in paths:
        if path not in results:
            alone, ended = _run_child([path], _FILE_TIMEOUT)
            results[path] = alone.get(path) or {"file": path, "event": "died", "how": ended}
    return results


@pytest.mark.parametrize("entry", ADVERSARIAL, ids=_ids(ADVERSARIAL))
def test_adversarial_file_raises_a_typed_error(entry):
    outcome = _adversarial_results()[str(CORPUS / entry["file"])]
    assert outcome["event"] != "died", f"reader process died: {outcome['how']}"
    assert outcome["event"] == "raised", (
        f"read returned {outcome.get('rows')} rows instead of raising ({entry.get('note', '')})"
    )
    assert outcome["typed"], (
        f"raised {outcome['cls']} (MRO {outcome['mro']}), not a JetlinerDistError: "
        f"{outcome['message']}"
    )
    assert "JetlinerDistError" in outcome["mro"]


def test_a_crashing_child_is_attributed_to_its_file():
    """The harness itself: a child killed by a signal keeps the results it
    printed and says how it died, so the parent can retry file by file."""
    crashing = _CHILD.replace(
        "table = jd.read_table(path)",
        "import os, signal\n"
        "        if path == 'b': os.kill(os.getpid(), signal.SIGSEGV)\n"
        "        raise jd.errors.DecodeError('stub')",
    )
    results, ended = _run_child(["a", "b", "c"], 60, script=crashing)
    assert list(results) == ["a"] and results["a"]["typed"]
    assert "SIGSEGV" in ended
