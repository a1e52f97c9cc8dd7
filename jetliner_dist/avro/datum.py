"""A small pure-Python decoder for values the kernel keeps as raw bytes.

Recursive values (a field that refers to an enclosing record) have no Arrow
type of fixed depth; the kernel stores their Avro bytes and this module turns
them into JSON text, following the canonical conventions of the conformance
corpus (bytes as base64, decimals as exact strings, temporal values in ISO form,
unions untagged). Such values are rare and small, so clarity wins over speed.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
from decimal import Decimal

from jetliner_dist.avro.binary import read_bytes, read_long
from jetliner_dist.avro.schema import (
    Array,
    Enum,
    Fixed,
    Map,
    Primitive,
    Record,
    Schema,
    UnionType,
)
from jetliner_dist.errors import DecodeError, LimitExceededError, TruncatedError

def to_json_text(node: Schema, data: bytes) -> str:
    """Decode one value of ``node`` from ``data`` (all of it) to JSON text."""
    try:
        value, end = _decode(node, memoryview(data), 0)
    except RecursionError:
        raise LimitExceededError(
            "a recursive value nests too deeply to render as JSON text "
            f"(more than about {sys.getrecursionlimit()} levels)"
        ) from None
    if end != len(data):
        raise DecodeError("recursive value has trailing bytes")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _decode(node: Schema, buf: memoryview, pos: int):
    if isinstance(node, Primitive):
        return _primitive(node, buf, pos)
    if isinstance(node, Record):
        out = {}
        for fld in node.fields:
            out[fld.name], pos = _decode(fld.type, buf, pos)
        return out, pos
    if isinstance(node, Enum):
        index, pos = read_long(buf, pos)
        if not 0 <= index < len(node.symbols):
            raise DecodeError(f"enum index {index} out of range for {node.fullname}")
        return node.symbols[index], pos
    if isinstance(node, Fixed):
        raw = _take(buf, pos, node.size)
        return _fixed_value(node, raw), pos + node.size
    if isinstance(node, UnionType):
        index, pos = read_long(buf, pos)
        if not 0 <= index < len(node.branches):
            raise DecodeError(f"union index {index} out of range")
        return _decode(node.branches[index], buf, pos)
    if isinstance(node, Array):
        return _repeated(buf, pos, lambda p: _decode(node.items, buf, p), list)
    return _repeated(buf, pos, lambda p: _map_entry(node, buf, p), dict)


def _map_entry(node: Map, buf: memoryview, pos: int):
    key, pos = read_bytes(buf, pos)
    value, pos = _decode(node.values, buf, pos)
    return (key.decode("utf-8"), value), pos


def _repeated(buf: memoryview, pos: int, decode_one, collect):
    """Array items or map entries: blocks of (count, [size], values) ending in 0."""
    values = []
    while True:
        count, pos = read_long(buf, pos)
        if count == 0:
            return collect(values), pos
        if count < 0:  # a negative count is followed by the block's byte size
            count = -count
            _, pos = read_long(buf, pos)
        if count > max(len(buf) - pos, 1 << 16):
            raise DecodeError(f"array or map block count {count} exceeds the data")
        for _ in range(count):
            value, pos = decode_one(pos)
            values.append(value)


def _take(buf: memoryview, pos: int, size: int) -> bytes:
    if pos + size > len(buf):
        raise TruncatedError("value runs past the end of its data")
    return bytes(buf[pos : pos + size])


def _primitive(node: Primitive, buf: memoryview, pos: int):
    kind = node.type
    logical = node.logical.name if node.logical else None
    if kind == "null":
        return None, pos
    if kind == "boolean":
        return _take(buf, pos, 1) != b"\x00", pos + 1
    if kind in ("int", "long"):
        value, pos = read_long(buf, pos)
        return _integer_value(logical, value), pos
    if kind == "float":
        (value,) = struct.unpack("<f", _take(buf, pos, 4))
        return _float_value(value), pos + 4
    if kind == "double":
        (value,) = struct.unpack("<d", _take(buf, pos, 8))
        return _float_value(value), pos + 8
    raw, pos = read_bytes(buf, pos)
    if kind == "string":
        text = raw.decode("utf-8")
        return (text.lower() if logical == "uuid" else text), pos
    if logical == "decimal":
        return _decimal_text(raw, node.logical.scale), pos
    return base64.b64encode(raw).decode("ascii"), pos


def _fixed_value(node: Fixed, raw: bytes):
    logical = node.logical.name if node.logical else None
    if logical == "decimal":
        return _decimal_text(raw, node.logical.scale)
    if logical == "uuid":
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if logical == "duration":
        months, days, millis = struct.unpack("<III", raw)
        return {"months": months, "days": days, "millis": millis}
    return base64.b64encode(raw).decode("ascii")


def _float_value(value: float):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _decimal_text(raw: bytes, scale: int) -> str:
    unscaled = int.from_bytes(raw, "big", signed=True) if raw else 0
    return f"{Decimal(unscaled).scaleb(-scale):.{scale}f}"


def _integer_value(logical: str | None, value: int):
    if logical == "date":
        return _date_text(value)
    if logical == "time-millis":
        return _time_text(value * 1000)
    if logical == "time-micros":
        return _time_text(value)
    if logical and "timestamp-" in logical:
        unit = logical.rpartition("-")[2]
        per_second = {"millis": 1000, "micros": 1_000_000, "nanos": 1_000_000_000}[unit]
        digits = 9 if unit == "nanos" else 6
        text = _timestamp_text(value, per_second, digits)
        return text if logical.startswith("local-") else text + "Z"
    return value


def _date_text(days: int) -> str:
    year, month, day = _civil_from_days(days)
    return f"{_year_text(year)}-{month:02d}-{day:02d}"


def _time_text(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}"


def _timestamp_text(value: int, per_second: int, digits: int) -> str:
    seconds, fraction = divmod(value, per_second)
    days, second_of_day = divmod(seconds, 86400)
    fraction = fraction * 10**digits // per_second
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{_date_text(days)}T{hour:02d}:{minute:02d}:{second:02d}.{fraction:0{digits}d}"


def _year_text(year: int) -> str:
    if 0 <= year <= 9999:
        return f"{year:04d}"
    return f"{'+' if year > 0 else '-'}{abs(year):05d}"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.

    Howard Hinnant's algorithm: exact for any year, unlike ``datetime``.
    """
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return year + (month <= 2), month, day
