"""Byte sources: everything reading needs from a file is ``fetch(start, end)``.

A source is small and picklable where its origin allows (a path, a URL and its
storage options); it opens what it needs on each fetch, so it can travel to a
worker and be used from several threads at once.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from jetliner_dist.errors import SourceError


@runtime_checkable
class ByteSource(Protocol):
    """A readable file of known size."""

    path: str
    size: int

    def fetch(self, start: int, end: int) -> bytes | memoryview:
        """Bytes ``[start, end)``, fewer only at the end of the file."""


@dataclass(frozen=True, slots=True)
class MemorySource:
    """Bytes already in memory (``bytes``, ``bytearray``, a buffer)."""

    data: bytes | bytearray | memoryview
    path: str = "<bytes>"

    @property
    def size(self) -> int:
        return len(self.data)

    def fetch(self, start: int, end: int) -> memoryview:
        return memoryview(self.data)[start:end]


@dataclass(frozen=True, slots=True)
class LocalFileSource:
    """A file on local disk, read with positioned reads (safe across threads)."""

    path: str
    size: int

    @classmethod
    def open(cls, path: str | os.PathLike) -> "LocalFileSource":
        name = os.fspath(path)
        try:
            size = os.stat(name).st_size
        except FileNotFoundError:
            raise SourceError(f"no such file: {name!r}", path=name) from None
        except OSError as exc:
            raise SourceError(f"cannot open {name!r}: {exc}", path=name) from exc
        if os.path.isdir(name):
            raise SourceError(f"{name!r} is a directory, not an Avro file", path=name)
        return cls(name, size)

    def fetch(self, start: int, end: int) -> bytearray:
        out = bytearray(max(end - start, 0))
        return out[: self.readinto(start, out)]

    def mapped(self):
        """The whole file as a read-only uint8 array backed by a memory map.

        Lets a header walk (count_rows) touch only the pages it reads.
        """
        import mmap

        import numpy as np

        if self.size == 0:
            return np.zeros(0, dtype=np.uint8)
        try:
            with open(self.path, "rb") as f:
                view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise SourceError(f"cannot map {self.path!r}: {exc}", path=self.path) from exc
        return np.frombuffer(view, dtype=np.uint8)[: self.size]

    def readinto(self, start: int, out) -> int:
        """Read from ``start`` into the writable buffer ``out``; returns the count.

        Lets a reader reuse one window buffer instead of allocating (and
        page-faulting) a new one per window.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise SourceError(f"cannot open {self.path!r}: {exc}", path=self.path) from exc
        try:
            view = memoryview(out).cast("B")
            got = 0
            while got < len(view):  # a short read before the end: keep reading
                n = os.preadv(fd, [view[got:]], start + got)
                if n == 0:
                    break
                got += n
            return got
        except OSError as exc:
            raise SourceError(f"cannot read {self.path!r}: {exc}", path=self.path) from exc
        finally:
            os.close(fd)


class FileObjectSource:
    """An open binary file object (seekable). Not picklable: local engines only."""

    def __init__(self, fileobj: io.IOBase, path: str | None = None) -> None:
        self._file = fileobj
        self.path = path or str(getattr(fileobj, "name", "<file object>"))
        try:
            self.size = fileobj.seek(0, io.SEEK_END)
        except (OSError, ValueError) as exc:
            raise SourceError(f"file object {self.path!r} is not seekable: {exc}") from exc

    def fetch(self, start: int, end: int) -> bytes:
        try:
            self._file.seek(start)
            return self._file.read(end - start)
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot read {self.path!r}: {exc}", path=self.path) from exc


@dataclass(frozen=True, slots=True)
class FsspecSource:
    """A file on any fsspec file system (``s3://``, ``gs://``, ``memory://`` ...).

    Only the protocol, path and storage options travel; the file system is
    made on first use in each process (fsspec caches instances), never shipped.
    """

    protocol: str
    path: str
    size: int
    storage_options: tuple[tuple[str, Any], ...] = ()

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.path}"

    def filesystem(self):
        import fsspec

        return fsspec.filesystem(self.protocol, **dict(self.storage_options))

    def fetch(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        try:
            return self.filesystem().cat_file(self.path, start=start, end=end)
        except FileNotFoundError:
            raise SourceError(f"no such object: {self.url!r}", path=self.url) from None
        except OSError as exc:
            raise SourceError(f"cannot read {self.url!r}: {exc}", path=self.url) from exc


def is_url(path: str) -> bool:
    """True for ``protocol://...`` paths (``file://`` included)."""
    return "://" in path


def split_protocol(url: str) -> tuple[str, str]:
    protocol, _, rest = url.partition("://")
    return protocol, rest


def source_for(path: str, size: int, storage_options: dict | None = None) -> ByteSource:
    """The byte source of a path or URL that discovery found (size known)."""
    if not is_url(path):
        return LocalFileSource(path, size)
    protocol, rest = split_protocol(path)
    if protocol in ("file", "local"):
        return LocalFileSource(rest, size)
    return FsspecSource(protocol, rest, size, freeze_options(storage_options))


def freeze_options(storage_options: dict | None) -> tuple[tuple[str, Any], ...]:
    """Storage options as a hashable, picklable tuple (sorted by key)."""
    return tuple(sorted((storage_options or {}).items()))
