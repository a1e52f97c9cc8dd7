"""Numbers shared by the program compiler and the numba kernel.

Kept free of numba so that compiling a program (and importing the package)
does not load the JIT.
"""

# Instruction opcodes. An instruction is a row [op, column, a, b] of the
# program's int64 table; column -1 means "decode and discard" (projection).
OP_NULL = 0
OP_BOOLEAN = 1
OP_INT = 2
OP_LONG = 3
OP_FLOAT = 4
OP_DOUBLE = 5
OP_BYTES = 6  # a = 1: the bytes must be UTF-8 (an Avro string); b = 1: K_VIEW column
OP_FIXED = 7  # a = size
OP_ENUM = 8  # a = number of symbols
OP_DECIMAL_BYTES = 9  # a = output width (16 or 32)
OP_DECIMAL_FIXED = 10  # a = size, b = output width
OP_UUID_FIXED = 11  # 16 bytes → 36 characters
OP_DURATION = 12  # b = first of three uint32 child columns
OP_RECORD = 13  # a slot in a struct column; the fields follow in the sequence
OP_ARRAY = 14  # a = item sequence, b = smallest encoded size of an item
OP_MAP = 15  # a = entry sequence (key, value), b = smallest encoded size of an entry
OP_UNION = 16  # a = union descriptor; the branches' bodies follow inline
OP_RAW = 17  # a = sequence that skips the value; its bytes go to a binary column
OP_CALL = 18  # a = sequence to run here (a skipped recursive record)
OP_JUMP = 19  # a = offset from this instruction (the end of a union branch)

# Column kinds: what one slot of a column writes.
K_NULL = 0  # a length only
K_BITS = 1  # one bit per slot (boolean)
K_FIXED = 2  # `width` bytes per slot
K_VAR = 3  # int64 offsets + data bytes (binary, string)
K_LIST = 4  # int64 offsets into a child column
K_STRUCT = 5  # a validity bit only; children are their own columns
K_VIEW = 6  # 16-byte Arrow binary views + data bytes (strings > 12 bytes)

# Buffers per column in the address/capacity tables.
BUF_VALIDITY = 0
BUF_VALUES = 1  # values, bits or offsets
BUF_DATA = 2  # variable-length bytes

# Kernel status codes (state[S_STATUS]).
ST_OK = 0
ST_NEED_SPACE = 1
ST_TRUNCATED = 2
ST_VARINT = 3
ST_NEGATIVE_LENGTH = 4
ST_UNION_INDEX = 5
ST_ENUM_INDEX = 6
ST_UTF8 = 7
ST_INT_RANGE = 8
ST_BLOCK_END = 9
ST_COUNT = 10
ST_DEPTH = 11
ST_DECIMAL = 12
ST_SNAPPY = 13  # a block did not inflate: the SN_* reason is the detail

# Slots of the kernel's state vector (inputs marked →, outputs ←).
S_STATUS = 0  # ←
S_BLOCK = 1  # → first block, ← block to resume at / where the error is
S_RECORD = 2  # → first record in that block, ← resume / error record
S_POS = 3  # → byte position in that block, ← resume / error position
S_ROWS = 4  # ← rows decoded by this call
S_COLUMN = 5  # ← column that needs space, or the error's detail value
S_NEEDED = 6  # ← slots (or data bytes, see S_WHICH) that column needs
S_WHICH = 7  # ← BUF_VALUES: slots, BUF_DATA: data bytes
S_ROW_BASE = 8  # → rows already in the batch (the slot of aligned columns)
S_INFLATED = 9  # ↔ the block whose data is in the snappy scratch buffer (-1: none)
STATE_SIZE = 10

# A column operand with this bit set is "aligned": it holds exactly one slot
# per row (a top-level field or a struct member of one), so its slot index is
# the row number and the kernel keeps no length for it while decoding.
ALIGNED = 1 << 40
COLUMN_MASK = ALIGNED - 1

# Limits vector (kernel input).
L_ZERO_SIZE_ITEMS = 0  # items of zero encoded size one call may produce
L_RECORD_MIN_BYTES = 1  # smallest encoded size of one record (bounds a block's count)
LIMITS_SIZE = 2

# Stack frame layout.
F_KIND, F_PC, F_END, F_REMAINING, F_ITEMS, F_COLUMN, F_SEQ, F_MIN_BYTES = range(8)
FRAME_SIZE = 8
FRAME_CALL = 0
FRAME_LOOP = 1
FRAME_RAW = 2

# Block framing (frame_blocks): status codes and state slots.
FR_OK = 0  # framed every complete block in the buffer (or filled the table)
FR_MORE = 1  # the buffer ends inside a block: read more from state[FR_POS]
FR_NEGATIVE_COUNT = 2
FR_NEGATIVE_SIZE = 3
FR_TOO_LARGE = 4
FR_VARINT = 5
FR_SYNC = 6
FR_READ = 7  # a read of the file failed (walk_blocks)
FR_STATUS, FR_POS, FR_NEEDED, FR_DETAIL = range(4)
FRAME_STATE_SIZE = 4

# snappy.inflate_block: why a block failed.
SN_OK = 0
SN_CORRUPT = 1  # the tags run past the input or the output, or copy from before it
SN_SHORT = 2  # the data decompressed to fewer bytes than its preamble says
SN_CHECKSUM = 3  # the CRC32 after the block does not match
SN_SLACK = 16  # bytes the output needs past a block's data (whole-word copies)

# Snappy blocks the kernel inflates itself: rows of this table (one per block).
IN_ADDRESS, IN_SIZE, IN_CHECKSUM = range(3)  # payload address, payload size (CRC included), CRC32
# The inflation parameters (kernel input).
P_SCRATCH, P_SCRATCH_SIZE, P_CRC32 = range(3)  # scratch buffer, its size, crc32 function address
INFLATE_PARAMS_SIZE = 3
