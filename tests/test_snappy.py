"""The GIL-free snappy kernel against cramjam's snappy (an independent
implementation): equal output for any data, typed failures for any damage,
and the per-block fallback reading files identically.

Payloads are read the way files are: each is a block of a file whose records
are single bytes (``fixed(1)``), so a block's decompressed data is exactly the
values the reader returns, and the kernel inflates it as it decodes it.
"""

from __future__ import annotations

import cramjam
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isal.isal_zlib import crc32

import jetliner_dist as jd
import jetliner_dist.avro.snappy as snappy
from blocks import write
from corruption import block, header, snappy_with_preamble, uvarint
from jetliner_dist.errors import DecompressionError

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _avro_snappy(raw: bytes) -> bytes:
    """An Avro snappy block payload: raw snappy, then the big-endian CRC32."""
    return bytes(cramjam.snappy.compress_raw(raw)) + crc32(raw).to_bytes(4, "big")


BYTE = {"type": "fixed", "name": "byte", "size": 1}
# How the reader words each way a block's data can fail to inflate.
CORRUPT = "snappy data is corrupt"
SHORT = "snappy data decompressed to fewer bytes"
CHECKSUM = "snappy block checksum"


def _read(payloads: list[bytes], counts: list[int] | None = None) -> bytes | DecompressionError:
    """Read a snappy file whose blocks carry ``payloads`` (``counts`` records
    each, by default what the payloads decompress to): the bytes read, or the
    decompression error raised."""
    if counts is None:
        counts = [len(cramjam.snappy.decompress_raw(p[:-4])) for p in payloads]
    data = header(BYTE, codec="snappy") + b"".join(block(n, p) for n, p in zip(counts, payloads))
    try:
        table = jd.read_table(data)
    except DecompressionError as error:
        return error
    return b"".join(table.column("value").to_pylist())


# Text with repeats at every distance: snappy emits literals of every length
# class and copies with 1-, 2- and 4-byte offsets, overlapping ones included.
pieces = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=9), st.integers(1, 400)),
    st.builds(lambda n: bytes(range(256)) * n, st.integers(1, 300)),
)
blobs = st.lists(pieces, max_size=12).map(b"".join)


def test_the_crc32_function_is_found():
    assert snappy.crc32_address() is not None


@SETTINGS
@given(raws=st.lists(blobs, min_size=1, max_size=6))
def test_inflates_like_cramjam(raws):
    assert _read([_avro_snappy(raw) for raw in raws]) == b"".join(raws)


def test_long_literals_and_far_copies():
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()  # literals over 65,536 bytes
    far = noise[:70_000] + bytes(100_000) + noise[:70_000]  # a copy from 170,000 bytes back
    assert _read([_avro_snappy(noise), _avro_snappy(far)]) == noise + far


@SETTINGS
@given(raw=blobs.filter(len), data=st.data())
def test_damage_is_reported_never_undetected(raw, data):
    """Any bytes flipped in a block's snappy data or checksum: the kernel
    either names the block or, when the damage left the data intact (a
    changed literal that the checksum then catches), reports the checksum."""
    payload = bytearray(_avro_snappy(raw))
    first = (len(raw).bit_length() + 6) // 7  # past the size preamble (a varint)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(first, len(payload) - 1))
        payload[at] ^= data.draw(st.integers(1, 255))
    good = _avro_snappy(b"intact" * 50)
    # The flips may change the preamble's size too: the block keeps its count.
    result = _read([good, bytes(payload)], counts=[300, len(raw)])
    if isinstance(result, bytes):  # only if the flips cancelled out to the same output
        assert result == b"intact" * 50 + raw
    else:
        assert result.block == 1 and result.offset is not None
        assert str(result).startswith((CORRUPT, SHORT, CHECKSUM))


def test_truncated_data_is_corrupt_not_read_past():
    raw = b"abcdefgh" * 1000 + bytes(range(256)) * 8
    whole = bytes(cramjam.snappy.compress_raw(raw))
    for cut in (len(whole) // 3, len(whole) - 1):
        payload = whole[:cut] + crc32(raw).to_bytes(4, "big")
        error = _read([payload], counts=[len(raw)])
        assert isinstance(error, DecompressionError) and error.block == 0
        assert str(error).startswith((CORRUPT, SHORT))


def test_each_failure_names_its_reason_and_block():
    raw = b"0123456789abcdef" * 64
    good = _avro_snappy(raw)
    preamble = len(uvarint(len(raw)))
    cases = {
        CHECKSUM: good[:-4] + bytes(4),
        SHORT: snappy_with_preamble(len(raw), raw[:-16]),
        # 0xFF tags: copies from 2**32 - 1 bytes back, before the output's start
        CORRUPT: good[:preamble] + b"\xff" * (len(good) - preamble - 4) + good[-4:],
    }
    for reason, bad in cases.items():
        error = _read([good, good, bad, good], counts=[len(raw)] * 4)
        assert isinstance(error, DecompressionError), reason
        assert str(error).startswith(reason) and error.block == 2, (reason, str(error))


def _snappy_file(rows: int) -> bytes:
    schema = {"type": "record", "name": "R",
              "fields": [{"name": "i", "type": "long"}, {"name": "s", "type": "string"}]}
    return write(schema, [{"i": i, "s": f"v{i % 97}" * (i % 5)} for i in range(rows)],
                 codec="snappy", sync_interval=2000)  # fmt: skip


def test_per_block_fallback_reads_the_same(monkeypatch):
    """Without ISA-L's exported CRC32, readers decompress block by block with
    cramjam: same rows, same typed errors."""
    data = _snappy_file(20_000)
    fast = jd.read_table(data)
    monkeypatch.setattr(snappy, "crc32_address", lambda: None)
    slow = jd.read_table(data)
    assert slow.equals(fast) and slow.num_rows == 20_000
    broken = bytearray(data)
    broken[len(data) // 2] ^= 0xFF
    with pytest.raises(DecompressionError, match="snappy"):
        jd.read_table(bytes(broken))


def test_threads_inflate_in_parallel_with_equal_results():
    data = _snappy_file(50_000)
    one = jd.read_table(data, max_workers=1)
    two = jd.read_table(data, max_workers=2, split_size=20_000)
    assert isinstance(two, pa.Table) and two.equals(one)
