"""The S3 benchmark's server answers every GET exactly as moto as shipped does.

``benchmarks.moto_ranges`` changes only how moto finds a ranged GET's bytes;
both servers run side by side here and every answer is compared.
"""

from __future__ import annotations

import os
from typing import Iterator

import boto3
import pytest

from benchmarks.s3_bench import MotoProcess

BUCKET = "moto-ranges"
SIZE = 1_000_003


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, object]]:
    servers = {"stock": MotoProcess(stock=True), "ranges": MotoProcess()}
    data = os.urandom(SIZE)
    made = {}
    try:
        for name, server in servers.items():
            client = boto3.client(
                "s3", endpoint_url=server.endpoint, region_name="us-east-1",
                aws_access_key_id="test", aws_secret_access_key="test",
            )  # fmt: skip
            client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key="object", Body=data)
            made[name] = client
        yield made
    finally:
        for server in servers.values():
            server.stop()


def _get(client, **options) -> tuple[int, bytes, str | None]:
    try:
        response = client.get_object(Bucket=BUCKET, Key="object", **options)
    except client.exceptions.ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], b"", exc.response["Error"]["Code"]
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    return status, response["Body"].read(), response.get("ContentRange")


@pytest.mark.parametrize("header", [
    None,                                 # the whole object
    "bytes=0-0", "bytes=10-99", f"bytes=0-{SIZE - 1}", "bytes=999000-",
    f"bytes=1000-{SIZE + 500}",           # past the end: clipped
    f"bytes={SIZE}-", f"bytes={SIZE + 7}-{SIZE + 9}",  # nothing there: 416
    "bytes=-100",                         # a suffix: moto's own path
    "bytes=10-5", "bytes=0-1,5-9", "chunks=3-4",     # not one range: moto's own path
])  # fmt: skip
def test_ranged_gets_answer_as_moto_does(clients, header: str | None) -> None:
    options = {} if header is None else {"Range": header}
    stock = _get(clients["stock"], **options)
    served = _get(clients["ranges"], **options)
    assert served[0] == stock[0] and served[2] == stock[2]
    assert served[1] == stock[1]  # the same bytes (both servers hold the same object)


def test_a_range_is_read_from_the_stored_object(clients) -> None:
    """The bytes are the object's, not just equal between servers."""
    whole = _get(clients["ranges"])[1]
    status, body, content_range = _get(clients["ranges"], Range="bytes=123456-654320")
    assert (status, content_range) == (206, f"bytes 123456-654320/{SIZE}")
    assert body == whole[123456:654321]
