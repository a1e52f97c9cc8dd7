"""A real S3 server for the tests, and a loopback proxy in front of it.

- :func:`moto_s3`: moto's S3 server (``ThreadedMotoServer``) on 127.0.0.1, one
  per test process, as s3fs's own tests run it. Nothing of boto or fsspec is
  mocked: s3fs talks HTTP to it.
- :class:`S3Proxy`: a small HTTP proxy on 127.0.0.1 that forwards to moto,
  logs every request (method, path, range, status, bytes) and fails the ones a
  :class:`Faults` plan picks: HTTP 500 / 503 SlowDown / 403, a connection reset
  before the response, or a body cut off halfway.
- Avro files to read: :func:`write_avro` (fastavro, deterministic rows) and
  :func:`repeat_blocks` (a large file from a small one in milliseconds).

Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import atexit
import functools
import http.client
import logging
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

BUCKET = "jetliner-dist-tests"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def storage_options(endpoint: str, **extra: Any) -> dict[str, Any]:
    """s3fs options for a loopback endpoint (credentials moto accepts)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
        **extra,
    }


class MotoS3:
    """moto's S3 server on 127.0.0.1 with one bucket, and a boto3 client for setup."""

    protocol = "s3"
    bucket = BUCKET

    def __init__(self) -> None:
        moto_server = pytest.importorskip("moto.server")
        boto3 = pytest.importorskip("boto3")
        pytest.importorskip("s3fs")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.port = free_port()
        self.server = moto_server.ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        self.client.create_bucket(Bucket=BUCKET)
        self.storage_options = storage_options(self.endpoint)

    def put(self, key: str, data: bytes, *, public: bool = False) -> str:
        """Store ``data`` at ``key``; returns its ``s3://`` URL. A public
        object can be read over plain http(s) too."""
        extra = {"ACL": "public-read"} if public else {}
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)
        return self.url(key)

    def upload(self, key: str, path: str | Path) -> str:
        """Upload a local file (multipart when large, as real uploads are)."""
        self.client.upload_file(str(path), BUCKET, key)
        return self.url(key)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=key)

    def etag(self, key: str) -> str:
        return self.client.head_object(Bucket=BUCKET, Key=key)["ETag"]

    version = etag  # what planning records to notice a changed object

    @staticmethod
    def url(key: str) -> str:
        return f"s3://{BUCKET}/{key}"

    def stop(self) -> None:
        self.server.stop()


@functools.lru_cache(maxsize=None)
def moto_s3() -> MotoS3:
    """The process's S3 server, started on first use (moto keeps its objects
    in process-wide state, so one server serves every test module)."""
    server = MotoS3()
    atexit.register(server.stop)
    return server


# -- the proxy -----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request the proxy saw."""

    method: str
    path: str  # /bucket/key
    query: str
    range: str | None
    status: int  # 0: the connection was reset before a response
    fault: str | None
    sent: int  # response body bytes sent

    @property
    def is_object(self) -> bool:
        """A request on an object (not a listing or a bucket)."""
        return self.path.strip("/").count("/") >= 1 and "list-type" not in self.query


@dataclass(frozen=True)
class Faults:
    """Which requests the proxy fails, deterministically.

    A request is known by (method, path, range): the seeded RNG picks it for
    failure with probability ``rate``, and a picked request fails its first
    ``times`` attempts (None: always) with one of ``kinds``; ``limit`` caps
    the faults in all. Retries of the same request then go through, whatever
    the order in which threads send them.

    kinds: "500" (InternalError), "503" (SlowDown), "403" (AccessDenied),
    "bad-credentials" (403 InvalidAccessKeyId), "reset" (connection reset, no
    response), "cut" (headers and half the body, then a reset).
    """

    kinds: tuple[str, ...] = ("500",)
    rate: float = 1.0
    seed: int = 0
    times: int | None = 1
    method: str | None = "GET"
    key: str | None = None  # only requests on this object key
    objects_only: bool = True  # leave listings and bucket requests alone
    limit: int | None = None


_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "403": (403, "AccessDenied", "Access Denied"),
    "bad-credentials": (
        403, "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
}  # fmt: skip


def _error_response(status: int, code: str, message: str) -> tuple[int, list, bytes]:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>jetliner-dist-proxy</RequestId></Error>"
    ).encode()
    return status, [("Content-Type", "application/xml")], xml


_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te",
     "trailer", "upgrade"}
)  # fmt: skip


class S3Proxy(ThreadingHTTPServer):
    """Forwards HTTP to an upstream server on 127.0.0.1, logging and failing requests."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream_port = upstream_port
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._faults: Faults | None = None
        self._failed: Counter = Counter()
        self._fault_count = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    # -- what tests use --

    def reset(self, faults: Faults | None = None) -> None:
        """Forget the log and the faults so far; fail requests by ``faults`` from now."""
        with self._lock:
            self._requests.clear()
            self._faults = faults
            self._failed.clear()
            self._fault_count = 0

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def object_requests(self, method: str = "GET", key: str | None = None) -> list[Request]:
        """Requests on objects (not listings), optionally on one key."""
        return [
            r for r in self.requests
            if r.method == method and r.is_object and (key is None or r.path.endswith("/" + key))
        ]  # fmt: skip

    def listings(self) -> list[Request]:
        return [r for r in self.requests if "list-type" in r.query]

    @property
    def faults_injected(self) -> int:
        with self._lock:
            return self._fault_count

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    # -- what the handler uses --

    def decide(self, method: str, path: str, query: str, byte_range: str | None) -> str | None:
        with self._lock:
            plan = self._faults
            if plan is None or (plan.method is not None and method != plan.method):
                return None
            if plan.key is not None and not path.endswith("/" + plan.key):
                return None
            if plan.objects_only and (path.strip("/").count("/") < 1 or "list-type" in query):
                return None
            identity = f"{plan.seed}|{method}|{path}|{byte_range}"
            rng = random.Random(identity)
            if rng.random() >= plan.rate:
                return None
            if plan.times is not None and self._failed[identity] >= plan.times:
                return None
            if plan.limit is not None and self._fault_count >= plan.limit:
                return None
            self._failed[identity] += 1
            self._fault_count += 1
            return rng.choice(plan.kinds)

    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: S3Proxy

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        parts = urlsplit(self.path)
        byte_range = self.headers.get("Range") or self.headers.get("x-ms-range")  # Azure's own
        fault = self.server.decide(self.command, parts.path, parts.query, byte_range)
        if fault == "reset":
            status, headers, data = 0, [], b""
        elif fault in _ERRORS:
            status, headers, data = _error_response(*_ERRORS[fault])
        else:
            status, headers, data = self._upstream(body)
        declared = len(data)
        if self.command == "HEAD":  # no body; its length is the object's
            declared = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
            data = b""
        elif fault == "cut":
            data = data[: len(data) // 2]
        # Logged before the client can see the response: a test that asserts
        # on the log right after its call returns finds the request there.
        self.server.record(
            Request(self.command, parts.path, parts.query, byte_range, status, fault, len(data))
        )
        if status:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            self.wfile.write(data)
        if fault in ("reset", "cut"):
            self._reset()

    def _upstream(self, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            connection.close()

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), as a dropped connection looks."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3() -> MotoS3:
    """The moto S3 server and its bucket."""
    return moto_s3()


@functools.lru_cache(maxsize=None)
def proxy_to(port: int) -> S3Proxy:
    """The process's proxy in front of the server on ``port``, started on first use."""
    proxy = S3Proxy(port)
    atexit.register(proxy.close)
    return proxy


def clean(proxy: S3Proxy) -> Iterator[S3Proxy]:
    """A proxy fixture's body: ``proxy`` with an empty log and no faults,
    reset again after the test."""
    proxy.reset()
    yield proxy
    proxy.reset()


@pytest.fixture
def proxy(s3: MotoS3) -> Iterator[S3Proxy]:
    """The proxy in front of moto, with an empty log and no faults."""
    yield from clean(proxy_to(s3.port))


# -- Avro files ------------------------------------------------------------------


@dataclass
class Files:
    """Local files and the same bytes uploaded under ``prefix`` of a bucket."""

    root: Path
    prefix: str
    bucket_url: str  # "s3://bucket"

    def local(self, name: str) -> str:
        return str(self.root / name)

    def key(self, name: str) -> str:
        return self.prefix + name

    def url(self, name: str) -> str:
        return f"{self.bucket_url}/{self.prefix}{name}"


SCHEMA = {
    "type": "record",
    "name": "Event",
    "namespace": "jetliner.tests",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "count", "type": ["null", "int"]},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "payload", "type": "bytes"},
    ],
}


def rows(count: int, seed: int = 0, start: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + count):
        n = rng.randrange(4)
        out.append({
            "id": i,
            "user": f"user-{rng.randrange(10_000)}",
            "amount": rng.random() * 1000,
            "count": None if i % 7 == 0 else rng.randrange(-1000, 1000),
            "kind": "ABC"[i % 3],
            "tags": [f"t{rng.randrange(50)}" for _ in range(n)],
            "attrs": {f"k{j}": rng.randrange(1 << 40) for j in range(n % 3)},
            "payload": rng.randbytes(rng.randrange(48)),
        })  # fmt: skip
    return out


def write_avro(
    path: str | Path, count: int, *, codec: str = "deflate", seed: int = 0, start: int = 0,
    block_rows: int = 2000,
) -> Path:  # fmt: skip
    """An Avro file of ``count`` deterministic rows, ``block_rows`` per block."""
    import fastavro

    path = Path(path)
    with path.open("wb") as f:
        writer = fastavro.write.Writer(
            f, fastavro.parse_schema(SCHEMA), codec=codec, sync_interval=1 << 30,
            sync_marker=random.Random(seed).randbytes(16),
        )  # fmt: skip
        for i, row in enumerate(rows(count, seed, start), 1):
            writer.write(row)
            if i % block_rows == 0:
                writer.flush()
        writer.flush()
    return path


# -- engines against local reads ---------------------------------------------------


def assert_plan_matches_local(files: Files, name: str, storage_options: dict,
                              version: str, split_size: str) -> None:  # fmt: skip
    """Planning ``files.url(name)`` cuts the same splits as the local copy, from
    the same header, records the object's ``version`` and passes the storage
    options on unchanged."""
    import jetliner_dist as jd

    local = jd.plan(files.local(name), split_size=split_size)
    remote = jd.plan(files.url(name), split_size=split_size, storage_options=storage_options)
    assert len(remote.splits) == len(local.splits) > 4
    assert [(s.start, s.end) for s in remote.splits] == [(s.start, s.end) for s in local.splits]
    (file,), (local_file,) = remote.files, local.files
    assert (file.size, file.codec, file.sync, file.header_end) == (
        local_file.size, local_file.codec, local_file.sync, local_file.header_end,
    )  # fmt: skip
    assert file.path == files.url(name)
    assert file.version == version
    assert remote.spec.storage_options == storage_options
    assert remote.schema == local.schema


def assert_local_cluster_reads_like_local(files: Files, name: str, storage_options: dict,
                                          blocksize: str) -> None:  # fmt: skip
    """Worker processes of a real LocalCluster read ``files.url(name)`` from
    the store themselves, and get what a local Dask read gets."""
    pytest.importorskip("distributed")
    jdd = pytest.importorskip("jetliner_dist.dask")
    import dask
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            remote = jdd.read_avro(files.url(name), storage_options=storage_options,
                                   blocksize=blocksize)  # fmt: skip
            assert remote.npartitions > 2
            frame = remote.compute()
    with dask.config.set(scheduler="threads"):
        local = jdd.read_avro(files.local(name), blocksize=blocksize).compute()
    assert frame.reset_index(drop=True).equals(local.reset_index(drop=True))


def assert_ray_reads_like_local(files: Files, name: str, storage_options: dict,
                                split_size: str) -> None:  # fmt: skip
    """Ray read tasks read ``files.url(name)`` from the store, and get the
    rows of a local read (in any order: Ray may deliver blocks out of order)."""
    import pyarrow as pa

    import jetliner_dist as jd

    ray = pytest.importorskip("ray")
    jdr = pytest.importorskip("jetliner_dist.ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        dataset = jdr.read_avro(files.url(name), storage_options=storage_options,
                                split_size=split_size)  # fmt: skip
        remote = pa.concat_tables(dataset.iter_batches(batch_format="pyarrow", batch_size=None))
    finally:
        if started:
            ray.shutdown()
    local = jd.read_table(files.local(name))
    assert remote.schema == local.schema
    order = [("id", "ascending"), ("amount", "ascending"), ("user", "ascending")]
    assert remote.sort_by(order).equals(local.sort_by(order))


def repeat_blocks(data: bytes, times: int) -> bytes:
    """A valid Avro file holding the blocks of ``data`` ``times`` over."""
    from jetliner_dist.avro.header import read_header

    end = read_header(lambda a, b: data[a:b], len(data)).end
    return data[:end] + data[end:] * times
