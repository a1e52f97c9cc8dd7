"""A real GCS-protocol server for the tests: gcp-storage-emulator on 127.0.0.1.

gcsfs talks its JSON API over HTTP to the emulator (objects in memory); nothing
of gcsfs or fsspec is mocked. Test modules import the fixtures :func:`gcs` and
:func:`gcs_proxy` (the proxy of ``s3_fixtures`` in front of the emulator).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from s3_fixtures import S3Proxy, clean, free_port, proxy_to

BUCKET = "jetliner-dist-gcs-tests"

# gcsfs asks the Storage Control API (gRPC, TLS) for each bucket's type
# unless told not to; an emulator has no such API and each ask times out
# after a minute. Set before gcsfs is imported, here and in worker processes.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that hung up early (a read cancelled, a past-end range
        # answered from headers) is not the server's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class GcsEmulator:
    """The emulator on 127.0.0.1 with one bucket, and a gcsfs file system for setup.

    The emulator's own server answers one request at a time with a listen
    queue of five; readers send dozens at once (headers of many objects), so
    its request handler is served here by a threading server instead.
    """

    protocol = "gs"
    bucket = BUCKET

    def __init__(self) -> None:
        pytest.importorskip("gcsfs")
        emulator = pytest.importorskip("gcp_storage_emulator.server")
        from gcp_storage_emulator.handlers.buckets import create_bucket
        from gcp_storage_emulator.storage import Storage

        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        storage = Storage(use_memory_fs=True)
        create_bucket(BUCKET, storage)
        self.httpd = _Server(("127.0.0.1", free_port()), partial(emulator.RequestHandler, storage))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.storage_options: dict[str, Any] = {
            "endpoint_url": self.endpoint, "token": "anon", "project": "jetliner-dist",
        }  # fmt: skip
        import fsspec

        # A file system of its own (skip_instance_cache) for writing: reads
        # made with storage_options never see this one's listing cache.
        self.fs = fsspec.filesystem("gs", skip_instance_cache=True, **self.storage_options)

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` at ``key``; returns its ``gs://`` URL."""
        self.fs.pipe_file(f"{BUCKET}/{key}", data)
        return self.url(key)

    def options_through(self, endpoint: str) -> dict[str, Any]:
        """Storage options that reach this server through ``endpoint`` (a proxy)."""
        return {**self.storage_options, "endpoint_url": endpoint}

    def upload(self, key: str, path: str | Path) -> str:
        return self.put(key, Path(path).read_bytes())

    def delete(self, key: str) -> None:
        self.fs.rm_file(f"{BUCKET}/{key}")

    def generation(self, key: str) -> str:
        return str(self.fs.info(f"{BUCKET}/{key}")["generation"])

    version = generation  # what planning records to notice a changed object

    @staticmethod
    def request_key(key: str) -> str:
        """``key`` as the end of a JSON API request's path (one segment)."""
        return key.replace("/", "%2F")

    @staticmethod
    def url(key: str) -> str:
        return f"gs://{BUCKET}/{key}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@functools.lru_cache(maxsize=None)
def gcs_emulator() -> GcsEmulator:
    """The process's GCS server, started on first use."""
    server = GcsEmulator()
    atexit.register(server.stop)
    return server


@pytest.fixture(scope="session")
def gcs() -> GcsEmulator:
    return gcs_emulator()


@pytest.fixture
def gcs_proxy(gcs: GcsEmulator) -> Iterator[S3Proxy]:
    """The logging, fault-injecting proxy (see s3_fixtures) in front of the
    emulator, with an empty log and no faults."""
    yield from clean(proxy_to(gcs.httpd.server_address[1]))
