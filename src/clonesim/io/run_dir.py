"""Run directories: hive-partitioned zstd Parquet written atomically, and run.json.

Layout (DESIGN §5)::

    RUN_DIR/run.json                      written last: its presence marks a complete run
    RUN_DIR/patients/schedule=NAME/part-00000.parquet
    RUN_DIR/emergence/schedule=NAME/part-00000.parquet
    RUN_DIR/trajectories/schedule=NAME/part-00000.parquet
    RUN_DIR/phase_changes/schedule=NAME/part-00000.parquet

Every file is written to a temporary name in its directory and renamed into
place, so a killed run never leaves a file that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from clonesim.config.errors import ClonesimError

PROVENANCE_KEY = b"clonesim"
_WRITER = f"{socket.gethostname()}-{os.getpid()}"
RUN_JSON = "run.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


#: zstd level: 3 (zstd's default). Level 9 gave trajectories ~5 % fewer bytes for ~1.7x
#: the write time, which for sweeps of small points was a tenth of the simulation's.
ZSTD_LEVEL = 3
#: Columns that get min/max statistics (row-group skipping when a scan filters on them);
#: statistics on every column cost a quarter of the write time and are of no use for
#: labels (dictionary-encoded, or the hive partition) or per-patient values.
STATISTICS_COLUMNS = ("replicate", "day")
#: Integer columns whose values are cell counts: large, noisy, of similar magnitude
#: within a compartment's time series. BYTE_STREAM_SPLIT puts each byte of the int64
#: in its own stream, so zstd squeezes the mostly-zero high bytes (trajectories' cells:
#: ~2.1 bytes/row, against ~2.8 plain and ~3.7 delta or dictionary). Integers in
#: BYTE_STREAM_SPLIT are Parquet format 2.11: pyarrow >= 16 (required) and polars read
#: them; other readers need a recent version (e.g. DuckDB).
CELL_COUNT_COLUMNS = frozenset({"cells", "nadir_cells", "final_cells", "cells_at_start"})
CELL_COUNT_ENCODING = "BYTE_STREAM_SPLIT"
#: Integer columns in runs (every table is written replicate by replicate).
DELTA_COLUMNS = frozenset({"replicate"})


def column_encodings(schema: pa.Schema) -> tuple[list[str], dict[str, str]]:
    """(columns to dictionary-encode, explicit encodings of the others) for ``schema``.

    Cell counts get :data:`CELL_COUNT_ENCODING` and replicate numbers delta encoding;
    every other column is dictionary-encoded: labels, so they read back as the same
    Enum/Categorical dtypes, and days and small integers, whose values repeat (record
    days, the step grid); Parquet falls back to plain when a dictionary grows too large.
    """
    encoding: dict[str, str] = {}
    for field in schema:
        if pa.types.is_int64(field.type) and field.name in CELL_COUNT_COLUMNS:
            encoding[field.name] = CELL_COUNT_ENCODING
        elif pa.types.is_integer(field.type) and field.name in DELTA_COLUMNS:
            encoding[field.name] = "DELTA_BINARY_PACKED"
    return [name for name in schema.names if name not in encoding], encoding


def write_parquet(frame: pl.DataFrame, path: Path, provenance: Mapping[str, Any]) -> None:
    """Write one table as zstd Parquet (dictionary-encoded labels), provenance in its metadata.

    Encodings per column are chosen by :func:`column_encodings`; the values, their
    order and the dtypes read back are exactly the frame's.
    """
    table = frame.to_arrow()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique to this host, process and thread (pyarrow creates it: one open per file, not two).
    temporary = path.with_name(f".{path.name}.{_WRITER}-{threading.get_ident()}.tmp")
    try:
        dictionary, encoding = column_encodings(table.schema)
        with pq.ParquetWriter(temporary, table.schema, compression="zstd",
                              compression_level=ZSTD_LEVEL, use_dictionary=dictionary,
                              write_statistics=[c for c in STATISTICS_COLUMNS if c in table.schema.names],
                              column_encoding=encoding or None) as writer:
            writer.write_table(table)
            # In the footer's key-value metadata only: as schema metadata it would also be
            # copied, base64-encoded, into the ARROW:schema entry (twice the bytes).
            # Keys keep their order: the config's order is meaningful (founder phenotype,
            # genotype labels).
            writer.add_key_value_metadata({PROVENANCE_KEY: json.dumps(provenance).encode()})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def part_path(run_dir: Path, table: str, schedule: str, part: int | str) -> Path:
    """``TABLE/schedule=NAME/part-PART.parquet``; an integer part is zero-padded to 5 digits."""
    name = f"{part:05d}" if isinstance(part, int) else part
    return run_dir / table / f"schedule={schedule}" / f"part-{name}.parquet"


def check_run_target(run_dir: Path, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty directory unless overwriting a run."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ClonesimError(f"--out: {run_dir} exists and is not a directory")
    if not any(run_dir.iterdir()):
        return
    if not overwrite:
        raise ClonesimError(
            f"--out: {run_dir} already holds files; choose another directory or pass --overwrite"
        )
    if not (run_dir / RUN_JSON).exists() and not any(
        (run_dir / name).exists() for name in ("patients", "emergence", "trajectories", "phase_changes")
    ):
        raise ClonesimError(
            f"--out: {run_dir} does not look like a clonesim run; refusing to overwrite it"
        )


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield a hidden staging directory beside ``target`` that replaces it on success.

    On failure or interruption the staging directory is removed and an existing
    ``target`` is left untouched, so ``target`` only ever holds complete results.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, retired / "previous")
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)


@contextmanager
def staged_run_dir(run_dir: Path, overwrite: bool) -> Iterator[Path]:
    """:func:`staged_directory` for a run directory, once :func:`check_run_target` allows it."""
    check_run_target(run_dir, overwrite)
    with staged_directory(run_dir) as staging:
        yield staging


def write_run_json(run_dir: Path, info: Mapping[str, Any]) -> None:
    # Not sort_keys: the recorded config must keep its order to reproduce the run.
    atomic_write_bytes(run_dir / RUN_JSON, (json.dumps(info, indent=2) + "\n").encode())


def read_table(run_dir: str | Path, table: str) -> pl.DataFrame:
    """Read one table of a complete run (all schedules and parts)."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_JSON).exists():
        raise ClonesimError(f"{run_dir}: no {RUN_JSON}; the run is missing or incomplete")
    if not (run_dir / table).is_dir():
        known = sorted(p.name for p in run_dir.iterdir() if p.is_dir())
        raise ClonesimError(f"{run_dir}: no table {table!r}; tables: {', '.join(known)}")
    return pl.read_parquet(run_dir / table / "**" / "*.parquet", hive_partitioning=True)
