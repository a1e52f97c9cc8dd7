"""Discovery: turn what the user passed into files with sizes and headers.

All I/O that planning needs happens here and finishes before planning starts:
listing (sizes come from the listing, no request per file), then the headers
of all files, read concurrently.
"""

from __future__ import annotations

import glob as globbing
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from jetliner_dist.avro.codecs import get_codec
from jetliner_dist.avro.header import FIRST_READ, read_header
from jetliner_dist.errors import JetlinerDistError, SourceError
from jetliner_dist.planning import AvroFile, check_same_schema
from jetliner_dist.sources import (
    ByteSource,
    FileObjectSource,
    FsspecSource,
    MemorySource,
    is_url,
    object_version,
    request_size,
    source_for,
    split_protocol,
)

_GLOB_CHARS = frozenset("*?[")
# Header reads in flight at once on object stores, which reward concurrency.
HEADER_THREADS = 32


@dataclass
class Discovered:
    """Files in order, their shared writer schema, and sources that cannot be
    reopened from a path (bytes, file objects), keyed by their path.

    ``fetched`` holds objects of a store so small that reading their header
    fetched them whole (one response, so one version of the object): the
    local engine decodes them from those bytes instead of asking again.
    """

    files: list[AvroFile]
    schema_json: str
    memory: dict[str, ByteSource] = field(default_factory=dict)
    fetched: dict[str, ByteSource] = field(default_factory=dict)

    @property
    def in_memory(self) -> dict[str, ByteSource]:
        """Sources of every file whose bytes are in memory, by path."""
        return {**self.fetched, **self.memory}

    def source(self, file: AvroFile, storage_options: dict | None) -> ByteSource:
        in_memory = self.memory.get(file.path) or self.fetched.get(file.path)
        return in_memory or source_for(file.path, file.size, storage_options)


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str
    size: int
    version: str | None = None
    # The file's first bytes when listing fetched them (an S3 object named
    # alone): its header is read from them instead of asked for again.
    start: bytes | None = None


def discover(source: Any, storage_options: dict | None = None) -> Discovered:
    """List ``source`` and read every file's header."""
    memory: dict[str, ByteSource] = {}
    entries: list[_Entry] = []
    for item in _items(source):
        if isinstance(item, (bytes, bytearray, memoryview)):
            name = "<bytes>" if not memory else f"<bytes {len(memory)}>"
            src: ByteSource = MemorySource(item, path=name)
        elif isinstance(item, (io.IOBase,)) or hasattr(item, "read"):
            src = FileObjectSource(item)
            if src.path in memory:
                src.path = f"{src.path} <{len(memory)}>"
        else:
            entries.extend(_expand(os.fspath(item), storage_options))
            continue
        memory[src.path] = src
        entries.append(_Entry(src.path, src.size))
    if not entries:
        raise SourceError(f"no Avro files found in {source!r}")
    sources = [memory.get(e.path) or source_for(e.path, e.size, storage_options) for e in entries]
    headers = _read_headers(entries, sources)
    schema = check_same_schema([(file, schema) for file, schema, _ in headers])
    return Discovered([file for file, _, _ in headers], schema, memory, _kept_whole(headers))


# Planning a prefix of many small objects keeps at most this many of their
# bytes (those its header reads fetched whole) for the read that follows.
FETCHED_BYTES_KEPT = 64 * 1024 * 1024


def _kept_whole(headers: Sequence[tuple[AvroFile, str, bytes | None]]) -> dict[str, ByteSource]:
    kept: dict[str, ByteSource] = {}
    total = 0
    for file, _, whole in headers:
        if whole is not None and total + len(whole) <= FETCHED_BYTES_KEPT:
            kept[file.path] = MemorySource(whole, path=file.path)
            total += len(whole)
    return kept


def _items(source: Any) -> Iterable[Any]:
    if isinstance(source, (list, tuple)):
        if not source:
            raise SourceError("the list of sources is empty")
        return source
    return [source]


def _expand(path: str, storage_options: dict | None) -> list[_Entry]:
    """The files a path, glob or directory names, sorted, with sizes."""
    if is_url(path):
        protocol, rest = split_protocol(path)
        if protocol not in ("file", "local"):
            return _expand_fsspec(protocol, rest, storage_options)
        path = rest
    return _expand_local(path)


def _expand_local(path: str) -> list[_Entry]:
    if _GLOB_CHARS & set(path):
        names = sorted(p for p in globbing.glob(path, recursive=True) if os.path.isfile(p))
        if not names:
            raise SourceError(f"no files match {path!r}", path=path)
    elif os.path.isdir(path):
        names = []
        for root, dirs, files in os.walk(path):
            # Hidden and underscore directories hold no data (.git, Spark's _temporary).
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            names.extend(os.path.join(root, name) for name in files if _is_data_file(name))
        names.sort()
        if not names:
            raise SourceError(f"directory {path!r} has no .avro files", path=path)
    else:
        names = [path]
    entries = []
    for name in names:
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            raise SourceError(f"no such file: {name!r}", path=name) from None
        except OSError as exc:
            raise SourceError(f"cannot open {name!r}: {exc}", path=name) from exc
        entries.append(_Entry(name, stat.st_size, str(stat.st_mtime_ns)))
    return entries


def _expand_fsspec(protocol: str, path: str, storage_options: dict | None) -> list[_Entry]:
    import fsspec

    fs = fsspec.filesystem(protocol, **(storage_options or {}))
    # fsspec caches listings per file system instance (s3fs's glob and info
    # answer from it): a plan must see the objects as they are now, or a
    # re-plan after an ObjectChangedError would list the stale version again.
    fs.invalidate_cache()
    url = f"{protocol}://{path}"
    try:
        # A "?" in an http(s) URL starts its query (a presigned URL), not a glob.
        if _GLOB_CHARS & set(path) and protocol not in ("http", "https"):
            found = fs.glob(url, detail=True)
        elif (first := _object_start(fs, protocol, path, storage_options)) is not None:
            return [first]
        else:
            # info() first: one HEAD for an object, where isdir() would list
            # (and over http download the whole file to look for links).
            # fsspec calls get the whole URL: http needs its protocol.
            info = fs.info(url)
            if info.get("type") == "directory":
                root = fs._strip_protocol(url).rstrip("/")
                found = {
                    name: info
                    for name, info in fs.find(url, detail=True).items()
                    if _is_data_file(name.rsplit("/", 1)[-1])
                    and not _in_hidden_dir(fs._strip_protocol(name), root)
                }
            else:
                found = {url: info}
    except FileNotFoundError:
        raise SourceError(f"no such object: {url!r}", path=url) from None
    except JetlinerDistError:
        raise
    except Exception as exc:  # OSError, and what HTTP stacks raise (aiohttp, botocore)
        raise SourceError(f"cannot list {url!r}: {type(exc).__name__}: {exc}", path=url) from exc
    entries = [
        _Entry(f"{protocol}://{name.split('://')[-1]}", int(info["size"]), object_version(info))
        for name, info in sorted(found.items())
        if info.get("type", "file") != "directory"
    ]
    if not entries:
        raise SourceError(f"no Avro files match {url!r}", path=url)
    return entries


def _object_start(fs, protocol: str, path: str, storage_options: dict | None) -> _Entry | None:
    """An S3 object named alone, with its first bytes, from one request
    (None: not S3, a bucket, a prefix, or an empty object)."""
    if path.endswith("/") or "/" not in path.split("?")[0]:  # "/": a prefix; none: a bucket
        return None
    found = FsspecSource.open_s3_object(fs, protocol, path, storage_options, FIRST_READ)
    if found is None:
        return None
    source, start = found
    return _Entry(source.url, source.size, source.version, start)


def _in_hidden_dir(path: str, root: str) -> bool:
    """Whether ``path`` lies in a hidden or underscore directory below ``root``."""
    relative = path[len(root):].strip("/") if path.startswith(root) else path
    return any(part.startswith((".", "_")) for part in relative.split("/")[:-1])


def _is_data_file(name: str) -> bool:
    """Avro files of a directory: ``*.avro``, not hidden (``.x``, ``_SUCCESS``)."""
    return name.endswith(".avro") and not name.startswith((".", "_"))


def _read_headers(
    entries: Sequence[_Entry], sources: Sequence[ByteSource]
) -> list[tuple[AvroFile, str, bytes | None]]:
    # Remote headers wait on the network, so many are fetched at once; local
    # ones are parsed faster on one thread than by threads taking turns on the GIL.
    remote = any(request_size(source) for source in sources)
    if len(entries) == 1 or not remote:
        return list(map(_header, entries, sources))
    with ThreadPoolExecutor(min(HEADER_THREADS, len(entries))) as pool:
        return list(pool.map(_header, entries, sources))


def _header(entry: _Entry, source: ByteSource) -> tuple[AvroFile, str, bytes | None]:
    """The file, its writer schema, and its bytes if the header read of an
    object in a store fetched it whole."""
    whole: list[bytes] = []

    def fetch(start: int, end: int):
        if entry.start is not None and end <= len(entry.start):
            data = entry.start[start:end]
        else:
            data = bytes(source.fetch(start, end))  # a header: parsed as bytes
        if start == 0 and len(data) == entry.size:
            whole.append(bytes(data))
        return data

    remote = request_size(source) is not None
    try:
        header = read_header(fetch if remote else source.fetch, entry.size)
        get_codec(header.codec)  # an unknown codec fails here, before any data
    except JetlinerDistError as exc:
        raise exc.with_context(path=entry.path) from None
    file = AvroFile(
        entry.path, entry.size, header.codec, header.sync, header.end, entry.version
    )
    return file, header.schema_json, whole[-1] if whole else None
