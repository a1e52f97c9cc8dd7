"""Byte sources: everything reading needs from a file is ``fetch(start, end)``.

A source is small and picklable where its origin allows (a path, a URL and its
storage options); it opens what it needs on each fetch, so it can travel to a
worker and be used from several threads at once.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Protocol, Union, runtime_checkable,
)

from jetliner_dist.errors import JetlinerDistError, ObjectChangedError, SourceError

if TYPE_CHECKING:
    import numpy as np

# What a fetch returns: readers take any of these as a buffer of bytes.
Buffer = Union[bytes, bytearray, memoryview, "np.ndarray"]


@runtime_checkable
class ByteSource(Protocol):
    """A readable file of known size."""

    path: str
    size: int

    def fetch(self, start: int, end: int) -> Buffer:
        """Bytes ``[start, end)``, fewer only at the end of the file."""


def request_size(source: ByteSource) -> int | None:
    """Bytes to ask for per request from ``source`` if each request costs a
    round trip (object stores); None for local files and bytes in memory."""
    return getattr(source, "read_size", None)


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

    def readinto(self, start: int, out) -> int:
        """Read from ``start`` into the writable buffer ``out``; returns the count.

        Lets a reader reuse one window buffer instead of allocating (and
        page-faulting) a new one per window.
        """
        with self.descriptor() as fd:
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

    @contextlib.contextmanager
    def descriptor(self) -> Iterator[int]:
        """The file opened read-only, as a descriptor for positioned reads."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise SourceError(f"cannot open {self.path!r}: {exc}", path=self.path) from exc
        try:
            yield fd
        finally:
            os.close(fd)


class FileObjectSource:
    """An open binary file object (seekable). Not picklable: local engines only."""

    def __init__(self, fileobj: io.IOBase, path: str | None = None) -> None:
        self._file = fileobj
        # Splits are read on several threads; seek + read must not interleave.
        self._lock = threading.Lock()
        self.path = path or str(getattr(fileobj, "name", "<file object>"))
        try:
            self.size = fileobj.seek(0, io.SEEK_END)
        except (OSError, ValueError) as exc:
            raise SourceError(f"file object {self.path!r} is not seekable: {exc}") from exc

    def fetch(self, start: int, end: int) -> bytes:
        try:
            with self._lock:
                self._file.seek(start)
                return self._file.read(end - start)
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot read {self.path!r}: {exc}", path=self.path) from exc


# Object stores answer each request after tens of milliseconds, whatever its
# size: a split is read in a few requests this large rather than many small ones.
REMOTE_READ_SIZE = 16 * 1024 * 1024
# Attempts per range read for failures the file system did not retry itself
# (on S3: a connection dropped while the body streams). Full-jitter backoff.
FETCH_ATTEMPTS = 3
RETRY_BASE_DELAY = 0.2
RETRY_MAX_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class FsspecSource:
    """A file on any fsspec file system (``s3://``, ``gs://``, ``memory://`` ...).

    Only the protocol, path and storage options travel; the file system is
    made on first use in each process (fsspec caches instances), never shipped.

    ``version`` is what the listing said identifies the content (S3 ETag, GCS
    generation, a modification time). With it, a read of an object that
    changed after planning raises :class:`ObjectChangedError` instead of
    returning new bytes: on S3 every ranged GET carries ``If-Match`` and its
    ETag and ``Content-Range`` size are checked (no extra request); other file
    systems compare ``info()`` after each read (one metadata request).

    Transient failures are retried: s3fs and botocore retry failed requests
    (HTTP 500/503, throttling, resets; tune with the ``retries`` and
    ``config_kwargs`` storage options), and each read retries what escapes
    them (a body cut short) up to :data:`FETCH_ATTEMPTS` times. Permanent
    failures (missing object, access denied) raise at once.
    """

    protocol: str
    path: str
    size: int
    storage_options: tuple[tuple[str, Any], ...] = ()
    version: str | None = None

    read_size: ClassVar[int] = REMOTE_READ_SIZE

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.path}"

    def filesystem(self):
        import fsspec

        return fsspec.filesystem(self.protocol, **dict(self.storage_options))

    def fetch(self, start: int, end: int) -> Buffer:
        end = min(end, self.size)
        if end <= start:
            return b""
        fs = self.filesystem()
        if _is_s3(fs):  # s3fs has retried what it could, but a body cut short
            data = self._retrying(lambda: self._s3_get(fs, start, end), any_transient=False)
        else:
            data = self._retrying(lambda: self._get(fs, start, end), any_transient=True)
        if len(data) != end - start:  # the object is shorter than planned
            raise self._changed(f"returned {len(data)} of the bytes [{start}, {end})")
        return data

    @classmethod
    def open_s3_object(
        cls, fs, protocol: str, path: str, storage_options: dict | None, length: int
    ) -> tuple["FsspecSource", bytes] | None:
        """An S3 object's source (size and ETag known) and its first ``length``
        bytes, from one ranged GET: what ``info()`` (a HEAD) and a header
        read would take two round trips for.

        None when ``fs`` is not S3, when no object has that key (a prefix,
        perhaps) and for an empty object (no range to read): the caller then
        asks ``info()``. Other failures raise the typed error a read would.
        """
        if not _is_s3(fs):
            return None
        from fsspec.asyn import sync

        probe = cls(protocol, path, 0, freeze_options(storage_options))
        bucket, key, version_id = fs.split_path(path)

        def get():
            try:
                return sync(fs.loop, _s3_range, fs, bucket, key, version_id, 0, length, None)
            except FileNotFoundError:
                return None
            except Exception as exc:
                if _error_code(exc) in ("InvalidRange", "416"):
                    return None
                raise

        got = probe._retrying(get, any_transient=False)
        if got is None:
            return None
        data, etag, content_range = got
        total = (content_range or "").rpartition("/")[2]
        if not total.isdigit():
            return None
        return cls(protocol, path, int(total), probe.storage_options, etag), bytes(data)

    def _retrying(self, read: Callable[[], Any], any_transient: bool) -> Any:
        """``read()``, tried again with backoff after a response body broke
        off, and after any transient error if ``any_transient`` (file systems
        that do not retry on their own)."""
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            try:
                return read()
            except JetlinerDistError:
                raise
            except _BodyError as exc:
                error = exc.error
            except Exception as exc:
                if not any_transient or not _is_transient(exc):
                    raise self._permanent_error(exc) from exc
                error = exc
            if attempt == FETCH_ATTEMPTS:
                raise SourceError(
                    f"cannot read {self.url!r} after {attempt} attempts: {_describe(error)}",
                    path=self.url,
                ) from error
            delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** (attempt - 1))
            time.sleep(random.uniform(0, delay))

    def _get(self, fs, start: int, end: int) -> bytes:
        # The whole URL: some file systems (http) need their protocol back.
        data = fs.cat_file(self.url, start=start, end=end)
        if self.version is not None:
            fs.invalidate_cache(self.url)  # ask the store, not fsspec's listing cache
            info = fs.info(self.url)
            version = object_version(info)
            if int(info.get("size", -1)) != self.size or (version and version != self.version):
                raise self._changed(f"is now {info.get('size')} bytes, version {version!r}")
        return data

    def _s3_get(self, fs, start: int, end: int) -> bytes:
        from fsspec.asyn import sync

        bucket, key, version_id = fs.split_path(self.path)
        # S3 listings give quoted ETags; any other version (a time) cannot be
        # a precondition, and then only the size is checked.
        planned = self.version if self.version and self.version.startswith('"') else None
        # Stores without If-Match support (s3fs's local_expiry_check) get the
        # returned ETag compared instead.
        condition = None if getattr(fs, "local_expiry_check", False) else planned
        data, etag, content_range = sync(
            fs.loop, _s3_range, fs, bucket, key, version_id, start, end, condition
        )
        total = content_range.rpartition("/")[2] if content_range else ""
        if total.isdigit() and int(total) != self.size:
            raise self._changed(f"is now {total} bytes")
        if planned and etag and etag.strip('"') != planned.strip('"'):
            raise self._changed(f"now has ETag {etag}")
        return data

    def _changed(self, what: str) -> ObjectChangedError:
        return ObjectChangedError(
            f"{self.url!r} changed after it was planned ({self.size} bytes, version "
            f"{self.version!r}): it {what}; plan the read again",
            path=self.url,
        )

    def _permanent_error(self, exc: BaseException) -> SourceError:
        code = _error_code(exc)
        if code in ("PreconditionFailed", "412"):
            return self._changed("no longer matches the planned ETag")
        if code in ("InvalidRange", "416"):
            return self._changed("is shorter than planned")
        if isinstance(exc, FileNotFoundError):
            if self.version is not None:
                return self._changed("no longer exists")
            return SourceError(f"no such object: {self.url!r}", path=self.url)
        if isinstance(exc, PermissionError) or _http_status(exc) in (401, 403):
            return SourceError(
                f"access denied to {self.url!r}: {exc}; check the credentials in "
                "storage_options",
                path=self.url,
            )
        return SourceError(f"cannot read {self.url!r}: {_describe(exc)}", path=self.url)


class _BodyError(Exception):
    """A response body that broke off while streaming (s3fs does not retry it here)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


async def _s3_range(fs, bucket, key, version_id, start, end, if_match):
    """One ranged GET: the body, the object's ETag and the Content-Range.

    The request itself goes through s3fs, which retries it (and botocore under
    it); a failure while the body streams comes back as a :class:`_BodyError`.
    """
    extra = {"VersionId": version_id} if version_id else {}
    if if_match:
        extra["IfMatch"] = if_match
    response = await fs._call_s3(
        "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra
    )
    try:
        data = await _read_body(response["Body"], end - start)
    except ValueError:
        raise  # more bytes than asked for: no fault that another try mends
    except Exception as exc:
        raise _BodyError(exc) from exc
    finally:
        response["Body"].close()
    return data, response.get("ETag"), response.get("ContentRange")


# Response bodies are read in pieces of this size into one buffer.
BODY_PIECE = 1024 * 1024


async def _read_body(body, size: int):
    """A response body of ``size`` bytes (fewer if it ends early) as a uint8
    array from Arrow's pool, filled piece by piece.

    Not the body's own ``read()``: it joins the body into one ``bytes``, and
    glibc gives such blocks back to the system when two of them are free at
    once (concurrent splits; the ``complex`` file's two), so every read
    page-faulted some 30 MB anew in the event loop's thread. Arrow's pool
    keeps what the loop's thread allocated for its next request.
    """
    from jetliner_dist.avro.buffers import byte_buffer

    out = byte_buffer(size)
    view = memoryview(out)
    got = 0
    async for piece in body.iter_chunks(BODY_PIECE):
        if got + len(piece) > size:
            raise ValueError(f"the response holds more than the {size} bytes asked for")
        view[got : got + len(piece)] = piece
        got += len(piece)
    return out[:got]


def _is_s3(fs) -> bool:
    """Whether ``fs`` is s3fs (duck-typed, so s3fs is imported only by fsspec)."""
    return hasattr(fs, "_call_s3") and hasattr(fs, "split_path")


# HTTP statuses worth another try, and the transient errors of HTTP stacks
# that carry no errno (aiohttp, botocore, requests), by class name so none is
# imported here.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_NAMES = frozenset({
    "ClientPayloadError", "ServerDisconnectedError", "ClientConnectionError",
    "HTTPClientError", "IncompleteReadError", "ResponseStreamingError", "IncompleteRead",
    "ResponseParserError", "ConnectionError", "ChunkedEncodingError",
})  # fmt: skip
_PERMANENT_ERRNOS = frozenset({errno.EINVAL, errno.ENOENT, errno.EACCES, errno.EPERM})


def _is_transient(exc: BaseException) -> bool:
    """Whether a failed read of a generic fsspec file system is worth retrying.

    An ``OSError`` without an errno is a file system's own message (gcsfs
    says "Forbidden" that way): transient only if its class says so. Errors
    of azure-core (``status_code``, no ``status``) come after the Azure SDK's
    own retries and are not retried again.
    """
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status in _RETRY_STATUSES
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno not in _PERMANENT_ERRNOS
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries: aiohttp's ``status``, azure-core's
    ``status_code``."""
    for name in ("status", "status_code"):
        status = getattr(exc, name, None)
        if isinstance(status, int):
            return status
    return None


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchKey``, ``PreconditionFailed``...) behind ``exc``."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code"))
        exc = exc.__cause__
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def object_version(info: dict) -> str | None:
    """What identifies an object's content in an fsspec ``info()``/listing entry.

    GCS's generation comes before its etag: the etag also changes when only
    the object's metadata does, which is no reason to fail a read.
    """
    for key in ("ETag", "generation", "etag", "md5Hash", "mtime", "LastModified", "created"):
        value = info.get(key)
        if value is not None:
            # A time may come as a datetime from info() and a float from a listing.
            return str(value.timestamp() if hasattr(value, "timestamp") else value)
    return None


def is_url(path: str) -> bool:
    """True for ``protocol://...`` paths (``file://`` included)."""
    return "://" in path


def is_remote(path: str) -> bool:
    """True for paths read through fsspec (object stores, HTTP, memory://),
    false for local files, ``file://`` URLs included."""
    return is_url(path) and split_protocol(path)[0] not in _LOCAL_PROTOCOLS


_LOCAL_PROTOCOLS = ("file", "local")


def split_protocol(url: str) -> tuple[str, str]:
    protocol, _, rest = url.partition("://")
    return protocol, rest


def source_for(
    path: str, size: int, storage_options: dict | None = None, version: str | None = None
) -> ByteSource:
    """The byte source of a path or URL that discovery found (size known).

    ``version`` (from the listing) makes remote reads fail on a changed object.
    """
    if not is_url(path):
        return LocalFileSource(path, size)
    protocol, rest = split_protocol(path)
    if not is_remote(path):
        return LocalFileSource(rest, size)
    return FsspecSource(protocol, rest, size, freeze_options(storage_options), version)


def freeze_options(storage_options: dict | None) -> tuple[tuple[str, Any], ...]:
    """Storage options as a picklable tuple, in the order given.

    fsspec caches file systems by their options, order included: keeping it
    lets reads reuse the instance (and connections) that listing made.
    """
    return tuple((storage_options or {}).items())
