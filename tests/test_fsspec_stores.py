"""Reading from GCS and Azure Blob Storage against local disk: real servers
on 127.0.0.1, a GCS-protocol one (gcp-storage-emulator, through gcsfs) and
Azurite (through adlfs).

``gs://`` and ``az://`` take the same path as every fsspec protocol other
than S3: ranged ``cat_file`` reads, retries of transient errors, and an
``info()`` after each read that compares the object's version (GCS's
generation, Azure's ETag) with the one planned. The tests, on each store:
plans, ``read_table``, ``read_avro``, ``scan_avro``, ``iter_batches``,
``count_rows``, prefixes and globs equal local reads; an object replaced or
deleted after planning raises ``ObjectChangedError``; missing objects are
``SourceError``; transient faults injected by a proxy are retried to exact
results; worker processes of a LocalCluster and Ray tasks read the
objects themselves.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import jetliner_dist as jd
from azure_fixtures import azure, azure_proxy  # noqa: F401  (fixtures)
from gcs_fixtures import gcs, gcs_proxy  # noqa: F401  (fixtures)
from jetliner_dist import ObjectChangedError, SourceError
from jetliner_dist.reading import read_split
from s3_fixtures import (
    Faults,
    Files,
    assert_local_cluster_reads_like_local,
    assert_plan_matches_local,
    assert_ray_reads_like_local,
    repeat_blocks,
    write_avro,
)


STORES = {"gs": ("gcs", "gcs_proxy"), "az": ("azure", "azure_proxy")}  # fixture names


@pytest.fixture(scope="module", params=list(STORES))
def store(request):
    """The server of one protocol (GcsEmulator or Azurite)."""
    return request.getfixturevalue(STORES[request.param][0])


@pytest.fixture
def store_proxy(store, request):
    """The fault-injecting proxy in front of ``store``."""
    return request.getfixturevalue(STORES[store.protocol][1])


@pytest.fixture(scope="module")
def files(store, tmp_path_factory) -> Files:
    """events.avro (~3 MB, 80 blocks, deflate) and parts/ (four small files
    and a _SUCCESS marker)."""
    root = tmp_path_factory.mktemp(f"{store.protocol}-files")
    found = Files(root, f"t-{uuid.uuid4().hex[:8]}/", f"{store.protocol}://{store.bucket}")
    base = write_avro(root / "base.avro", 20_000, codec="deflate", block_rows=1000).read_bytes()
    (root / "events.avro").write_bytes(repeat_blocks(base, 4))
    (root / "parts").mkdir()
    for i in range(4):
        write_avro(root / "parts" / f"part-{i:04d}.avro", 1_500, codec="snappy", seed=20 + i,
                   start=i * 1_500, block_rows=400)  # fmt: skip
    (root / "parts" / "_SUCCESS").write_bytes(b"")
    for path in [root / "events.avro", *sorted((root / "parts").iterdir())]:
        store.upload(found.key(str(path.relative_to(root))), path)
    return found


@pytest.fixture
def so(store) -> dict:
    return store.storage_options


def test_plan_matches_local(files, store, so):
    version = store.version(files.key("events.avro"))
    assert_plan_matches_local(files, "events.avro", so, version, split_size="512 KiB")


@pytest.mark.parametrize(
    "options",
    [{}, {"split_size": "512 KiB"}, {"split_size": "300 KiB", "columns": ["tags", "id"]},
     {"split_size": "512 KiB", "n_rows": 33_333, "max_workers": 1}],
    ids=["default", "splits", "columns", "n_rows-one-thread"],
)  # fmt: skip
def test_read_table_equals_local(files, so, options):
    local = jd.read_table(files.local("events.avro"), **options)
    remote = jd.read_table(files.url("events.avro"), storage_options=so, **options)
    assert remote.equals(local)


def test_read_avro_scan_avro_and_count_rows_equal_local(files, so):
    url, local = files.url("events.avro"), files.local("events.avro")
    assert jd.read_avro(url, storage_options=so).equals(jd.read_avro(local))

    def query(frame: pl.LazyFrame) -> pl.DataFrame:
        return frame.filter(pl.col("amount") > 300.0).select("id", "user").head(25_000).collect()

    remote = query(jd.scan_avro(url, storage_options=so, split_size="512 KiB"))
    assert remote.height == 25_000
    assert remote.equals(query(jd.scan_avro(local, split_size="512 KiB")))
    assert jd.count_rows(url, storage_options=so) == jd.count_rows(local) == 80_000
    assert jd.read_avro_schema(url, storage_options=so) == jd.read_avro_schema(local)
    batches = list(jd.iter_batches(url, storage_options=so, batch_rows=7_000, split_size="1 MiB"))
    assert max(b.num_rows for b in batches) <= 7_000
    assert pa.Table.from_batches(batches).equals(jd.read_table(local))


def test_prefixes_globs_and_lists_equal_local(files, so):
    parts = files.root / "parts"
    expected = jd.read_table(str(parts / "*.avro"))
    names = sorted(p.name for p in parts.glob("*.avro"))
    for source in (
        files.url("parts/*.avro"),
        files.url("parts/"),  # its .avro objects, not _SUCCESS
        [files.url(f"parts/{n}") for n in names],
    ):
        table = jd.read_table(source, storage_options=so, include_file_paths="path")
        assert table.drop(["path"]).equals(expected), source
        assert sorted(set(table.column("path").to_pylist())) == [
            files.url(f"parts/{n}") for n in names
        ]


def test_object_replaced_or_deleted_after_planning(files, store, so):
    key = f"changing-{uuid.uuid4().hex[:8]}.avro"
    data = Path(files.local("events.avro")).read_bytes()
    url = store.put(key, data)
    plan = jd.plan(url, storage_options=so, split_size="512 KiB")
    batches = jd.iter_batches(url, storage_options=so, split_size="512 KiB")  # plans now
    store.put(key, data[:-100] + bytes(100))  # same size, a new version
    with pytest.raises(ObjectChangedError) as caught:
        list(batches)
    assert url in str(caught.value) and "plan the read again" in str(caught.value)
    with pytest.raises(ObjectChangedError):
        list(read_split(plan.splits[1], plan.spec))
    store.delete(key)
    with pytest.raises(ObjectChangedError, match="no longer exists"):
        list(read_split(plan.splits[0], plan.spec))
    # Planning again reads what is there now.
    store.put(key, data)
    assert jd.read_table(url, storage_options=so).equals(jd.read_table(files.local("events.avro")))


@pytest.mark.parametrize("kind", ["500", "503", "reset", "cut"])
def test_transient_faults_are_retried_to_exact_results(files, store, store_proxy, kind):
    """Range reads of two splits that fail once (through the proxy) are
    retried: by the file system (gcsfs, the Azure SDK), or by the reader for
    what escapes their retries. The faults come after planning, so that both
    fall on splits read side by side: the Azure SDK waits 15 s or more before
    it retries a 500 or 503."""
    options = store.options_through(store_proxy.endpoint)
    # iter_batches plans at once; the splits are read as batches are taken.
    batches = jd.iter_batches(files.url("events.avro"), storage_options=options,
                              split_size="1 MiB", max_workers=2)  # fmt: skip
    key = store.request_key(files.key("events.avro"))
    store_proxy.reset(Faults(kinds=(kind,), key=key, limit=2))
    table = pa.Table.from_batches(list(batches))
    assert store_proxy.faults_injected == 2
    assert table.equals(jd.read_table(files.local("events.avro")))


def test_access_denied_fails_at_once_naming_the_object(files, store, store_proxy):
    options = store.options_through(store_proxy.endpoint)
    key = store.request_key(files.key("events.avro"))
    plan = jd.plan(files.url("events.avro"), storage_options=options, split_size="1 MiB")
    store_proxy.reset(Faults(kinds=("403",), key=key, times=None))
    with pytest.raises(SourceError) as caught:
        list(read_split(plan.splits[0], plan.spec))
    assert files.key("events.avro") in str(caught.value)
    if store.protocol == "az":  # gcsfs says only OSError("Forbidden: ..."), without a status
        assert "access denied" in str(caught.value) and "storage_options" in str(caught.value)
    assert len(store_proxy.object_requests("GET", key)) == 1  # not retried


def test_missing_objects_are_source_errors_naming_them(store, so):
    missing = store.url(f"no-such-{uuid.uuid4().hex[:8]}.avro")
    with pytest.raises(SourceError) as caught:
        jd.read_table(missing, storage_options=so)
    assert missing.partition("://")[2] in str(caught.value)
    with pytest.raises(SourceError):
        jd.read_table(store.url(f"no-such-prefix-{uuid.uuid4().hex[:8]}/*.avro"),
                      storage_options=so)  # fmt: skip


def test_dask_local_cluster_workers_read_from_the_store(files, so):
    assert_local_cluster_reads_like_local(files, "events.avro", so, blocksize="512 KiB")


def test_ray_reads_from_the_store(files, so):
    assert_ray_reads_like_local(files, "events.avro", so, split_size="512 KiB")
