"""Read-ahead for object stores: fetch a split's next window while this one decodes.

An object store answers a ranged GET after tens of milliseconds and then
streams it at a limited rate per connection; decoding a window takes about as
long again. A split reading its windows one after the other pays both in turn.
With read-ahead, the request for the bytes after the current window is in
flight while the current window decodes, so a split costs about the larger of
the two instead of their sum.

The walk over a split's blocks asks for windows that start where its last
complete block ended: usually a little before the current window's end, since
the window ends inside a block. :meth:`ReadAhead.window` joins that partial
block (already in hand) to the range fetched ahead, so no byte is requested
twice.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class _Pending:
    """One background fetch of ``[start, end)``."""

    def __init__(self, fetch: Callable[[int, int], Any], start: int, end: int) -> None:
        self.start, self.end = start, end
        self._data = b""
        self._error: BaseException | None = None
        # A thread per window: a window is megabytes fetched over tens of
        # milliseconds, so starting a thread is noise, and a split that stops
        # early can leave it to finish on its own, holding nothing of the reader.
        self._thread = threading.Thread(
            target=self._run, args=(fetch,), name="jetliner-dist-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, fetch: Callable[[int, int], Any]) -> None:
        try:
            self._data = fetch(self.start, self.end)
        except BaseException as exc:  # raised where the window is used
            self._error = exc

    def result(self) -> bytes:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._data


class ReadAhead:
    """Windows of one split, each fetched while the one before it is used.

    Only bytes before ``stop`` (the split's end) are fetched ahead: past it a
    split wants just the rest of its last block, which a plain fetch reads.
    Each call gets ``limit``, the furthest byte the split may still need (its
    end plus a tail, or the file's end). Errors of a fetch made ahead are
    raised by the call that needs its bytes, as a plain fetch would have.
    """

    def __init__(self, fetch: Callable[[int, int], Any], size: int, stop: int) -> None:
        self._fetch = fetch
        self._size = size
        self._stop = stop
        self._pending: _Pending | None = None

    def ahead(self, start: int, limit: int) -> None:
        """Start fetching ``[start, min(start + size, limit))`` if ``start`` is
        before the split's end and that fetch is not under way yet."""
        if self._pending is not None and self._pending.start == start:
            return
        end = min(start + self._size, limit)
        self._pending = _Pending(self._fetch, start, end) if start < min(end, self._stop) else None

    def window(self, start: int, end: int, previous, previous_start: int, limit: int):
        """Bytes from ``start`` to at least ``end`` (fewer only at the end of
        the source); ``previous`` is the window in hand, which begins at
        ``previous_start``. Starts fetching the bytes after the result."""
        pending, self._pending = self._pending, None
        previous_end = previous_start + len(previous)
        if pending is None or pending.start != previous_end or not previous_start <= start <= previous_end:
            data = self._fetch(start, end)
        else:
            data = joined(previous[start - previous_start :], pending.result())
            if start + len(data) < end:  # a block larger than the window
                data = joined(data, self._fetch(start + len(data), end))
        self.ahead(start + len(data), limit)
        return data


def joined(head, tail):
    """``head + tail`` for any two byte buffers, in one uint8 array from
    Arrow's pool (windows are megabytes: ``bytes`` from glibc would be given
    back to the system and faulted in again by the next split)."""
    from jetliner_dist.avro.buffers import byte_buffer

    out = byte_buffer(len(head) + len(tail))
    view = memoryview(out)
    view[: len(head)] = head
    view[len(head) :] = tail
    return out
