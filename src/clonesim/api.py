"""The Python API: ``simulate`` returns polars tables; ``run_to_directory`` streams a run to disk."""

from __future__ import annotations

import json
import platform
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl
import pyarrow

from clonesim import __version__
from clonesim.batch.sweep import expand_sweep
from clonesim.config import Config, as_config
from clonesim.config.errors import ClonesimError
from clonesim.engine import runner
from clonesim.io import run_dir as rundir
from clonesim.io.tables import TABLE_NAMES, block_tables, labels_of, table_rows
from clonesim.model.compiled import CompiledModel, compile_model
from clonesim.progress import label, replicate_progress

ConfigLike = Config | Mapping[str, Any] | str | Path


@dataclass
class SimulationResult:
    """The tables of one run (DESIGN §9) and its provenance."""

    patients: pl.DataFrame
    emergence: pl.DataFrame
    trajectories: pl.DataFrame
    phase_changes: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write this result as a run directory (one part per table)."""
        out = Path(out)
        provenance = _provenance_for_parquet(self.info)
        with rundir.staged_run_dir(out, overwrite) as staging:
            for table in TABLE_NAMES:
                _write_partitioned(staging, table, getattr(self, table), 0, provenance)
            rundir.write_run_json(staging, self.info)
        return out


def _write_partitioned(run_dir: Path, table: str, frame: pl.DataFrame, part: int | str,
                       provenance: Mapping[str, Any]) -> list[tuple[Path, int]]:
    """One Parquet file per schedule, including empty ones (every schedule has every table).

    Returns each file written with its number of rows.
    """
    pieces = frame.partition_by("schedule", maintain_order=True, as_dict=True)
    written = []
    for schedule in frame.schema["schedule"].categories.to_list():
        piece = pieces.get((schedule,), frame.clear())
        path = rundir.part_path(run_dir, table, schedule, part)
        rundir.write_parquet(piece, path, provenance)
        written.append((path, piece.height))
    return written


@dataclass
class _Point:
    """A sweep point ready to run: its id, stream, compiled model and output columns
    (one-row Series: its id and its value of every swept path)."""

    id: str
    stream: int
    overrides: dict[str, Any]
    model: CompiledModel
    columns: list[pl.Series]


def _points(config: Config) -> list[_Point]:
    """The config's sweep points (one, with no extra columns, without a sweep), all validated
    and compiled before anything runs. With a sweep, every table gains a ``point`` column
    (the point's id, as text: dictionary-encoded on disk, whereas an Enum of every id
    would copy the sweep's whole id list into every file) and one column per swept path
    holding each point's value there (overridden or the base config's; null where the
    config has none)."""
    points = expand_sweep(config)
    if config.sweep is None:
        return [_Point(p.id, p.stream, p.overrides, compile_model(p.config), []) for p in points]
    paths = list(dict.fromkeys(path for p in points for path in p.overrides))
    values = {path: pl.Series(path, [_scalar(p.value(path)) for p in points], strict=False)
              for path in paths}
    return [
        _Point(p.id, p.stream, p.overrides, compile_model(p.config),
               [pl.Series("point", [p.id], pl.String)] + [values[path][i:i + 1] for path in paths])
        for i, p in enumerate(points)
    ]


def _scalar(value: Any) -> Any:
    """A swept value as a column value: numbers and text as they are, anything else as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def _point_tables(point: _Point, block: runner.BlockResult, seed: int) -> dict[str, pl.DataFrame]:
    return _segment_tables([(point, block)], seed)


def _segment_tables(segments: list[tuple[_Point, runner.BlockResult]], seed: int
                    ) -> dict[str, pl.DataFrame]:
    """Every table of consecutive blocks (of one or several points), each table one frame
    in block order, with the sweep columns of each block's point.

    Blocks of points whose models share every label (the usual sweep) are joined and
    tabulated at once: for small points, per-block table building was a large part of
    a sweep's cost.
    """
    models = [point.model for point, _ in segments]
    if all(labels_of(m) == labels_of(models[0]) for m in models):
        blocks = [block for _, block in segments]
        tables = block_tables(models[0], runner.concatenate_blocks(blocks), seed)
    else:
        parts: dict[str, list[pl.DataFrame]] = {}
        for point, block in segments:
            for name, frame in block_tables(point.model, block, seed).items():
                parts.setdefault(name, []).append(frame)
        tables = {name: pl.concat(frames, rechunk=True) for name, frames in parts.items()}
    if not segments[0][0].columns:
        return tables
    heights = [table_rows(point.model, block) for point, block in segments]
    columns = list(zip(*(point.columns for point, _ in segments), strict=True))
    return {
        name: frame.hstack([
            pl.concat([value.new_from_index(0, rows[name])
                       for value, rows in zip(column, heights, strict=True)])
            for column in columns
        ])
        for name, frame in tables.items()
    }


def _blocks(points: list[_Point], seed: int, replicates: int,
            on_block: Callable[[int], None] | None) -> Iterator[tuple[_Point, runner.BlockResult]]:
    """Every point's blocks in turn; replicate k of a point draws from spawn key (stream, k)."""
    for point in points:
        for block in runner.iterate_blocks(point.model, seed, range(replicates), point=point.stream,
                                           on_block=on_block):
            yield point, block


def _resolve(config_or_path: ConfigLike, replicates: int | None, seed: int | None
             ) -> tuple[Config, list[_Point], int, int]:
    config = as_config(config_or_path)
    if replicates is not None and replicates < 1:
        raise ClonesimError(f"replicates: must be at least 1 (got {replicates})")
    if seed is not None and not 0 <= seed < 2**63:
        raise ClonesimError(f"seed: must be in [0, 2**63) (got {seed})")
    num_replicates = replicates if replicates is not None else config.replicates
    run_seed = seed if seed is not None else config.seed
    if run_seed is None:
        run_seed = secrets.randbits(63)
    return config, _points(config), num_replicates, run_seed


def _run_info(config: Config, points: list[_Point], seed: int, replicates: int
              ) -> dict[str, Any]:
    model = points[0].model
    resolved = config.model_dump(mode="json", by_alias=True, exclude_none=False)
    resolved["seed"] = seed
    resolved["replicates"] = replicates
    sweep = [{"point": p.id, "stream": p.stream, "overrides": p.overrides} for p in points]
    return {
        "clonesim_version": __version__,
        "config": resolved,
        "seed": seed,
        "replicates": replicates,
        "schedules": list(model.schedule_names),
        "drugs": list(model.drug_names),
        "mechanisms": list(model.mechanism_names),
        "engine": {
            "method": "exact linear birth-death per step (binomial + negative binomial); "
                      "mutation and switching drawn from integrated rates",
            "dt_days": model.dt_days,
            "num_steps": model.num_steps,
            "bit_generator": "PCG64",
            "stream": "day 0: SeedSequence(seed, spawn_key=(point, replicate)); "
                      "therapy (every schedule): SeedSequence(seed, spawn_key=(point, replicate, 1)); "
                      "point = the sweep point's stream (0 without a sweep)",
            "block_replicates": model.block_replicates,
        },
        "points": sweep,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "polars": pl.__version__,
            "pyarrow": pyarrow.__version__,
        },
    }


def _threads_or_all(threads: int | None) -> int:
    """``threads``, or all cores when None (not whatever an earlier call left set)."""
    return threads if threads is not None else numba.config.NUMBA_NUM_THREADS


def _timings(label: str, started: float, compartment_steps: int) -> dict[str, Any]:
    """Wall time, threads and work done (live compartments summed over steps)."""
    seconds = time.perf_counter() - started
    return {label: seconds, "threads": numba.get_num_threads(),
            "compartment_steps": compartment_steps,
            "compartment_steps_per_second": compartment_steps / seconds if seconds > 0 else None}


def _provenance_for_parquet(info: Mapping[str, Any], point_ids: Iterable[str] | None = None
                            ) -> dict[str, Any]:
    """What each Parquet file records of its run: ``info`` without timings, its ``points``
    narrowed to those whose rows the file holds (a sweep's full list, which can run to
    thousands of points, lives in run.json; copying it into every file made small points'
    files 20x larger and their writing the larger part of a sweep's cost)."""
    provenance = {k: v for k, v in info.items() if k != "timings"}
    if point_ids is not None:
        wanted = set(point_ids)
        provenance["points"] = [p for p in info["points"] if p["point"] in wanted]
    return provenance


def simulate(config_or_path: ConfigLike, replicates: int | None = None, seed: int | None = None,
             threads: int | None = None,
             on_block: Callable[[int], None] | None = None,
             progress: bool = False) -> SimulationResult:
    """Simulate a config and return its tables as polars DataFrames.

    Parameters
    ----------
    config_or_path : a :class:`Config`, a mapping, or a path to a YAML config.
    replicates : number of virtual patients (default: the config's ``replicates``).
    seed : run seed (default: the config's ``seed``, else fresh entropy, recorded in ``info``).
    threads : numba threads (default: all cores). Results do not depend on it.
    on_block : called with the number of replicates finished after each block.
    progress : show a progress bar (rich; works in terminals and notebooks).
    """
    config, points, num_replicates, run_seed = _resolve(config_or_path, replicates, seed)
    runner.set_threads(_threads_or_all(threads))
    started = time.perf_counter()
    work = 0
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLE_NAMES}
    with replicate_progress(disable=not progress) as bar:
        task = bar.add_task(label(config.name), total=num_replicates * len(points))

        def block_done(done: int) -> None:
            bar.advance(task, done)
            if on_block is not None:
                on_block(done)

        for point, block in _blocks(points, run_seed, num_replicates, block_done):
            work += int(block.compartment_steps.sum())
            for name, frame in _point_tables(point, block, run_seed).items():
                parts[name].append(frame)
    info = _run_info(config, points, run_seed, num_replicates)
    info["timings"] = _timings("simulate_seconds", started, work)
    tables = {name: pl.concat(frames, rechunk=True) for name, frames in parts.items()}
    return SimulationResult(**tables, info=info)


def run_to_directory(config_or_path: ConfigLike, out: str | Path, replicates: int | None = None,
                     seed: int | None = None, threads: int | None = None, overwrite: bool = False,
                     on_block: Callable[[int], None] | None = None,
                     on_start: Callable[[], None] | None = None) -> Path:
    """Simulate and stream every block straight to a run directory (memory bounded by a block).

    The run is written into a hidden staging directory beside ``out`` that
    replaces ``out`` only when complete (``run.json`` written last), so a failed
    or interrupted run leaves any previous run in ``out`` untouched.
    ``on_start`` is called once the inputs are checked, just before the first block.
    """
    config, points, num_replicates, run_seed = _resolve(config_or_path, replicates, seed)
    runner.set_threads(_threads_or_all(threads))
    out = Path(out)
    info = _run_info(config, points, run_seed, num_replicates)
    with rundir.staged_run_dir(out, overwrite) as staging:
        if on_start is not None:
            on_start()
        started = time.perf_counter()
        work = 0
        blocks = _blocks(points, run_seed, num_replicates, on_block)
        for part, (point, block) in enumerate(blocks):
            work += int(block.compartment_steps.sum())
            provenance = _provenance_for_parquet(info, [point.id])
            for name, frame in _point_tables(point, block, run_seed).items():
                _write_partitioned(staging, name, frame, part, provenance)
        info["timings"] = _timings("simulate_and_write_seconds", started, work)
        rundir.write_run_json(staging, info)
    return out


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a complete run directory."""
    path = Path(run_dir) / rundir.RUN_JSON
    if not path.exists():
        raise ClonesimError(f"{run_dir}: no {rundir.RUN_JSON}; the run is missing or incomplete")
    return json.loads(path.read_text())
