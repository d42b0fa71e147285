"""The Python API: ``simulate`` returns polars tables; ``run_to_directory`` streams a run to disk."""

from __future__ import annotations

import json
import platform
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl
import pyarrow

from clonesim import __version__
from clonesim.config import Config, as_config
from clonesim.config.errors import ClonesimError
from clonesim.engine import runner
from clonesim.io import run_dir as rundir
from clonesim.io.tables import TABLE_NAMES, block_tables
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


def _write_partitioned(run_dir: Path, table: str, frame: pl.DataFrame, part: int,
                       provenance: Mapping[str, Any]) -> None:
    """One Parquet file per schedule, including empty ones (every schedule has every table)."""
    schedules = frame.schema["schedule"].categories.to_list()
    for schedule in schedules:
        piece = frame.filter(pl.col("schedule") == schedule)
        rundir.write_parquet(piece, rundir.part_path(run_dir, table, schedule, part), provenance)


def _resolve(config_or_path: ConfigLike, replicates: int | None, seed: int | None
             ) -> tuple[Config, CompiledModel, int, int]:
    config = as_config(config_or_path)
    if replicates is not None and replicates < 1:
        raise ClonesimError(f"replicates: must be at least 1 (got {replicates})")
    if seed is not None and not 0 <= seed < 2**63:
        raise ClonesimError(f"seed: must be in [0, 2**63) (got {seed})")
    num_replicates = replicates if replicates is not None else config.replicates
    run_seed = seed if seed is not None else config.seed
    if run_seed is None:
        run_seed = secrets.randbits(63)
    return config, compile_model(config), num_replicates, run_seed


def _run_info(config: Config, model: CompiledModel, seed: int, replicates: int) -> dict[str, Any]:
    resolved = config.model_dump(mode="json", by_alias=True)
    resolved["seed"] = seed
    resolved["replicates"] = replicates
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
                      "point=0",
            "block_replicates": model.block_replicates,
        },
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


def _provenance_for_parquet(info: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "timings"}


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
    config, model, num_replicates, run_seed = _resolve(config_or_path, replicates, seed)
    runner.set_threads(_threads_or_all(threads))
    started = time.perf_counter()
    work = 0
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLE_NAMES}
    with replicate_progress(disable=not progress) as bar:
        task = bar.add_task(label(config.name), total=num_replicates)

        def block_done(done: int) -> None:
            bar.advance(task, done)
            if on_block is not None:
                on_block(done)

        blocks = runner.iterate_blocks(model, run_seed, range(num_replicates), on_block=block_done)
        for block in blocks:
            work += int(block.compartment_steps.sum())
            for name, frame in block_tables(model, block, run_seed).items():
                parts[name].append(frame)
    info = _run_info(config, model, run_seed, num_replicates)
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
    config, model, num_replicates, run_seed = _resolve(config_or_path, replicates, seed)
    runner.set_threads(_threads_or_all(threads))
    out = Path(out)
    info = _run_info(config, model, run_seed, num_replicates)
    provenance = _provenance_for_parquet(info)
    with rundir.staged_run_dir(out, overwrite) as staging:
        if on_start is not None:
            on_start()
        started = time.perf_counter()
        work = 0
        blocks = runner.iterate_blocks(model, run_seed, range(num_replicates), on_block=on_block)
        for part, block in enumerate(blocks):
            work += int(block.compartment_steps.sum())
            for name, frame in block_tables(model, block, run_seed).items():
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
