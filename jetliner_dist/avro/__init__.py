"""The Avro object container format alone: no file systems, no engines.

Submodules: ``binary`` (varints), ``header``, ``codecs``, ``schema`` (the schema
model), ``arrow_types`` (Avro → Arrow mapping), ``program`` (schema → decoder
program), ``kernel`` (the numba decoder, imported lazily), ``blocks`` (block
framing and decompression), ``assemble`` (decoded buffers → Arrow arrays) and
``datum`` (a small pure-Python decoder for recursive values).
"""
