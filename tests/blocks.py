"""The block layout of Avro container files, parsed here independently of the
reader under test: where each block's preceding sync marker begins, where the
block starts and ends, how many records it holds.

Used to state the split rule of DESIGN §3.1 as data ("a split owns the blocks
whose preceding sync marker begins in [start, end)") and to build files that
fastavro does not write (zero-record blocks). Unlike ``corruption.split_file``
it takes any sync marker (also one that occurs in the header's metadata) and
records where each block's preceding marker begins.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Sequence

import fastavro

from canonical import header_metadata
from corruption import block, compress, read_long

__all__ = ["Block", "Layout", "layout", "with_empty_blocks", "write"]

SYNC_SIZE = 16


@dataclass(frozen=True)
class Block:
    """One data block: ``marker`` is the offset of the sync marker before it
    (the header's own marker for the first block), ``start`` the offset of its
    count varint, ``end`` the offset just past its trailing sync marker."""

    marker: int
    start: int
    count: int
    end: int


@dataclass(frozen=True)
class Layout:
    header_end: int
    sync: bytes
    blocks: list[Block]

    def owned(self, start: int, end: int) -> list[Block]:
        """The blocks a split ``[start, end)`` owns (DESIGN §3.1)."""
        return [b for b in self.blocks if start <= b.marker < end]


def write(schema: Any, records: Sequence[Any], *, codec: str = "null", sync_interval: int = 16000,
          sync_marker: bytes | None = None, metadata: dict[str, str] | None = None) -> bytes:
    """An Avro file written by fastavro."""
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records, codec=codec, sync_interval=sync_interval,
                    sync_marker=sync_marker, metadata=metadata)
    return buf.getvalue()


def layout(data: bytes) -> Layout:
    """Header end, sync marker and every block of a valid file."""
    stream = io.BytesIO(data)
    header_metadata(stream)  # leaves the stream at the sync marker
    sync = stream.read(SYNC_SIZE)
    header_end = stream.tell()
    blocks = []
    pos = header_end
    while pos < len(data):
        count, after = read_long(data, pos)
        size, after = read_long(data, after)
        end = after + size + SYNC_SIZE
        if data[end - SYNC_SIZE : end] != sync:
            raise ValueError(f"block at {pos} does not end with the sync marker")
        blocks.append(Block(pos - SYNC_SIZE, pos, count, end))
        pos = end
    return Layout(header_end, sync, blocks)


def with_empty_blocks(data: bytes, codec: str) -> bytes:
    """``data`` with a zero-record block after the header and after every block."""
    shape = layout(data)
    empty = block(0, compress(codec, b""), sync=shape.sync)
    out = bytearray(data[: shape.header_end]) + empty
    for b in shape.blocks:
        out += data[b.start : b.end] + empty
    return bytes(out)
