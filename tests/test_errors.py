"""The exception tree (``jetliner_dist.errors``): one root, builtins mixed in,
location context that survives pickling back from a worker, and a light
``import jetliner_dist``.
"""

from __future__ import annotations

import builtins
import copy
import json
import pickle
import subprocess
import sys

import pytest

import jetliner_dist as jd
from jetliner_dist import errors
from jetliner_dist.errors import (
    AvroFormatError,
    CodecError,
    CorruptBlockError,
    DecodeError,
    DecompressionError,
    HeaderError,
    JetlinerDistError,
    LimitExceededError,
    ObjectChangedError,
    SchemaError,
    SourceError,
    SyncMarkerError,
    TruncatedError,
)

ALL = [getattr(errors, name) for name in errors.__all__]

# What `except <builtin>` must catch, class by class.
BUILTINS = {
    JetlinerDistError: (Exception,),
    SourceError: (OSError,),
    ObjectChangedError: (OSError, SourceError),
    SchemaError: (ValueError,),
    AvroFormatError: (ValueError,),
    HeaderError: (ValueError, AvroFormatError),
    CodecError: (ValueError, AvroFormatError),
    CorruptBlockError: (ValueError, AvroFormatError),
    SyncMarkerError: (ValueError, CorruptBlockError),
    TruncatedError: (ValueError, EOFError, CorruptBlockError),
    DecompressionError: (ValueError, CorruptBlockError),
    DecodeError: (ValueError, CorruptBlockError),
    LimitExceededError: (ValueError, CorruptBlockError),
}

CONTEXT = dict(path="s3://bucket/dir/part-0001.avro", block=17, offset=123_456_789, record=42)


def ids(classes):
    return [cls.__name__ for cls in classes]


def test_every_class_is_covered():
    assert set(ALL) == set(BUILTINS), "a new error class needs its builtin mapping here"
    assert len(ALL) == len(set(errors.__all__))


def test_errors_are_exported_from_the_package():
    for cls in ALL:
        assert getattr(jd, cls.__name__) is cls
        assert cls.__name__ in jd.__all__


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_class_is_root_and_intended_builtin(cls):
    assert issubclass(cls, JetlinerDistError)
    for base in BUILTINS[cls]:
        assert issubclass(cls, base), f"{cls.__name__} is not a {base.__name__}"
    if not issubclass(cls, SourceError) and cls is not JetlinerDistError:
        assert not issubclass(cls, OSError), "format errors are not I/O errors"


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_except_builtin_catches_it(cls):
    for base in BUILTINS[cls] + (JetlinerDistError,):
        try:
            raise cls("boom", **CONTEXT)
        except base as caught:  # the point: plain `except ValueError` works
            assert type(caught) is cls
        else:  # pragma: no cover
            pytest.fail(f"except {base.__name__} did not catch {cls.__name__}")


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_class_names_do_not_shadow_builtins(cls):
    assert not hasattr(builtins, cls.__name__)


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_keeps_everything(cls, protocol):
    error = cls("block count -3 is negative", **CONTEXT)
    back = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(back) is cls
    assert back.message == error.message
    for name, value in CONTEXT.items():
        assert getattr(back, name) == value, name
    assert str(back) == str(error)
    assert back.args == error.args


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_pickle_round_trip_without_context(cls):
    for error in (cls(), cls("only a message"), cls("partial", block=0, offset=0)):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is cls
        assert (back.message, back.path, back.block, back.offset, back.record) == (
            error.message, error.path, error.block, error.offset, error.record,
        )  # fmt: skip
        assert str(back) == str(error)


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_copy_and_deepcopy(cls):
    error = cls("x", **CONTEXT)
    for twin in (copy.copy(error), copy.deepcopy(error)):
        assert type(twin) is cls and str(twin) == str(error) and twin.record == 42


@pytest.mark.parametrize("cls", ALL, ids=ids(ALL))
def test_str_names_file_block_offset_record(cls):
    text = str(cls("sync marker mismatch", **CONTEXT))
    assert text.startswith("sync marker mismatch")
    assert CONTEXT["path"] in text
    assert "block 17" in text
    assert "123456789" in text
    assert "record 42" in text


def test_str_without_context_is_the_message():
    assert str(DecodeError("bad union index")) == "bad union index"
    assert str(DecodeError("bad", block=0)) == "bad (block 0)"  # block 0 is a real place


def test_with_context_fills_only_missing_fields():
    error = DecodeError("bad", block=3)
    same = error.with_context(path="a.avro", block=9, offset=10, record=None)
    assert same is error
    assert (error.path, error.block, error.offset, error.record) == ("a.avro", 3, 10, None)
    error.with_context(path="b.avro")
    assert error.path == "a.avro"


def test_a_real_error_pickles_with_its_context(tmp_path):
    """An error raised by a read (as a worker would send it back) round-trips."""
    from corruption import OTHER_SYNC, block, header, zigzag

    schema = {"type": "record", "name": "r", "fields": [{"name": "a", "type": "long"}]}
    path = tmp_path / "bad.avro"
    path.write_bytes(header(schema) + block(1, zigzag(1)) + block(1, zigzag(2), sync=OTHER_SYNC))
    with pytest.raises(SyncMarkerError) as info:
        jd.read_table(str(path))
    error = info.value
    assert (error.path, error.block) == (str(path), 1) and error.offset is not None
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is SyncMarkerError
    assert (back.path, back.block, back.offset, back.record, str(back)) == (
        error.path, error.block, error.offset, error.record, str(error),
    )  # fmt: skip


HEAVY = ["numba", "pyarrow", "polars", "numpy", "llvmlite", "dask", "distributed", "ray"]


def test_import_is_light():
    """``import jetliner_dist`` (and its errors) loads no JIT, no Arrow, no engine."""
    code = (
        "import sys, json\n"
        "import jetliner_dist, jetliner_dist.errors\n"
        "jetliner_dist.JetlinerDistError, jetliner_dist.DecodeError\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
