"""Parquet tables, run directories and provenance."""
