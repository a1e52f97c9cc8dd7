"""Raw-memory intrinsics for the numba kernel.

The kernel reads blocks and writes Arrow buffers through integer addresses held
in small tables: a typed list of arrays was measured 15–30× slower, and raw
addresses let one compiled kernel serve every schema (the buffers' number and
types vary by schema; the kernel's signature does not). Every access is
bounds-checked by the kernel before it reaches these.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _pointer(builder, address, llvm_type):
    return builder.inttoptr(address, ir.PointerType(llvm_type))


@intrinsic
def store_i8(typingctx, address, value):
    """*(int8*)address = value"""
    def codegen(context, builder, signature, args):
        byte = builder.trunc(args[1], ir.IntType(8)) if args[1].type.width > 8 else args[1]
        builder.store(byte, _pointer(builder, args[0], ir.IntType(8)), align=1)
    return types.void(types.int64, value), codegen


@intrinsic
def store_i32(typingctx, address, value):
    """*(int32*)address = value (truncating)"""
    def codegen(context, builder, signature, args):
        word = builder.trunc(args[1], ir.IntType(32)) if args[1].type.width > 32 else args[1]
        builder.store(word, _pointer(builder, args[0], ir.IntType(32)), align=1)
    return types.void(types.int64, value), codegen


@intrinsic
def store_i64(typingctx, address, value):
    """*(int64*)address = value"""
    def codegen(context, builder, signature, args):
        builder.store(args[1], _pointer(builder, args[0], ir.IntType(64)), align=1)
    return types.void(types.int64, types.int64), codegen


@intrinsic
def load_u8(typingctx, address):
    """*(uint8*)address, widened to int64"""
    def codegen(context, builder, signature, args):
        byte = builder.load(_pointer(builder, args[0], ir.IntType(8)), align=1)
        return builder.zext(byte, ir.IntType(64))
    return types.int64(types.int64), codegen


@intrinsic
def load_i64(typingctx, address):
    """*(int64*)address"""
    def codegen(context, builder, signature, args):
        return builder.load(_pointer(builder, args[0], ir.IntType(64)), align=1)
    return types.int64(types.int64), codegen


@intrinsic
def load_u32(typingctx, address):
    """*(uint32*)address, widened to int64"""
    def codegen(context, builder, signature, args):
        word = builder.load(_pointer(builder, args[0], ir.IntType(32)), align=1)
        return builder.zext(word, ir.IntType(64))
    return types.int64(types.int64), codegen


@intrinsic
def copy_bytes(typingctx, destination, source, count):
    """memcpy(destination, source, count)"""
    def codegen(context, builder, signature, args):
        byte = ir.IntType(8)
        cgutils.raw_memcpy(
            builder, _pointer(builder, args[0], byte), _pointer(builder, args[1], byte), args[2], 1
        )
    return types.void(types.int64, types.int64, types.int64), codegen



@intrinsic
def call_pread(typingctx, function, fd, address, count, offset):
    """((ssize_t (*)(int, void *, size_t, off_t)) function)(fd, address, count, offset)

    ``function`` is the address of libc's ``pread``, passed in at run time:
    a ctypes function baked into the kernel would keep it from being cached.
    """
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        kind = ir.FunctionType(i64, [ir.IntType(32), ir.PointerType(ir.IntType(8)), i64, i64])
        callee = builder.inttoptr(args[0], ir.PointerType(kind))
        fd32 = builder.trunc(args[1], ir.IntType(32))
        return builder.call(callee, [fd32, _pointer(builder, args[2], ir.IntType(8)), args[3], args[4]])
    return types.int64(types.int64, types.int64, types.int64, types.int64, types.int64), codegen


@intrinsic
def call_crc32(typingctx, function, initial, address, length):
    """((uint32_t (*)(uint32_t, const uint8_t *, uint64_t)) function)(initial, address, length)

    ``function`` is the address of a zlib-compatible CRC32 such as ISA-L's
    ``crc32_gzip_refl``; the result is widened to int64.
    """
    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        kind = ir.FunctionType(i32, [i32, ir.PointerType(ir.IntType(8)), i64])
        callee = builder.inttoptr(args[0], ir.PointerType(kind))
        initial32 = builder.trunc(args[1], i32)
        result = builder.call(callee, [initial32, _pointer(builder, args[2], ir.IntType(8)), args[3]])
        return builder.zext(result, i64)
    return types.int64(types.int64, types.int64, types.int64, types.int64), codegen
