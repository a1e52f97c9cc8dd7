"""Benchmarks: jetliner_dist side by side with jetliner, polars-avro and fastavro.

Run ``python -m benchmarks.run --help``. Data files are generated once into
``benchmarks/data/`` (git-ignored) and reused.
"""
