"""Reading from S3: a real S3 server (moto's, on 127.0.0.1) against local disk.

- equality: plans, ``read_table``, ``read_avro``, ``scan_avro``, ``iter_batches``,
  ``count_rows``, globs and prefixes, corpus files, and a split pickled to a
  fresh process all give what the same bytes give from local disk;
- requests, counted by a loopback proxy in front of the server: a 100 MB
  object in 4 splits takes a handful of GETs, and listing a prefix of
  thousands of objects sends no HEAD per object;
- faults through the proxy: HTTP 500 / 503, connection resets and bodies cut
  short are retried to exact results; 403 and 404 fail at once with a typed
  error naming the object;
- consistency: an object overwritten or deleted between planning and reading
  raises ``ObjectChangedError``, and planning again reads the new content.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import jetliner_dist as jd
from jetliner_dist import ObjectChangedError, SourceError, TruncatedError
from jetliner_dist.reading import read_split
from s3_fixtures import (  # noqa: F401  (fixtures)
    BUCKET,
    assert_local_cluster_reads_like_local,
    assert_plan_matches_local,
    assert_ray_reads_like_local,
    Faults,
    Files,
    MotoS3,
    S3Proxy,
    proxy,
    repeat_blocks,
    s3,
    storage_options,
    write_avro,
)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "avro-corpus"
MiB = 1024 * 1024


@pytest.fixture(scope="session")
def files(s3: MotoS3, tmp_path_factory) -> Files:
    """events.avro (~9 MB, 240 blocks, deflate), events-snappy.avro, and
    parts/ (six small files of different rows, and a _SUCCESS marker)."""
    root = tmp_path_factory.mktemp("s3-files")
    found = Files(root, f"t-{uuid.uuid4().hex[:8]}/", f"s3://{BUCKET}")
    base = write_avro(root / "base.avro", 30_000, codec="deflate", block_rows=1000).read_bytes()
    (root / "events.avro").write_bytes(repeat_blocks(base, 8))
    write_avro(root / "events-snappy.avro", 20_000, codec="snappy", seed=3, block_rows=500)
    (root / "parts").mkdir()
    for i in range(6):
        write_avro(root / "parts" / f"part-{i:04d}.avro", 2_000, codec="null", seed=10 + i,
                   start=i * 2_000, block_rows=300)  # fmt: skip
    (root / "parts" / "_SUCCESS").write_bytes(b"")
    names = ["events.avro", "events-snappy.avro"] + [
        f"parts/{p.name}" for p in sorted((root / "parts").iterdir())
    ]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: s3.upload(found.key(name), root / name), names))
    return found


@pytest.fixture
def so(s3: MotoS3) -> dict:
    return s3.storage_options


# -- equality with local reads -------------------------------------------------------


def test_plan_matches_local(files, s3, so):
    version = s3.etag(files.key("events.avro"))
    assert_plan_matches_local(files, "events.avro", so, version, split_size="1 MiB")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"split_size": "1 MiB"},
        {"split_size": "1 MiB", "max_workers": 1},
        {"split_size": "700 KiB", "columns": ["amount", "id", "tags"]},
        {"split_size": "1 MiB", "n_rows": 54_321},
        {"split_size": "3 MiB", "batch_rows": 4_000},
    ],
    ids=["default", "1MiB", "one-thread", "columns", "n_rows", "small-batches"],
)
def test_read_table_equals_local(files, so, options):
    for name in ("events.avro", "events-snappy.avro"):
        local = jd.read_table(files.local(name), **options)
        remote = jd.read_table(files.url(name), storage_options=so, **options)
        assert remote.schema == local.schema
        assert remote.equals(local), name


def test_read_avro_and_scan_avro_equal_local(files, so):
    local_path, url = files.local("events.avro"), files.url("events.avro")
    assert jd.read_avro(url, storage_options=so, split_size="1 MiB").equals(
        jd.read_avro(local_path, split_size="1 MiB")
    )

    def query(frame: pl.LazyFrame) -> pl.DataFrame:
        return (
            frame.filter(pl.col("amount") > 400.0)
            .select("id", "kind", "user", pl.col("tags").list.len().alias("n_tags"))
            .head(40_000)
            .collect()
        )

    remote = query(jd.scan_avro(url, storage_options=so, split_size="1 MiB"))
    assert remote.height == 40_000
    assert remote.equals(query(jd.scan_avro(local_path, split_size="1 MiB")))
    assert jd.scan_avro(url, storage_options=so).collect_schema() == jd.read_avro_schema(local_path)


def test_count_rows_and_schema_equal_local(files, so):
    for name in ("events.avro", "events-snappy.avro"):
        assert jd.count_rows(files.url(name), storage_options=so) == jd.count_rows(files.local(name))
    assert jd.read_avro_schema(files.url("events.avro"), storage_options=so) == jd.read_avro_schema(
        files.local("events.avro")
    )
    assert jd.count_rows(files.url("parts/*.avro"), storage_options=so) == 12_000


def test_iter_batches_streams_the_same_rows(files, so):
    url, local = files.url("events.avro"), files.local("events.avro")
    batches = list(jd.iter_batches(url, storage_options=so, batch_rows=10_000, split_size="2 MiB"))
    assert max(b.num_rows for b in batches) <= 10_000
    assert pa.Table.from_batches(batches).equals(jd.read_table(local))


def test_globs_prefixes_and_lists_equal_local(files, so):
    parts = files.root / "parts"
    expected = jd.read_table(str(parts / "*.avro"), include_file_paths="path")
    names = sorted(p.name for p in parts.glob("*.avro"))
    for source in (
        files.url("parts/*.avro"),
        files.url("parts/"),  # a prefix: its .avro objects, not _SUCCESS
        files.url("parts"),
        [files.url(f"parts/{n}") for n in names],
    ):
        table = jd.read_table(source, storage_options=so, include_file_paths="path")
        assert table.drop(["path"]).equals(expected.drop(["path"])), source
        paths = sorted(set(table.column("path").to_pylist()))
        assert paths == [files.url(f"parts/{n}") for n in names]


CORPUS_PICKS = 20


def _corpus_picks() -> list[dict]:
    """About 20 valid corpus files covering every codec and feature (greedy cover)."""
    manifest = json.loads((CORPUS / "manifest.json").read_text()) if CORPUS.exists() else []
    valid = sorted((e for e in manifest if e["kind"] == "valid"), key=lambda e: e["file"])

    def traits(entry):
        return {f"codec:{entry['codec']}", *entry["features"]}

    uncovered = set().union(*map(traits, valid)) if valid else set()
    picks: list[dict] = []
    while uncovered and len(picks) < CORPUS_PICKS:
        best = max(valid, key=lambda e: (len(traits(e) & uncovered), e["records"]))
        picks.append(best)
        uncovered -= traits(best)
    rest = sorted((e for e in valid if e not in picks), key=lambda e: (-e["records"], e["file"]))
    return picks + rest[: CORPUS_PICKS - len(picks)]


PICKS = _corpus_picks()


def test_corpus_picks_cover_every_codec():
    if not PICKS:
        pytest.fail(f"the corpus is missing at {CORPUS}")
    assert len(PICKS) == CORPUS_PICKS
    assert {e["codec"] for e in PICKS} == {"null", "deflate", "snappy", "zstandard", "bzip2", "xz"}


@pytest.mark.parametrize("entry", PICKS, ids=[e["file"].removeprefix("files/") for e in PICKS])
def test_corpus_file_reads_identically(entry, s3, so):
    path = CORPUS / entry["file"]
    url = s3.upload(f"corpus/{entry['file']}", path)
    local = jd.read_table(str(path))
    remote = jd.read_table(url, storage_options=so)
    assert remote.num_rows == entry["records"]
    assert remote.equals(local)
    assert jd.count_rows(url, storage_options=so) == entry["records"]


def test_split_pickled_to_a_fresh_process_reads_the_same(files, so, tmp_path):
    """What travels is a Split and a ReadSpec (protocol, path, options): no client."""
    plan = jd.plan(files.url("events.avro"), split_size="2 MiB", storage_options=so)
    split = plan.splits[2]
    blob = pickle.dumps((split, plan.spec))
    assert len(blob) < 8_000
    assert b"S3FileSystem" not in blob and b"aiobotocore" not in blob
    task, out = tmp_path / "task.pkl", tmp_path / "out.arrow"
    task.write_bytes(blob)
    code = (
        "import pickle, sys\n"
        "import pyarrow as pa\n"
        "from jetliner_dist.reading import read_split\n"
        "split, spec = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "table = pa.Table.from_batches(list(read_split(split, spec)))\n"
        "with pa.OSFile(sys.argv[2], 'wb') as f, pa.ipc.new_file(f, table.schema) as w:\n"
        "    w.write_table(table)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code, str(task), str(out)], check=True, timeout=300, env=env)
    with pa.memory_map(str(out)) as f:
        fresh = pa.ipc.open_file(f).read_all()
    local_plan = jd.plan(files.local("events.avro"), split_size="2 MiB")
    expected = pa.Table.from_batches(list(read_split(local_plan.splits[2], local_plan.spec)))
    assert fresh.num_rows > 0
    assert fresh.equals(expected)


# -- request counts ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def big_object(s3: MotoS3, tmp_path_factory) -> tuple[str, str, int]:
    """A ~100 MB object (and its local copy): blocks of a small file repeated."""
    root = tmp_path_factory.mktemp("s3-big")
    base = write_avro(root / "base.avro", 10_000, codec="null", seed=7, block_rows=250).read_bytes()
    times = math.ceil(100_000_000 / len(base))
    data = repeat_blocks(base, times)
    (root / "big.avro").write_bytes(data)
    key = f"big-{uuid.uuid4().hex[:8]}.avro"
    s3.put(key, data)
    return str(root / "big.avro"), key, len(data)


def test_100_mb_object_in_4_splits_takes_a_few_large_gets(big_object, s3, proxy):
    local, key, size = big_object
    options = storage_options(proxy.endpoint)
    url = s3.url(key)
    split_size = math.ceil(size / 4)
    plan = jd.plan(url, storage_options=options, split_size=split_size)
    assert len(plan.splits) == 4
    planning = proxy.object_requests("GET", key)
    assert len(planning) == 1  # the header, from the first 64 KiB
    assert proxy.object_requests("HEAD", key) == []  # size and ETag came with it

    proxy.reset()
    table = jd.read_table(url, storage_options=options, split_size=split_size)
    gets = proxy.object_requests("GET", key)
    # The header again, then each 25 MB split: one 16 MiB window (its scan
    # for the first block is decoded from), one more to the split's end.
    bound = 1 + 4 * math.ceil((split_size + MiB) / (16 * MiB))
    sent = sum(r.sent for r in gets)
    report = f"{len(gets)} GETs, {sent / 1e6:.1f} MB for a {size / 1e6:.1f} MB object"
    print(f"\n100 MB object, 4 splits: {report} (bound {bound})")
    assert len(gets) <= bound, report
    # Nothing read twice: beyond the object, the header again and a tail of
    # 256 KiB past each split's end.
    assert sent <= size + 64 * 1024 + 4 * MiB // 4, report
    assert all(r.status == 206 for r in gets)
    assert table.num_rows == jd.count_rows(local)
    assert table.equals(jd.read_table(local, split_size=split_size))


def test_an_object_named_alone_is_planned_from_one_get(files, proxy):
    """Its size and ETag come with the header's ranged GET: no HEAD, no
    listing. The ETag is the one a listing gives, so a read still fails on
    an object that changed after planning."""
    options = storage_options(proxy.endpoint)
    proxy.reset()
    alone = jd.plan(files.url("events.avro"), storage_options=options).files[0]
    assert [(r.method, r.range) for r in proxy.requests] == [("GET", "bytes=0-65535")]
    listed = jd.plan(files.url("*.avro"), storage_options=options).files
    assert alone == next(f for f in listed if f.path == alone.path)  # version included
    local = jd.plan(files.local("events.avro")).files[0]
    assert (alone.size, alone.sync, alone.header_end) == (local.size, local.sync, local.header_end)


def test_a_bucket_reads_as_a_prefix(s3, tmp_path):
    """``s3://bucket`` and ``s3://bucket/`` name every object in the bucket."""
    bucket = f"whole-{uuid.uuid4().hex[:8]}"
    s3.client.create_bucket(Bucket=bucket)
    paths = [write_avro(tmp_path / f"part-{i}.avro", 30, seed=i, start=30 * i) for i in range(2)]
    for path in paths:
        s3.client.upload_file(str(path), bucket, path.name)
    expected = jd.read_table([str(p) for p in paths])
    for url in (f"s3://{bucket}", f"s3://{bucket}/"):
        assert jd.read_table(url, storage_options=s3.storage_options).equals(expected), url


def test_an_empty_object_fails_like_an_empty_file(s3, proxy, tmp_path):
    """No range of an empty object can be read: planning falls back to
    info() and fails as for an empty local file."""
    key = f"empty-{uuid.uuid4().hex[:8]}.avro"
    s3.put(key, b"")
    (tmp_path / "empty.avro").write_bytes(b"")
    with pytest.raises(TruncatedError) as remote:
        jd.read_table(s3.url(key), storage_options=storage_options(proxy.endpoint))
    with pytest.raises(TruncatedError) as local:
        jd.read_table(str(tmp_path / "empty.avro"))
    assert remote.value.message == local.value.message
    assert s3.url(key) in str(remote.value)


def test_blocks_larger_than_the_tail_and_the_window(s3, proxy, tmp_path):
    """Blocks of ~0.4 MiB (past the 256 KiB tail) and of ~20 MiB (past the
    16 MiB window): the reader grows its reads and stays exact and bounded."""
    import fastavro

    schema = {"type": "record", "name": "Big", "fields": [
        {"name": "i", "type": "long"}, {"name": "blob", "type": "bytes"}]}  # fmt: skip
    rng = __import__("random").Random(3)
    path = tmp_path / "big-blocks.avro"
    with path.open("wb") as f:
        writer = fastavro.write.Writer(f, schema, codec="null", sync_interval=1 << 40)
        for i, size in enumerate([400_000] * 12 + [20_000_000] + [400_000] * 6):
            writer.write({"i": i, "blob": rng.randbytes(size)})
            writer.flush()  # one row per block
        writer.flush()
    key = f"big-blocks-{uuid.uuid4().hex[:8]}.avro"
    url = s3.upload(key, path)
    options = storage_options(proxy.endpoint)
    for split_size in ("1 MiB", "3 MiB", None):
        proxy.reset()
        table = jd.read_table(url, storage_options=options, split_size=split_size)
        assert table.equals(jd.read_table(str(path), split_size=split_size)), split_size
        gets = proxy.object_requests("GET", key)
        splits = len(jd.plan(str(path), split_size=split_size).splits)
        assert len(gets) <= 2 + 3 * splits, (split_size, len(gets))


@pytest.mark.parametrize("count", [150, 2_500])
def test_listing_many_objects_sends_no_head_per_object(s3, proxy, tmp_path, count):
    """Sizes come from the listing; each object costs one GET (its header).
    2,500 objects take three listing pages; moto serves ~100 requests/s here."""
    data = write_avro(tmp_path / "tiny.avro", 3, codec="null").read_bytes()
    prefix = f"many-{uuid.uuid4().hex[:8]}/"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put(f"{prefix}part-{i:05d}.avro", data), range(count)))
    options = storage_options(proxy.endpoint)
    proxy.reset()
    plan = jd.plan(f"s3://{BUCKET}/{prefix}", storage_options=options)
    assert len(plan.files) == count
    assert all(f.size == len(data) for f in plan.files)
    heads = [r for r in proxy.object_requests("HEAD") if r.path.endswith(".avro")]
    gets = proxy.object_requests("GET")
    listings = proxy.listings()
    print(f"\n{count} objects planned: {len(listings)} listings, {len(gets)} GETs, {len(heads)} HEADs")
    assert heads == []
    assert len(gets) == count
    assert len(listings) <= 2 + count // 1000  # pages of 1,000 keys, and info()'s
    proxy.reset()
    assert len(jd.plan(f"s3://{BUCKET}/{prefix}*.avro", storage_options=options).files) == count
    assert [r for r in proxy.object_requests("HEAD") if r.path.endswith(".avro")] == []


def test_small_objects_are_decoded_from_their_header_read(s3, proxy, tmp_path, monkeypatch):
    """An object smaller than the header read arrives whole while planning:
    the read decodes those bytes, so a prefix of small objects costs one GET
    per object in all. Past the bytes planning may keep, objects are read
    again as usual."""
    from jetliner_dist import discovery

    count = 40
    prefix = f"whole-{uuid.uuid4().hex[:8]}/"
    local = []
    for i in range(count):
        path = write_avro(tmp_path / f"part-{i:03d}.avro", 50, codec="deflate", seed=i, start=50 * i)
        s3.put(f"{prefix}{path.name}", path.read_bytes())
        local.append(str(path))
    options = storage_options(proxy.endpoint)
    expected = jd.read_table(local)
    proxy.reset()
    assert jd.read_table(f"s3://{BUCKET}/{prefix}", storage_options=options).equals(expected)
    assert len(proxy.object_requests("GET")) == count
    proxy.reset()
    assert jd.count_rows(f"s3://{BUCKET}/{prefix}", storage_options=options) == 50 * count
    assert len(proxy.object_requests("GET")) == count

    monkeypatch.setattr(discovery, "FETCHED_BYTES_KEPT", 0)
    proxy.reset()
    assert jd.read_table(f"s3://{BUCKET}/{prefix}", storage_options=options).equals(expected)
    assert len(proxy.object_requests("GET")) == 2 * count


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds",
    [("500",), ("503",), ("reset",), ("cut",), ("500", "503", "reset", "cut")],
    ids=["500", "503-slowdown", "reset", "cut-body", "mixed"],
)
def test_transient_faults_are_retried_to_exact_results(files, proxy, kinds):
    name = "events.avro"
    options = storage_options(proxy.endpoint)
    expected = jd.read_table(files.local(name), split_size="1 MiB")
    # Every ranged GET fails once (its retry succeeds): with a fraction, a run
    # whose few GETs all hash above it would inject nothing.
    proxy.reset(Faults(kinds=kinds, rate=1.0, seed=len(kinds), key=files.key(name)))
    table = jd.read_table(files.url(name), storage_options=options, split_size="1 MiB")
    assert proxy.faults_injected >= 2
    assert table.equals(expected)


def test_windows_fetched_ahead_are_retried_too(files, proxy, monkeypatch):
    """With 256 KiB windows a 4 MiB split reads most of its bytes ahead, on
    the read-ahead thread: faults there are retried like any other."""
    from jetliner_dist.sources import FsspecSource

    name = "events.avro"
    monkeypatch.setattr(FsspecSource, "read_size", 256 * 1024)
    options = storage_options(proxy.endpoint)
    expected = jd.read_table(files.local(name), split_size="4 MiB")
    proxy.reset(Faults(kinds=("500", "reset", "cut"), rate=1.0, seed=5, key=files.key(name)))
    table = jd.read_table(files.url(name), storage_options=options, split_size="4 MiB")
    assert proxy.faults_injected >= 10
    assert table.equals(expected)


def test_planning_survives_faults_on_listing_head_and_get(files, proxy):
    options = storage_options(proxy.endpoint)
    proxy.reset(Faults(kinds=("503", "reset"), method=None, objects_only=False, limit=4, seed=2))
    table = jd.read_table(files.url("parts/"), storage_options=options)
    assert proxy.faults_injected >= 3
    assert table.equals(jd.read_table(str(files.root / "parts")))


@pytest.mark.parametrize("fault", ["403", "bad-credentials"])
def test_access_denied_fails_at_once_naming_the_object(files, proxy, fault):
    key = files.key("events-snappy.avro")
    options = storage_options(proxy.endpoint)
    proxy.reset(Faults(kinds=(fault,), key=key, times=None))  # GETs only: planning lists
    with pytest.raises(SourceError) as caught:
        jd.read_table(files.url("events-snappy.avro"), storage_options=options)
    assert files.url("events-snappy.avro") in str(caught.value)
    assert "access denied" in str(caught.value)
    assert len(proxy.object_requests("GET", key)) == 1  # no retry storm


def test_bad_credentials_everywhere_fail_planning_without_retries(files, proxy):
    options = storage_options(proxy.endpoint)
    proxy.reset(Faults(kinds=("bad-credentials",), method=None, objects_only=False, times=None))
    with pytest.raises(SourceError) as caught:
        jd.read_table(files.url("events.avro"), storage_options=options)
    assert files.url("events.avro") in str(caught.value)
    assert len(proxy.requests) <= 3


def test_missing_objects_and_buckets_are_source_errors(s3, so, proxy):
    options = storage_options(proxy.endpoint)
    with pytest.raises(SourceError, match="no such object") as caught:
        jd.read_table(s3.url("no/such/object.avro"), storage_options=options)
    assert "no/such/object.avro" in str(caught.value)
    assert len(proxy.requests) <= 3
    with pytest.raises(SourceError):
        jd.read_table("s3://no-such-bucket-jd/x.avro", storage_options=options)
    with pytest.raises(SourceError, match="no .*match"):
        jd.read_table(s3.url("no/such/*.avro"), storage_options=so)


# -- consistency ------------------------------------------------------------------------------


def test_object_overwritten_between_planning_and_reading(files, s3, so, proxy):
    key = f"changing-{uuid.uuid4().hex[:8]}.avro"
    url = s3.upload(key, files.local("events.avro"))
    batches = jd.iter_batches(url, storage_options=so, split_size="1 MiB")  # plans now
    s3.upload(key, files.local("events-snappy.avro"))
    with pytest.raises(ObjectChangedError) as caught:
        list(batches)
    assert url in str(caught.value) and "plan the read again" in str(caught.value)
    # Planning again (fsspec's listing cache notwithstanding) reads the new object.
    assert jd.read_table(url, storage_options=so).equals(
        jd.read_table(files.local("events-snappy.avro"))
    )


def test_read_split_of_a_replaced_or_deleted_object_raises(files, s3, proxy):
    key = f"replaced-{uuid.uuid4().hex[:8]}.avro"
    s3.upload(key, files.local("events.avro"))
    options = storage_options(proxy.endpoint)
    plan = jd.plan(s3.url(key), storage_options=options, split_size="2 MiB")
    data = Path(files.local("events.avro")).read_bytes()
    s3.put(key, data[:-100] + bytes(100))  # same size, new ETag
    proxy.reset()
    with pytest.raises(ObjectChangedError):
        list(read_split(plan.splits[1], plan.spec))
    assert len(proxy.object_requests("GET", key)) == 1  # refused (412), nothing decoded
    s3.delete(key)
    with pytest.raises(ObjectChangedError, match="no longer exists"):
        list(read_split(plan.splits[0], plan.spec))


# -- engines ---------------------------------------------------------------------------------


def test_dask_on_s3_equals_local(files, so):
    pytest.importorskip("dask.dataframe")
    jdd = pytest.importorskip("jetliner_dist.dask")
    import dask

    with dask.config.set(scheduler="threads"):
        remote = jdd.read_avro(files.url("events.avro"), storage_options=so, blocksize="2 MiB")
        local = jdd.read_avro(files.local("events.avro"), blocksize="2 MiB")
        assert remote.npartitions == local.npartitions > 1
        remote_frame, local_frame = remote.compute(), local.compute()
    assert remote_frame.reset_index(drop=True).equals(local_frame.reset_index(drop=True))


def test_dask_local_cluster_workers_read_from_s3(files, so):
    assert_local_cluster_reads_like_local(files, "events.avro", so, blocksize="2 MiB")


def test_ray_on_s3_equals_local(files, so):
    assert_ray_reads_like_local(files, "events.avro", so, split_size="2 MiB")
