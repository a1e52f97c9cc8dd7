"""A real Azure Blob server for the tests: Azurite on 127.0.0.1.

Azurite is Microsoft's Azure Storage emulator (a Node.js program); adlfs
talks the Blob REST API over HTTP to it (objects in memory), signed with
Azurite's published development account key. Nothing of adlfs, the Azure SDK
or fsspec is mocked. ``ci/test.sh`` installs Azurite with npm and names its
``azurite-blob`` in ``AZURITE_BLOB``; without Azurite these tests skip,
saying so.
Test modules import the fixtures :func:`azure` and :func:`azure_proxy` (the
proxy of ``s3_fixtures`` in front of Azurite).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from s3_fixtures import S3Proxy, clean, free_port, proxy_to

CONTAINER = "jetliner-dist-az-tests"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (the same in every installation).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
STARTUP_SECONDS = 60


def azurite_command() -> str | None:
    """The ``azurite-blob`` program: ``AZURITE_BLOB``, else one on PATH, else
    the newest that ``ci/test.sh`` installed."""
    named = os.environ.get("AZURITE_BLOB")
    if named:
        return named if Path(named).exists() else None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "jetliner-dist")
    installed = sorted(cache.glob("azurite-*/node_modules/.bin/azurite-blob"))
    return shutil.which("azurite-blob") or (str(installed[-1]) if installed else None)


def connection_string(endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


class Azurite:
    """Azurite's Blob service on 127.0.0.1 with one container, and an adlfs
    file system for setup."""

    protocol = "az"
    bucket = CONTAINER

    def __init__(self) -> None:
        pytest.importorskip("adlfs")
        command = azurite_command()
        if command is None:
            pytest.skip("Azurite is not installed (ci/test.sh installs it with npm)")
        self.port = free_port()
        self.workspace = tempfile.mkdtemp(prefix="azurite-")
        # Its errors go to a file, not a pipe: a pipe nobody reads would stall it when full.
        with open(Path(self.workspace, "stderr.log"), "wb") as log:
            self.process = subprocess.Popen(
                [command, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                 "--inMemoryPersistence", "--extentMemoryLimit", "2048", "--silent",
                 "--disableTelemetry", "--skipApiVersionCheck", "--loose"],
                cwd=self.workspace, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        self._wait_until_listening()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.storage_options: dict[str, Any] = {"connection_string": connection_string(self.endpoint)}
        import fsspec

        # A file system of its own (skip_instance_cache) for writing: reads
        # made with storage_options never see this one's listing cache.
        self.fs = fsspec.filesystem("az", skip_instance_cache=True, **self.storage_options)
        self.fs.mkdir(CONTAINER)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = Path(self.workspace, "stderr.log").read_text()
                raise RuntimeError(f"Azurite exited at start: {log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Azurite did not listen on port {self.port} in {STARTUP_SECONDS} s")

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` at ``key``; returns its ``az://`` URL."""
        self.fs.pipe_file(f"{CONTAINER}/{key}", data)
        return self.url(key)

    def upload(self, key: str, path: str | Path) -> str:
        return self.put(key, Path(path).read_bytes())

    def delete(self, key: str) -> None:
        self.fs.rm_file(f"{CONTAINER}/{key}")

    def etag(self, key: str) -> str:
        self.fs.invalidate_cache(f"{CONTAINER}/{key}")
        return self.fs.info(f"{CONTAINER}/{key}")["etag"]

    version = etag  # what planning records to notice a changed object

    def options_through(self, endpoint: str) -> dict[str, Any]:
        """Storage options that reach this server through ``endpoint`` (a proxy)."""
        return {"connection_string": connection_string(endpoint)}

    @staticmethod
    def request_key(key: str) -> str:
        """``key`` as the end of a Blob API request's path."""
        return key

    @staticmethod
    def url(key: str) -> str:
        return f"az://{CONTAINER}/{key}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workspace, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def azurite() -> Azurite:
    """The process's Azurite, started on first use."""
    server = Azurite()
    atexit.register(server.stop)
    return server


@pytest.fixture(scope="session")
def azure() -> Azurite:
    return azurite()


@pytest.fixture
def azure_proxy(azure: Azurite) -> Iterator[S3Proxy]:
    """The logging, fault-injecting proxy (see s3_fixtures) in front of
    Azurite, with an empty log and no faults."""
    yield from clean(proxy_to(azure.port))
