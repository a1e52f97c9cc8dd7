"""Build Avro object container files byte by byte, valid or corrupt on purpose.

The corruption tests need files that are wrong in exactly one place: a count, a
length, a sync marker, a codec payload. Writing them by hand (header, blocks,
sync markers) keeps every byte under control; ``encode`` (fastavro's
schemaless writer) produces valid record bytes to splice in, and ``split_file``
takes a file fastavro wrote apart again so one block can be damaged.

``run_isolated`` runs a read in a separate process (forked from a preloaded
server, so it costs milliseconds) and reports what it raised, how long it took
and how much memory it touched: a crash, hang or huge allocation then fails one
test instead of taking pytest down.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import multiprocessing
import resource
import struct
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any

import cramjam

MAGIC = b"Obj\x01"
SYNC = bytes(range(0xA0, 0xB0))  # 16 bytes that do not occur in small test data
OTHER_SYNC = bytes(range(0xC0, 0xD0))
CODECS = ("null", "deflate", "snappy", "zstandard", "bzip2", "xz")


# -- Avro binary primitives ---------------------------------------------------


def zigzag(n: int) -> bytes:
    """Avro's long: zig-zag, then an unsigned LEB128 varint (n in 64-bit range)."""
    if not -(2**63) <= n < 2**63:
        raise ValueError(f"{n} does not fit in a 64-bit long")
    return uvarint(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


def uvarint(n: int) -> bytes:
    """Unsigned LEB128, as snappy's preamble (and, after zig-zag, Avro) uses it."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def overlong_varint(n_bytes: int = 11) -> bytes:
    """A varint of ``n_bytes`` bytes (continuation bits set on all but the last)."""
    return b"\x80" * (n_bytes - 1) + b"\x01"


def avro_bytes(data: bytes) -> bytes:
    return zigzag(len(data)) + data


def avro_string(text: str) -> bytes:
    return avro_bytes(text.encode("utf-8"))


# -- header, blocks, files ----------------------------------------------------


def schema_text(schema: Any) -> bytes:
    return schema if isinstance(schema, bytes) else json.dumps(schema).encode()


def metadata_block(entries: list[tuple[bytes, bytes]], *, negative: bool = False) -> bytes:
    """One block of the header's metadata map (a negative count adds the byte size)."""
    body = b"".join(avro_bytes(k) + avro_bytes(v) for k, v in entries)
    if negative:
        return zigzag(-len(entries)) + zigzag(len(body)) + body
    return zigzag(len(entries)) + body


def header(
    schema: Any = None,
    *,
    codec: str | bytes | None = None,
    sync: bytes = SYNC,
    extra: list[tuple[bytes, bytes]] = (),
    map_blocks: list[bytes] | None = None,
    magic: bytes = MAGIC,
) -> bytes:
    """A file header: magic, metadata map, sync marker.

    ``map_blocks`` replaces the metadata map's blocks (the closing zero count
    is added); otherwise one block holds the schema, the codec and ``extra``.
    """
    if map_blocks is None:
        entries = []
        if schema is not None:
            entries.append((b"avro.schema", schema_text(schema)))
        if codec is not None:
            entries.append((b"avro.codec", codec if isinstance(codec, bytes) else codec.encode()))
        entries.extend(extra)
        map_blocks = [metadata_block(entries)]
    return magic + b"".join(map_blocks) + zigzag(0) + sync


def block(count: int, payload: bytes, *, sync: bytes = SYNC, size: int | None = None) -> bytes:
    """One data block: record count, byte size (the payload's unless given), payload, sync."""
    return zigzag(count) + zigzag(len(payload) if size is None else size) + payload + sync


def container(schema: Any, blocks: list[tuple[int, bytes]], *, codec: str = "null") -> bytes:
    """A whole file from (record count, decompressed payload) pairs."""
    return header(schema, codec=codec) + b"".join(
        block(count, compress(codec, payload)) for count, payload in blocks
    )


def encode(schema: Any, records: list[Any]) -> bytes:
    """The Avro binary encoding of ``records`` back to back (a block's payload)."""
    import fastavro

    parsed = fastavro.parse_schema(schema)
    out = io.BytesIO()
    for record in records:
        fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def write_file(
    schema: Any, records: list[Any], *, codec: str = "null", block_records: int | None = None
) -> bytes:
    """A valid file written by fastavro, ``block_records`` records per block."""
    import fastavro

    out = io.BytesIO()
    if block_records is None:
        fastavro.writer(out, schema, records, codec=codec, sync_marker=SYNC)
    else:
        # fastavro flushes a block once its buffered bytes reach sync_interval;
        # writing block by block with flush() gives exact record counts.
        writer = fastavro.write.Writer(out, fastavro.parse_schema(schema), codec=codec,
                                       sync_marker=SYNC)  # fmt: skip
        for i, record in enumerate(records):
            writer.write(record)
            if (i + 1) % block_records == 0:
                writer.flush()
        writer.flush()
    return out.getvalue()


@dataclass(frozen=True)
class Block:
    """A block found in a file: where its header starts, its count and payload."""

    offset: int  # of the block's count varint
    count: int
    payload: bytes  # as stored (compressed)
    end: int  # just past its sync marker


@dataclass(frozen=True)
class Layout:
    header: bytes
    blocks: list[Block] = field(default_factory=list)

    def assemble(self, blocks: list[bytes] | None = None) -> bytes:
        """The file again, optionally with ``blocks`` (raw block bytes) instead."""
        if blocks is None:
            blocks = [block(b.count, b.payload) for b in self.blocks]
        return self.header + b"".join(blocks)


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7


def split_file(data: bytes) -> Layout:
    """Take a valid file with sync marker ``SYNC`` apart into header and blocks."""
    pos = data.index(SYNC) + len(SYNC)  # the test files' metadata never holds SYNC
    layout = Layout(data[:pos])
    while pos < len(data):
        start = pos
        count, pos = read_long(data, pos)
        size, pos = read_long(data, pos)
        payload = data[pos : pos + size]
        pos += size
        if data[pos : pos + len(SYNC)] != SYNC:
            raise ValueError(f"block at {start} does not end in SYNC")
        pos += len(SYNC)
        layout.blocks.append(Block(start, count, payload, pos))
    return layout


# -- codecs (compression as Avro stores it) -----------------------------------


def compress(codec: str, data: bytes) -> bytes:
    if codec == "null":
        return data
    if codec == "deflate":
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if codec == "snappy":
        return bytes(cramjam.snappy.compress_raw(data)) + struct.pack(">I", zlib.crc32(data))
    if codec == "zstandard":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    if codec == "bzip2":
        return bz2.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    raise ValueError(codec)


def snappy_with_preamble(claimed: int, data: bytes) -> bytes:
    """A snappy block whose preamble claims ``claimed`` bytes, with ``data``'s CRC."""
    raw = bytes(cramjam.snappy.compress_raw(data))
    _, body = _split_uvarint(raw)
    return uvarint(claimed) + body + struct.pack(">I", zlib.crc32(data))


def _split_uvarint(buf: bytes) -> tuple[int, bytes]:
    shift = value = pos = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, buf[pos:]
        shift += 7


def zstd_without_size(data: bytes) -> bytes:
    """A zstandard frame that does not declare its content size (streamed)."""
    import zstandard

    c = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return c.compress(data) + c.flush()


def zstd_lying_size(claimed: int, data: bytes) -> bytes:
    """A zstandard frame declaring ``claimed`` bytes of content (an 8-byte
    Frame_Content_Size) whose blocks inflate to ``data``."""
    frame = zstd_without_size(data)
    descriptor = frame[4]
    if descriptor >> 6 != 0 or (descriptor >> 5) & 1 or descriptor & 3:
        raise ValueError("expected a frame with a window and no content size or dictionary")
    new_descriptor = bytes([(descriptor & 0x3F) | 0xC0])  # Frame_Content_Size_flag = 3
    window = frame[5:6]
    return frame[:4] + new_descriptor + window + struct.pack("<Q", claimed) + frame[6:]


# -- running a read in a separate process ------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a read in a child process did."""

    error: str | None  # exception class name, None if the read succeeded
    message: str
    fields: dict  # path, block, offset, record of a JetlinerDistError
    rows: int | None  # rows read, when it succeeded
    seconds: float
    rss_growth: int  # bytes the peak resident set grew by during the read
    vm_growth: int  # bytes the peak virtual size grew by during the read


_PRELOAD = [
    "jetliner_dist", "jetliner_dist.local", "jetliner_dist.avro.kernel", "jetliner_dist.frames",
    "polars", "corruption",
]  # fmt: skip


def _context():
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)  # ignored once the server runs; then only slower
    return ctx


def _peak_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _child(conn, reader: str, data: bytes, kwargs: dict) -> None:
    import jetliner_dist as jd
    from jetliner_dist.errors import JetlinerDistError

    read = getattr(jd, reader)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    vm0 = _peak_kb("VmPeak") * 1024
    start = time.perf_counter()
    error, message, fields, rows = None, "", {}, None
    try:
        if reader == "iter_batches":
            rows = sum(batch.num_rows for batch in read(data, **kwargs))
        else:
            rows = len(read(data, **kwargs))
    except BaseException as exc:  # report everything, the parent judges
        error = type(exc).__name__
        message = str(exc) if isinstance(exc, JetlinerDistError) else traceback.format_exc()
        if isinstance(exc, JetlinerDistError):
            fields = {k: getattr(exc, k) for k in ("path", "block", "offset", "record")}
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    vm = _peak_kb("VmPeak") * 1024 - vm0
    conn.send(Outcome(error, message, fields, rows, seconds, rss, vm))
    conn.close()


# Seconds spent in reads that hung, across the session: past the budget, no
# more children are started (each would likely hang too and the run would
# take hours); the remaining cases fail at once, naming the cause.
_HANG_BUDGET = 90.0
_hung_seconds = [0.0]


def run_isolated(
    source: bytes | str, reader: str = "read_table", timeout: float = 30.0, **kwargs
) -> Outcome:
    """Read ``source`` (bytes or a path) with ``jd.<reader>(source, **kwargs)``
    in a child process.

    Raises AssertionError when the child crashes (a signal, an exit without a
    report) or does not finish within ``timeout`` seconds.
    """
    if _hung_seconds[0] >= _HANG_BUDGET:
        raise AssertionError(
            f"not started: earlier isolated reads hung for {_hung_seconds[0]:.0f} s in total"
        )
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, reader, source, kwargs), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            _hung_seconds[0] += timeout
            raise AssertionError(f"{reader} did not finish within {timeout} s (a hang?)")
        try:
            outcome = receiver.recv()
        except EOFError:  # the child died without reporting
            outcome = None
        process.join(timeout)
        if outcome is None:
            raise AssertionError(f"{reader} crashed the process (exit code {process.exitcode})")
        return outcome
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
            process.join()
