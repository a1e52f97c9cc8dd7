"""One exception tree for everything jetliner_dist raises.

Deep code raises without context; the layer that knows the file adds it with
:meth:`JetlinerDistError.with_context`. Every extra constructor argument is
optional and :meth:`__reduce__` keeps them, so errors survive pickling back from a
worker process.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "JetlinerDistError",
    "SourceError",
    "ObjectChangedError",
    "SchemaError",
    "AvroFormatError",
    "HeaderError",
    "CodecError",
    "CorruptBlockError",
    "SyncMarkerError",
    "TruncatedError",
    "DecompressionError",
    "DecodeError",
    "LimitExceededError",
]


class JetlinerDistError(Exception):
    """Root of every error raised by jetliner_dist.

    ``path``, ``block`` (0-based index of the block in its file; None for a
    split that starts mid-file, which knows offsets but not how many blocks
    precede it), ``offset`` (byte offset in the file, always exact) and
    ``record`` (0-based index of the record inside the block) are
    filled in where known.
    """

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        block: int | None = None,
        offset: int | None = None,
        record: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.block = block
        self.offset = offset
        self.record = record

    def with_context(self, **context: Any) -> "JetlinerDistError":
        """Fill in missing location fields (never overwrites known ones); returns self."""
        for name, value in context.items():
            if value is not None and getattr(self, name, None) is None:
                setattr(self, name, value)
        return self

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"file {self.path!r}")
        if self.block is not None:
            where.append(f"block {self.block}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        if self.record is not None:
            where.append(f"record {self.record}")
        if not where:
            return self.message
        return f"{self.message} ({', '.join(where)})"

    def __reduce__(self):  # keeps keyword-only context through pickling
        return (
            _rebuild,
            (type(self), self.message, self.path, self.block, self.offset, self.record),
        )


def _rebuild(cls, message, path, block, offset, record):
    return cls(message, path=path, block=block, offset=offset, record=record)


class SourceError(JetlinerDistError, OSError):
    """A source cannot be listed, opened or read (missing file, permission, I/O)."""


class ObjectChangedError(SourceError):
    """An object changed (ETag, version or size) or vanished after it was planned.

    Reading on would decode a mix of old and new bytes; plan again to read the
    new content.
    """


class SchemaError(JetlinerDistError, ValueError):
    """A schema is invalid, or an option does not fit the schema (unknown column)."""


class AvroFormatError(JetlinerDistError, ValueError):
    """The bytes are not a valid Avro object container file."""


class HeaderError(AvroFormatError):
    """Bad magic, unreadable metadata or a missing schema in the file header."""


class CodecError(AvroFormatError):
    """The header names a codec that is unknown or not installed."""


class CorruptBlockError(AvroFormatError):
    """A data block is malformed: bad counts or sizes, or its records do not fit it."""


class SyncMarkerError(CorruptBlockError):
    """A block does not end with the file's sync marker."""


class TruncatedError(CorruptBlockError, EOFError):
    """The file ends in the middle of a block or a value."""


class DecompressionError(CorruptBlockError):
    """A block's payload does not decompress, or its checksum does not match."""


class DecodeError(CorruptBlockError):
    """Record data is invalid: bad union or enum index, invalid UTF-8, bad length."""


class LimitExceededError(CorruptBlockError):
    """A count or size exceeds a safety limit (a decompression bomb, an absurd count)."""
