"""Batch runs: parameter sweeps (and, next, shards and backends)."""
