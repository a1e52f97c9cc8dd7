"""Byte sources (``jetliner_dist.sources``): one contract, every source.

The same tests run against bytes in memory, a local file, an fsspec
``memory://`` file, an object on a real S3 server (moto on 127.0.0.1) and one
on a real GCS-protocol server (gcp-storage-emulator on 127.0.0.1, via gcsfs)
and one on Azurite (Azure Blob Storage's emulator on 127.0.0.1, via adlfs):
sizes, ranged reads at the edges and past the end, concurrent reads,
pickling, and missing objects as ``SourceError``. Then what only remote
sources do: storage options kept unchanged, consistency (a changed object is
an ``ObjectChangedError``) and retries on any fsspec protocol (``http://``
through the fault proxy).
"""

from __future__ import annotations

import pickle
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import fsspec
import pytest

from jetliner_dist import ObjectChangedError, SourceError
from jetliner_dist.sources import (
    ByteSource,
    FsspecSource,
    LocalFileSource,
    MemorySource,
    freeze_options,
    source_for,
)
from azure_fixtures import azurite
from gcs_fixtures import gcs_emulator
from s3_fixtures import BUCKET, Faults, moto_s3, proxy, s3  # noqa: F401  (fixtures)

DATA = random.Random(5).randbytes(300_000)
KINDS = ["memory", "local", "fsspec-memory", "s3", "gcs", "azure"]


def make_source(kind: str, data: bytes, tmp_path) -> ByteSource:
    name = f"contract-{uuid.uuid4().hex}.bin"
    if kind == "memory":
        return MemorySource(data)
    if kind == "local":
        path = tmp_path / name
        path.write_bytes(data)
        return LocalFileSource.open(path)
    if kind == "fsspec-memory":
        fs = fsspec.filesystem("memory")
        fs.pipe_file(f"/jd-contract/{name}", data)
        return FsspecSource("memory", f"/jd-contract/{name}", len(data))
    store = _store(kind)
    store.put(name, data)
    return FsspecSource(
        store.protocol, f"{store.bucket}/{name}", len(data), freeze_options(store.storage_options),
        store.version(name),
    )  # fmt: skip


def _store(kind: str):
    """The server behind a remote kind: moto's S3, the GCS emulator or Azurite."""
    return {"s3": moto_s3, "gcs": gcs_emulator, "azure": azurite}[kind]()


def missing_source(kind: str, tmp_path) -> ByteSource:
    if kind == "local":
        return LocalFileSource(str(tmp_path / "missing.avro"), 100)
    if kind == "fsspec-memory":
        return FsspecSource("memory", "/jd-contract/missing.avro", 100)
    store = _store(kind)
    options = freeze_options(store.storage_options)
    return FsspecSource(store.protocol, f"{store.bucket}/missing/object.avro", 100, options)


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def source(kind, tmp_path):
    return make_source(kind, DATA, tmp_path)


def read(source: ByteSource, start: int, end: int) -> bytes:
    return bytes(source.fetch(start, end))


# -- the contract ----------------------------------------------------------------


def test_is_a_byte_source_with_the_right_size(source):
    assert isinstance(source, ByteSource)
    assert source.size == len(DATA)
    assert source.path


def test_whole_file(source):
    assert read(source, 0, len(DATA)) == DATA


@pytest.mark.parametrize(
    "start, end",
    [(0, 1), (0, 16), (1, 2), (len(DATA) - 1, len(DATA)), (len(DATA) - 16, len(DATA)),
     (65_535, 65_537), (123_456, 234_567)],
)  # fmt: skip
def test_ranges_at_the_edges(source, start, end):
    assert read(source, start, end) == DATA[start:end]


@pytest.mark.parametrize("start, end", [(0, 0), (10, 10), (500, 400), (len(DATA), len(DATA))])
def test_empty_ranges_are_empty(source, start, end):
    assert read(source, start, end) == b""


@pytest.mark.parametrize(
    "start, end", [(len(DATA) - 10, len(DATA) + 10), (len(DATA), len(DATA) + 5),
                   (len(DATA) + 100, len(DATA) + 200), (0, len(DATA) * 2)],
)  # fmt: skip
def test_reads_past_the_end_are_short(source, start, end):
    """Fewer bytes only at the end of the file, never an error."""
    assert read(source, start, end) == DATA[start:end]


def test_random_ranges(source):
    rng = random.Random(11)
    for _ in range(25):
        start = rng.randrange(len(DATA))
        end = start + rng.choice([1, 7, 4096, 70_000])
        assert read(source, start, end) == DATA[start:end]


def test_concurrent_reads(source):
    """Engines read one source from many threads at once."""
    ranges = [(i * 9_000, i * 9_000 + 20_000) for i in range(32)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda r: read(source, *r), ranges))
    assert results == [DATA[a:b] for a, b in ranges]


def test_readinto_where_offered(tmp_path):
    """Local files offer readinto (a reused window buffer); it reads to the end."""
    source = make_source("local", DATA, tmp_path)
    out = bytearray(1000)
    assert source.readinto(len(DATA) - 600, out) == 600
    assert bytes(out[:600]) == DATA[-600:]


def test_pickles_to_a_source_that_reads_the_same(source):
    back = pickle.loads(pickle.dumps(source))
    assert back.size == source.size
    assert read(back, 1000, 5000) == DATA[1000:5000]


def test_empty_file(kind, tmp_path):
    empty = make_source(kind, b"", tmp_path)
    assert empty.size == 0
    assert read(empty, 0, 10) == b""


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "memory"])  # bytes can't be missing
def test_missing_object_is_a_source_error_naming_it(kind, tmp_path):
    missing = missing_source(kind, tmp_path)
    with pytest.raises(SourceError) as caught:
        missing.fetch(0, 10)
    assert "missing" in str(caught.value)
    assert "missing" in caught.value.path


# -- remote sources ----------------------------------------------------------------


def test_source_for_picks_the_source_and_keeps_options_unchanged():
    options = {"anon": False, "client_kwargs": {"endpoint_url": "http://127.0.0.1:1"}, "key": "k"}
    remote = source_for("s3://bucket/dir/a.avro", 123, options, version='"etag"')
    assert isinstance(remote, FsspecSource)
    assert (remote.protocol, remote.path, remote.size, remote.version) == (
        "s3", "bucket/dir/a.avro", 123, '"etag"',
    )  # fmt: skip
    assert dict(remote.storage_options) == options  # passed to fsspec as given
    assert remote.url == "s3://bucket/dir/a.avro"
    assert isinstance(source_for("/tmp/a.avro", 5), LocalFileSource)
    assert source_for("file:///tmp/a.avro", 5) == LocalFileSource("/tmp/a.avro", 5)


def test_a_remote_source_pickles_without_a_client(s3):
    """Only protocol, path, size, options and version travel to a worker."""
    source = make_source("s3", DATA, None)
    source.fetch(0, 10)  # the file system exists in this process now
    blob = pickle.dumps(source)
    assert len(blob) < 1000
    assert b"S3FileSystem" not in blob and b"aiobotocore" not in blob


def test_remote_reads_are_large_requests():
    assert FsspecSource.read_size >= 8 * 1024 * 1024
    assert not hasattr(LocalFileSource, "read_size")


def test_object_version_is_what_changes_with_the_content_only():
    from jetliner_dist.sources import object_version

    assert object_version({"ETag": '"abc"', "LastModified": 5}) == '"abc"'  # S3
    # GCS: the etag changes with metadata too (metageneration); the generation does not.
    gcs_entry = {"etag": "CJ7x", "generation": "1795", "metageneration": "3", "md5Hash": "m=="}
    assert object_version(gcs_entry) == "1795"
    assert object_version({"etag": "0x8DC", "last_modified": 1.5}) == "0x8DC"  # Azure
    assert object_version({"mtime": 12.5}) == "12.5"
    assert object_version({"size": 3}) is None


@pytest.mark.parametrize("kind", ["fsspec-memory", "gcs"])
def test_generic_fsspec_object_changed_after_planning(kind, tmp_path):
    """memory:// and gs://: info() after the read sees the new size or version
    (on GCS the generation, which a metadata update leaves alone)."""
    from jetliner_dist.sources import object_version

    planned = make_source(kind, DATA, tmp_path)
    fs = planned.filesystem()
    path = planned.path
    assert planned.version is None or planned.version == object_version(fs.info(path))
    planned = FsspecSource(planned.protocol, path, len(DATA), planned.storage_options,
                           object_version(fs.info(path)))  # fmt: skip
    assert planned.version is not None
    assert read(planned, 0, 100) == DATA[:100]
    if kind == "gcs":
        fs.setxattrs(path, note="metadata only")
        assert read(planned, 0, 100) == DATA[:100]

    fs.pipe_file(path, DATA[::-1])  # same size, new content
    with pytest.raises(ObjectChangedError) as caught:
        planned.fetch(0, 100)
    assert path in str(caught.value) and "plan the read again" in str(caught.value)

    fs.pipe_file(path, DATA[:1000])  # shorter
    with pytest.raises(ObjectChangedError):
        planned.fetch(0, 100)

    fs.rm_file(path)
    with pytest.raises(ObjectChangedError, match="no longer exists"):
        planned.fetch(0, 100)


def test_s3_object_changed_after_planning(s3, proxy):
    """S3: the ranged GET carries If-Match; a new ETag fails it, no extra request."""
    from s3_fixtures import storage_options

    key = f"changed-{uuid.uuid4().hex}.avro"
    s3.put(key, DATA)
    options = freeze_options(storage_options(proxy.endpoint))
    planned = FsspecSource("s3", f"{BUCKET}/{key}", len(DATA), options, s3.etag(key))
    assert read(planned, 0, 100) == DATA[:100]
    s3.put(key, DATA[::-1])  # same size, other ETag
    proxy.reset()
    with pytest.raises(ObjectChangedError) as caught:
        planned.fetch(0, 100)
    assert key in str(caught.value)
    assert len(proxy.object_requests("GET", key)) == 1  # refused by the server, not retried
    assert proxy.object_requests("GET", key)[0].status == 412

    s3.put(key, DATA + b"more")  # grown: ETag and Content-Range differ
    with pytest.raises(ObjectChangedError):
        planned.fetch(0, 100)
    s3.delete(key)
    with pytest.raises(ObjectChangedError, match="no longer exists"):
        planned.fetch(0, 100)


def test_s3_change_checked_locally_without_if_match(s3):
    """For stores without If-Match (s3fs's local_expiry_check): the response ETag is compared."""
    key = f"changed-local-{uuid.uuid4().hex}.avro"
    s3.put(key, DATA)
    options = freeze_options({**s3.storage_options, "local_expiry_check": True})
    planned = FsspecSource("s3", f"{BUCKET}/{key}", len(DATA), options, s3.etag(key))
    assert read(planned, 0, 100) == DATA[:100]
    s3.put(key, DATA[::-1])
    with pytest.raises(ObjectChangedError, match="ETag"):
        planned.fetch(0, 100)


@pytest.mark.parametrize("fault", ["500", "503", "reset", "cut"])
def test_http_protocol_retries_transient_faults(s3, proxy, fault):
    """http:// (fsspec's HTTPFileSystem, which does not retry) through the proxy:
    each range read fails once and is retried with backoff."""
    key = f"http-{uuid.uuid4().hex}.avro"
    s3.put(key, DATA, public=True)
    source = source_for(f"{proxy.endpoint}/{BUCKET}/{key}", len(DATA))
    assert isinstance(source, FsspecSource) and source.protocol == "http"
    proxy.reset(Faults(kinds=(fault,), key=key))
    assert read(source, 1000, 90_000) == DATA[1000:90_000]
    assert read(source, 200_000, 300_000) == DATA[200_000:300_000]
    assert proxy.faults_injected == 2
    assert len(proxy.object_requests("GET", key)) == 4


def test_http_protocol_permanent_errors_are_not_retried(s3, proxy):
    key = f"http-denied-{uuid.uuid4().hex}.avro"
    s3.put(key, DATA, public=True)
    source = source_for(f"{proxy.endpoint}/{BUCKET}/{key}", len(DATA))
    proxy.reset(Faults(kinds=("403",), key=key, times=None))
    with pytest.raises(SourceError) as caught:
        source.fetch(0, 100)
    assert key in str(caught.value)
    assert len(proxy.object_requests("GET", key)) == 1
    missing = source_for(f"{proxy.endpoint}/{BUCKET}/no-such-{key}", 100)
    with pytest.raises(SourceError, match="no such object"):
        missing.fetch(0, 10)


def test_which_errors_of_other_file_systems_are_retried():
    import errno

    from jetliner_dist.sources import _is_transient

    def error(name: str, base: type = Exception, **attrs) -> BaseException:
        exc = type(name, (base,), {})("failed")
        exc.__dict__.update(attrs)
        return exc

    retried = [
        error("ClientResponseError", status=503), error("ClientResponseError", status=429),
        error("ClientPayloadError"), error("ServerDisconnectedError"),
        error("ConnectionError", OSError),  # requests' (no errno), a 502 from gcsfs
        OSError(errno.ECONNRESET, "reset"), ConnectionResetError(), TimeoutError(),
    ]  # fmt: skip
    final = [
        error("ClientResponseError", status=404), error("ClientResponseError", status=403),
        OSError("Forbidden: bucket/key"),  # gcsfs's 403
        OSError(errno.EACCES, "denied"), FileNotFoundError("key"), PermissionError("key"),
        ValueError("Bad Request"), error("HttpError", code=401),
    ]  # fmt: skip
    assert [e for e in retried if not _is_transient(e)] == []
    assert [e for e in final if _is_transient(e)] == []


def test_retries_are_bounded(s3, proxy):
    """A fault that never clears ends in a SourceError after a few attempts."""
    from jetliner_dist.sources import FETCH_ATTEMPTS

    key = f"http-down-{uuid.uuid4().hex}.avro"
    s3.put(key, DATA, public=True)
    source = source_for(f"{proxy.endpoint}/{BUCKET}/{key}", len(DATA))
    proxy.reset(Faults(kinds=("503",), key=key, times=None))
    with pytest.raises(SourceError, match=f"after {FETCH_ATTEMPTS} attempts"):
        source.fetch(0, 100)
    assert len(proxy.object_requests("GET", key)) == FETCH_ATTEMPTS


class _Body:
    """A response body that arrives in the given pieces."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    async def iter_chunks(self, size: int):
        for piece in self.pieces:
            assert len(piece) <= size
            yield piece


def test_an_s3_body_is_read_piece_by_piece_into_one_buffer():
    import asyncio

    from jetliner_dist.sources import _read_body

    pieces = [bytes([i]) * (1000 + i) for i in range(5)]
    whole = b"".join(pieces)
    out = asyncio.run(_read_body(_Body(*pieces), len(whole)))
    assert bytes(out) == whole
    short = asyncio.run(_read_body(_Body(*pieces[:2]), len(whole)))
    assert bytes(short) == b"".join(pieces[:2])  # the caller's length check names the object
    with pytest.raises(ValueError, match="more than"):
        asyncio.run(_read_body(_Body(*pieces), len(whole) - 1))
