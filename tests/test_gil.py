"""The decoder releases the GIL (DESIGN §3.2: threads must scale).

How it is shown, without timing thresholds: a pure-Python thread keeps
counting and stamps the clock every 256 increments. The kernel call is
wrapped to record when it starts and ends. If the kernel held the GIL, the
counting thread could not run at all inside that span, apart from a GIL
hand-over right at its edges (one switch interval, set to 1 ms here); so
stamps well inside the span (more than ``MARGIN`` from either edge) exist only
if the GIL was released. The file is built so that one kernel call runs for a
long time (one big block of fixed-width columns, ``batch_rows`` covering all of
it, read as one split on the calling thread, so buffers never need to grow
mid-call).

A control runs the same measurement over a call that holds the GIL
(``list.sort`` of floats): it must see no stamps inside, which shows the
measurement can tell the two apart.
"""

from __future__ import annotations

import random
import sys
import threading
import time

import pytest

import jetliner_dist as jd
from corruption import avro_bytes, block, compress, header, zigzag

ROWS = 8_000_000  # long enough that one kernel call outlasts the edge margins
MARGIN = 0.03  # seconds at each edge of a call where a GIL hand-over may land
SCHEMA = {
    "type": "record",
    "name": "r",
    "fields": [
        {"name": "a", "type": "long"},
        {"name": "b", "type": "long"},
        {"name": "c", "type": "double"},
        {"name": "d", "type": "int"},
        {"name": "e", "type": "boolean"},
    ],
}
# Long varints make the kernel busy per byte; 23 bytes per record.
RECORD = zigzag(2**60 + 12345) + zigzag(-(2**50)) + bytes(8) + zigzag(2**30) + b"\x01"


@pytest.fixture(scope="module")
def data() -> bytes:
    return header(SCHEMA) + block(ROWS, RECORD * ROWS)


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    yield
    sys.setswitchinterval(old)


def _count(stop: threading.Event, stamps: list) -> None:
    clock = time.perf_counter
    n = 0
    while not stop.is_set():
        n += 1
        if n % 256 == 0:
            stamps.append(clock())


def stamps_inside(call, spans: list) -> tuple[int, float]:
    """Run ``call`` while a counting thread stamps the clock; return the stamps
    that fall well inside the recorded ``spans``, and the spans' inner time."""
    stop = threading.Event()
    stamps: list[float] = []
    counter = threading.Thread(target=_count, args=(stop, stamps), daemon=True)
    counter.start()
    while not stamps:  # the counter is running before the call starts
        time.sleep(0.001)
    try:
        call()
    finally:
        stop.set()
        counter.join()
    inner = [(a + MARGIN, b - MARGIN) for a, b in spans if b - a > 2 * MARGIN]
    inside = sum(1 for s in stamps for a, b in inner if a < s < b)
    return inside, sum(b - a for a, b in inner)


def test_kernel_functions_are_compiled_nogil():
    from jetliner_dist.avro import kernel

    for function in (kernel.decode_blocks, kernel.frame_blocks, kernel.snappy_sizes,
                     kernel.walk_blocks):
        assert function.targetoptions.get("nogil") is True, function


def test_decoding_releases_the_gil(data, monkeypatch, fast_switching):
    from jetliner_dist.avro import kernel

    jd.read_table(data, n_rows=10)  # the kernel is loaded before measuring
    spans: list[tuple[float, float]] = []
    decode = kernel.decode_blocks

    def timed(*args):
        start = time.perf_counter()
        status = decode(*args)
        spans.append((start, time.perf_counter()))
        return status

    monkeypatch.setattr(kernel, "decode_blocks", timed)
    result = {}
    # One split on this thread, one block, one batch: one long kernel call.
    options = dict(batch_rows=ROWS, max_workers=1, split_size=1 << 30)
    inside, seconds = stamps_inside(
        lambda: result.setdefault("table", jd.read_table(data, **options)), spans
    )
    assert result["table"].num_rows == ROWS
    assert result["table"].column("a")[ROWS - 1].as_py() == 2**60 + 12345
    assert seconds > 0, f"no kernel call ran longer than {2 * MARGIN} s: {spans}"
    print(f"{inside} stamps in {seconds:.3f} s of kernel time, {len(spans)} call(s)")
    # A GIL-holding call allows no stamps here at all; a released GIL lets the
    # counter stamp thousands of times (every ~10 µs of its CPU time).
    assert inside >= 20, f"{inside} stamps in {seconds:.3f} s of kernel time: GIL held?"


def test_control_a_gil_holding_call_shows_no_stamps(fast_switching):
    values = [random.random() for _ in range(1_500_000)]
    spans: list[tuple[float, float]] = []

    def hold_the_gil():
        start = time.perf_counter()
        values.sort()  # C code that never releases the GIL
        spans.append((start, time.perf_counter()))

    inside, seconds = stamps_inside(hold_the_gil, spans)
    assert seconds > 0, f"the control call was too short to measure: {spans}"
    assert inside == 0, f"{inside} stamps while the GIL was held: the method is broken"


def _spans_of(monkeypatch, module, name: str, spans: list) -> None:
    """Record the start and end of every call of ``module.name``."""
    function = getattr(module, name)

    def timed(*args):
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            spans.append((start, time.perf_counter()))

    monkeypatch.setattr(module, name, timed)


def test_snappy_inflation_releases_the_gil(monkeypatch, fast_switching):
    """Snappy blocks are inflated inside the GIL-free decode call. Here the
    call does little but inflate: one block of records whose 4 MB ``pad`` is
    skipped (not a selected column) and made of short repeats, which inflate
    slowly (byte-wise copies)."""
    from jetliner_dist.avro import kernel

    schema = {"type": "record", "name": "padded",
              "fields": [{"name": "a", "type": "long"}, {"name": "pad", "type": "bytes"}]}  # fmt: skip
    pad = avro_bytes(b"xyz" * 1_400_000)
    rows = 30
    payload = compress("snappy", b"".join(zigzag(i) + pad for i in range(rows)))
    data = header(schema, codec="snappy") + block(rows, payload)
    options = dict(columns=["a"], max_workers=1)
    jd.read_table(data, n_rows=1, **options)  # the kernel is loaded before measuring
    spans: list[tuple[float, float]] = []
    _spans_of(monkeypatch, kernel, "decode_blocks", spans)
    result = {}
    inside, seconds = stamps_inside(
        lambda: result.setdefault("table", jd.read_table(data, **options)), spans
    )
    assert result["table"].column("a").to_pylist() == list(range(rows))
    assert seconds > 0, f"no decode call ran longer than {2 * MARGIN} s: {spans}"
    assert inside >= 20, f"{inside} stamps in {seconds:.3f} s of inflation: GIL held?"


def test_counting_rows_releases_the_gil(tmp_path, monkeypatch, fast_switching):
    """The header walk of count_rows reads block after block without the GIL."""
    from jetliner_dist.avro import kernel

    from jetliner_dist.planning import Split
    from jetliner_dist.counting import count_split_rows
    from jetliner_dist.sources import LocalFileSource

    path = tmp_path / "many-blocks.avro"
    path.write_bytes(header(SCHEMA) + b"".join(block(1, RECORD) for _ in range(300_000)))
    assert jd.count_rows(str(path)) == 300_000
    file = jd.plan(str(path)).files[0]
    whole = Split(file, 0, file.size, 0, 0)  # one walk over every block
    spans: list[tuple[float, float]] = []
    _spans_of(monkeypatch, kernel, "walk_blocks", spans)
    counted = {}
    inside, seconds = stamps_inside(
        lambda: counted.setdefault("rows", count_split_rows(LocalFileSource.open(path), whole)),
        spans,
    )
    assert counted["rows"] == 300_000
    assert seconds > 0, f"no walk ran longer than {2 * MARGIN} s: {spans}"
    assert inside >= 20, f"{inside} stamps in {seconds:.3f} s of walking: GIL held?"
