"""Progress bars for the local engine, in bytes (known before reading).

Each split reports the file bytes of the blocks it decodes, capped at its own
byte range, and the rest of its range when it ends, so the total bar always
ends at exactly the plan's bytes: with many files, empty files, zero-record
blocks, or an early stop for ``n_rows``. Updates are deltas and thread-safe.
"""

from __future__ import annotations

import threading
from typing import Literal, Sequence, Union

from jetliner_dist.planning import AvroFile, Split

ProgressMode = Union[bool, Literal["total", "per-file"]]


class Progress:
    """No bar: every hook does nothing (the cost of ``progress=False``)."""

    def tracker(self, split: Split) -> "SplitTracker | None":
        return None

    def finish(self) -> None:
        """Bring every bar to its total and close it."""


class SplitTracker:
    """Counts one split's bytes against its range and forwards deltas."""

    __slots__ = ("_bars", "_left", "_lock")

    def __init__(self, bars: "_Bars", split: Split) -> None:
        self._bars = bars
        self._left = split.size
        self._lock = threading.Lock()

    def __call__(self, nbytes: int) -> None:
        with self._lock:
            step = min(nbytes, self._left)
            self._left -= step
        if step > 0:
            self._bars.update(step)

    def done(self) -> None:
        """The split ended: count what is left of its range."""
        self(self._left)


class _Bars(Progress):
    """A tqdm bar of the plan's bytes, and per-file bars under it if asked."""

    def __init__(self, files: Sequence[AvroFile], per_file: bool) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._lock = threading.Lock()
        self.total = sum(f.size for f in files)
        self.bar = tqdm(total=self.total, unit="B", unit_scale=True, unit_divisor=1024,
                        desc="reading Avro", dynamic_ncols=True)  # fmt: skip
        self.per_file = per_file
        # Keyed by the file's index in the plan: a path listed twice is two files.
        self._file_bars: dict[int, object] = {}
        self._file_left = {i: f.size for i, f in enumerate(files)}

    def tracker(self, split: Split) -> SplitTracker:
        if self.per_file:
            with self._lock:
                if split.file_index not in self._file_bars:
                    position = 1 + len(self._file_bars) % 8
                    self._file_bars[split.file_index] = self._tqdm(
                        total=split.file.size, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=split.file.path[-40:], position=position, leave=False,
                    )  # fmt: skip
        return _FileTracker(self, split) if self.per_file else SplitTracker(self, split)

    def update(self, nbytes: int, file_index: int | None = None) -> None:
        self.bar.update(nbytes)
        if file_index is not None:
            with self._lock:
                self._file_left[file_index] -= nbytes
                bar = self._file_bars.get(file_index)
                closing = self._file_left[file_index] <= 0
                if closing:
                    self._file_bars.pop(file_index, None)
            if bar is not None:
                bar.update(nbytes)
                if closing:
                    bar.close()

    def finish(self) -> None:
        rest = self.total - self.bar.n
        if rest > 0:
            self.bar.update(rest)
        for bar in list(self._file_bars.values()):
            bar.update(bar.total - bar.n)
            bar.close()
        self._file_bars.clear()
        self.bar.close()


class _FileTracker(SplitTracker):
    __slots__ = ("_file_index",)

    def __init__(self, bars: _Bars, split: Split) -> None:
        super().__init__(bars, split)
        self._file_index = split.file_index

    def __call__(self, nbytes: int) -> None:
        with self._lock:
            step = min(nbytes, self._left)
            self._left -= step
        if step > 0:
            self._bars.update(step, self._file_index)


def make_progress(mode: ProgressMode, files: Sequence[AvroFile]) -> Progress:
    """The progress reporter for ``progress=``: False, True/"total" or "per-file"."""
    if mode is False or mode is None:
        return Progress()
    if mode is True or mode == "total":
        return _Bars(files, per_file=False)
    if mode == "per-file":
        return _Bars(files, per_file=True)
    raise ValueError(f"progress must be False, True, 'total' or 'per-file', got {mode!r}")
