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
from jetliner_dist.errors import DecodeError, TruncatedError

def to_json_text(node: Schema, data: bytes) -> str:
    """Decode one value of ``node`` from ``data`` (all of it) to JSON text.

    Iterative, with an explicit stack: values nest as deep as the kernel
    accepts (thousands of levels) without Python recursion.
    """
    return _JsonWriter(memoryview(data)).write(node)


class _JsonWriter:
    """Writes JSON text while walking the schema and the bytes in step.

    The stack holds what is left to do, last first: text to emit, a value to
    decode, or the rest of an array/map (its items left in the current block).
    """

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0
        self.out: list[str] = []

    def write(self, root: Schema) -> str:
        stack: list[tuple] = [("value", root)]
        while stack:
            item = stack.pop()
            if item[0] == "text":
                self.out.append(item[1])
            elif item[0] == "value":
                self._value(item[1], stack)
            else:
                self._more_items(item[1], item[2], item[3], stack)
        if self.pos != len(self.buf):
            raise DecodeError("recursive value has trailing bytes")
        return "".join(self.out)

    def _value(self, node: Schema, stack: list) -> None:
        buf = self.buf
        if isinstance(node, Record):
            self.out.append("{")
            stack.append(("text", "}"))
            for i in range(len(node.fields) - 1, -1, -1):
                fld = node.fields[i]
                stack.append(("value", fld.type))
                stack.append(("text", ("," if i else "") + json.dumps(fld.name) + ":"))
        elif isinstance(node, UnionType):
            index, self.pos = read_long(buf, self.pos)
            if not 0 <= index < len(node.branches):
                raise DecodeError(f"union index {index} out of range")
            stack.append(("value", node.branches[index]))
        elif isinstance(node, (Array, Map)):
            self.out.append("[" if isinstance(node, Array) else "{")
            self._more_items(node, 0, True, stack)
        else:
            self.out.append(_dump(self._scalar(node)))

    def _more_items(self, node: Array | Map, left: int, first: bool, stack: list) -> None:
        """Emit the next item of an array or map, reading block counts as needed."""
        buf = self.buf
        if left == 0:
            left, self.pos = read_long(buf, self.pos)
            if left < 0:  # a negative count is followed by the block's byte size
                left = -left
                _, self.pos = read_long(buf, self.pos)
            if left > max(len(buf) - self.pos, 1 << 16):
                raise DecodeError(f"array or map block count {left} exceeds the data")
            if left == 0:
                self.out.append("]" if isinstance(node, Array) else "}")
                return
        if not first:
            self.out.append(",")
        stack.append(("items", node, left - 1, False))
        if isinstance(node, Array):
            stack.append(("value", node.items))
        else:
            key, self.pos = read_bytes(buf, self.pos)
            self.out.append(_dump(key.decode("utf-8")) + ":")
            stack.append(("value", node.values))

    def _scalar(self, node: Schema):
        buf = self.buf
        if isinstance(node, Primitive):
            value, self.pos = _primitive(node, buf, self.pos)
            return value
        if isinstance(node, Enum):
            index, self.pos = read_long(buf, self.pos)
            if not 0 <= index < len(node.symbols):
                raise DecodeError(f"enum index {index} out of range for {node.fullname}")
            return node.symbols[index]
        raw = _take(buf, self.pos, node.size)
        self.pos += node.size
        return _fixed_value(node, raw)


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
    # Built from its digits: arithmetic (scaleb) would round to the default
    # context's 28 digits, and Avro decimals go up to 76.
    digits = tuple(int(d) for d in str(abs(unscaled)))
    return f"{Decimal((int(unscaled < 0), digits, -scale)):f}"


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
