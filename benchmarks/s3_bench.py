"""S3 against local disk: the 1M-row benchmark files read from a loopback S3 server.

    python -m benchmarks.s3_bench                       # simple + complex, 1M rows
    python -m benchmarks.s3_bench --scenarios simple --repeat 9
    python -m benchmarks.s3_bench --max-workers 1
    python -m benchmarks.s3_bench --split-size "64 MiB"  # splits of several windows

moto's S3 server runs in a child process on 127.0.0.1 (objects kept in
memory), answering ranged GETs from the range's bytes as S3 does
(``benchmarks.moto_ranges``; ``--stock-moto``: moto as shipped, which copies
the whole object for every ranged GET); the files of ``benchmarks/data``
(generated when missing) are uploaded to it. Each scenario is read with
``jd.read_table`` from local disk and from ``s3://`` with the same engine and
threads: one warm-up each (which also checks both give the same table), then
``--repeat`` timed runs, alternating local and S3 so that noise on a shared
machine hits both alike. Printed: median / min times, S3 ÷ local (target: at
most 1.5×), throughput, the GET requests per read, what those GETs alone take
(replayed with s3fs on the same threads, nothing decoded), the CPU seconds one
S3 read costs the server and the reader (divided by the cores, the shortest
time the read could take on this machine), and the reader's page faults per
S3 read. moto is Python and, on a small machine, shares the cores with the
reader.

Kept out of CI: it starts a server and reads gigabytes.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.cli import parse_counts, scenario_parser
from benchmarks.datasets import SCENARIOS, ensure_file
from benchmarks.timing import time_calls
from jetliner_dist.local import default_max_workers

TARGET = 1.5
BUCKET = "jetliner-dist-bench"
REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = scenario_parser("python -m benchmarks.s3_bench", __doc__, repeat=7,
                             repeat_help="timed runs per source")  # fmt: skip
    parser.add_argument("--max-workers", type=int, default=None,
                        help="threads of the engine, the same for both sources (default: all cores)")
    parser.add_argument("--split-size", default=None,
                        help="bytes per split for both sources, e.g. '64 MiB' (default: the engine's)")
    parser.add_argument("--stock-moto", action="store_true",
                        help="serve with moto as shipped: every ranged GET copies the whole object")
    return parse_counts(parser, argv)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class MotoProcess:
    """moto's S3 server in a child process on 127.0.0.1 (its own GIL, like a real server)."""

    def __init__(self, stock: bool = False) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # Objects stay in memory instead of spilling to temporary files.
        env = {**os.environ, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(2**31)}
        server = "moto.server" if stock else "benchmarks.moto_ranges"
        self.process = subprocess.Popen(
            [sys.executable, "-m", server, "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start (pip install 'moto[server]')")
                time.sleep(0.1)
        self.storage_options = {
            "key": "bench", "secret": "bench",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def record_gets(storage_options: dict) -> list[str]:
    """The Range header of every GetObject sent by the s3fs instance these
    options select (the one reads use), appended as they are sent."""
    import fsspec

    fs = fsspec.filesystem("s3", **storage_options)
    fs.connect()
    ranges: list[str] = []

    def on_get(request=None, **_):
        ranges.append(request.headers.get("Range", b"").decode() if request is not None else "")

    fs.s3.meta.events.register("before-send.s3.GetObject", on_get)
    return ranges


def replay(storage_options: dict, url: str, ranges: list[str], threads: int) -> float:
    """Seconds to GET ``ranges`` again on ``threads`` threads, decoding nothing:
    what the server and the HTTP stack alone cost for one read."""
    from concurrent.futures import ThreadPoolExecutor

    import fsspec

    fs = fsspec.filesystem("s3", **storage_options)
    bounds = [tuple(int(x) for x in r.removeprefix("bytes=").split("-")) for r in ranges]
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: fs.cat_file(url, start=b[0], end=b[1] + 1), bounds))
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    import boto3

    import jetliner_dist as jd

    server = MotoProcess(stock=args.stock_moto)
    failed = False
    try:
        client = boto3.client(
            "s3", endpoint_url=server.endpoint, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        options = server.storage_options
        sent = record_gets(options)
        threads = args.max_workers or default_max_workers()
        lines = []
        for name in args.scenarios:
            path = ensure_file(SCENARIOS[name].dataset, args.rows, args.data_dir)
            size = path.stat().st_size
            url = f"s3://{BUCKET}/{path.name}"
            progress(f"{name}: uploading {size / 1e6:.1f} MB")
            client.upload_file(str(path), BUCKET, path.name)

            def local(path=path):
                return jd.read_table(str(path), max_workers=args.max_workers,
                                     split_size=args.split_size)

            def remote(url=url):
                return jd.read_table(url, storage_options=options, max_workers=args.max_workers,
                                     split_size=args.split_size)

            progress(f"{name}: warm-up and check")
            if not remote().equals(local()):
                raise AssertionError(f"{name}: the S3 read differs from the local read")
            del sent[:]
            remote()
            ranges = list(sent)
            local_times: list[float] = []
            remote_times: list[float] = []
            cpu = CpuMeter(server.process.pid)
            for _ in range(args.repeat):  # alternate: noise hits both alike
                local_times += time_calls(local, 1)
                gc.collect()
                with cpu:
                    start = time.perf_counter()
                    result = remote()
                    remote_times.append(time.perf_counter() - start)
                del result
            io_floor = min(replay(options, url, ranges, threads) for _ in range(3))
            lines.append(_line(name, size, local_times, remote_times, len(ranges), io_floor, cpu))
            ratio = statistics.median(remote_times) / statistics.median(local_times)
            failed |= ratio > TARGET
            progress(lines[-1])
    finally:
        server.stop()
    workers = args.max_workers or "all cores"
    splits = args.split_size or "the engine's default"
    served = "moto as shipped" if args.stock_moto else "moto reading ranges only"
    print(f"\njd.read_table, {args.rows:,} rows, {args.repeat} runs each, threads: {workers}, "
          f"split size: {splits}, server: {served}")
    print(
        "| file | MB | local median (min) | S3 median (min) | S3 / local | local MB/s | S3 MB/s "
        "| GETs per read | the same GETs alone (min) | CPU per S3 read: server + reader "
        "| ÷ cores | reader's page faults per S3 read |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for line in lines:
        print(line)
    print(f"\ntarget: S3 at most {TARGET}× local — {'missed' if failed else 'met'}")
    return 0


class CpuMeter:
    """CPU seconds of the server process and of this one over the ``with``
    blocks: when both share the machine's cores, their sum divided by the
    cores is the shortest wall time a read could take here. Also the page
    faults of this process: each is a page of memory the reader did not
    reuse (a read that faults tens of megabytes pays for it in CPU)."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self._server = psutil.Process(server_pid)
        self.server = self.reader = 0.0
        self.faults = 0
        self.reads = 0

    def _now(self) -> tuple[float, float, int]:
        import resource

        times = self._server.cpu_times()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return times.user + times.system, time.process_time(), faults

    def __enter__(self) -> "CpuMeter":
        self._start = self._now()
        return self

    def __exit__(self, *exc_info: object) -> None:
        server, reader, faults = self._now()
        self.server += server - self._start[0]
        self.reader += reader - self._start[1]
        self.faults += faults - self._start[2]
        self.reads += 1


def _line(name, size, local_times, remote_times, requests, io_floor, cpu: CpuMeter) -> str:
    local, remote = statistics.median(local_times), statistics.median(remote_times)
    server, reader = cpu.server / cpu.reads, cpu.reader / cpu.reads
    return (
        f"| {name} | {size / 1e6:.1f} | {local:.3f} s ({min(local_times):.3f}) "
        f"| {remote:.3f} s ({min(remote_times):.3f}) | {remote / local:.2f}× "
        f"| {size / 1e6 / local:.0f} | {size / 1e6 / remote:.0f} | {requests} | {io_floor:.3f} s "
        f"| {server:.3f} + {reader:.3f} s | {(server + reader) / default_max_workers():.3f} s "
        f"| {cpu.faults / cpu.reads:,.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
