"""moto's S3 server, answering a ranged GET from the bytes of the range only.

    python -m benchmarks.moto_ranges -H 127.0.0.1 -p 5000    # moto.server's options

moto answers every GET by copying the whole stored object, and a ranged GET
then slices that copy: a 1 MiB range of a 52 MB object costs the server 25 ms
of CPU, a 16 MiB range 30 ms (6-7 ms when only the range is read). An object
store's work grows with the bytes it sends, not with the object's size; on a
small machine, where the server shares the cores with the reader, moto's copy
would be charged to the reader as if S3 made it. ``benchmarks.s3_bench`` runs
this server unless told ``--stock-moto``; everything else is moto's own code.
"""

from __future__ import annotations

import re
import sys
import threading

import moto
from moto.s3 import models, responses

# A single range with a start ("bytes=a-b" or "bytes=a-"): what readers send.
# Anything else (suffix ranges, several ranges, junk) takes moto's own path.
_ONE_RANGE = re.compile(r"bytes=(\d+)-(\d*)")

_ranged = threading.local()


class _StoredBytes:
    """An object's bytes as moto's range handling uses them (``len`` and one
    slice), read from its buffer when sliced instead of copied in full first."""

    def __init__(self, key: models.FakeKey) -> None:
        self._key = key

    def __len__(self) -> int:
        return self._key.contentsize

    def __getitem__(self, part: slice) -> bytes:
        with self._key.lock:  # the lock moto's own reads of the buffer take
            self._key._value_buffer.seek(part.start)
            return self._key._value_buffer.read(part.stop - part.start)


def _is_one_range(header: str) -> bool:
    match = _ONE_RANGE.fullmatch(header)
    return bool(match) and (not match[2] or int(match[2]) >= int(match[1]))


def install() -> None:
    """Patch moto in this process; fails at once if moto's internals moved."""
    stock_value = models.FakeKey.value
    stock_get = responses.S3Response._key_response_get
    handles_ranges = hasattr(responses.S3Response, "_handle_range_header")
    if not isinstance(stock_value, property) or not handles_ranges:
        raise RuntimeError(
            f"moto {moto.__version__} reads objects differently; run s3_bench with --stock-moto"
        )

    def value(key: models.FakeKey):
        if getattr(_ranged, "active", False):
            return _StoredBytes(key)
        return stock_value.fget(key)

    def key_response_get(self, query, key_name):
        _ranged.active = _is_one_range(self.headers.get("range", ""))
        try:
            return stock_get(self, query, key_name)
        finally:
            _ranged.active = False

    models.FakeKey.value = property(value, stock_value.fset)
    responses.S3Response._key_response_get = key_response_get


if __name__ == "__main__":
    from moto.server import main

    install()
    main(sys.argv[1:])
