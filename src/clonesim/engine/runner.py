"""Drive the kernels over blocks of replicates: streams, buffers, threads.

Every replicate k draws from its own PCG64 stream seeded by
``SeedSequence(seed, spawn_key=(point, k))``, so a replicate's result depends
only on (config, seed, point, k): not on the block it runs in, the thread
count, or how many other replicates run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import typed

from clonesim.config import config_from_mapping
from clonesim.config.errors import ClonesimError
from clonesim.engine import kernel
from clonesim.model.compiled import CompiledModel, compile_model

#: Trajectory rows reserved per record time and replicate before a rerun is needed.
INITIAL_ROWS_PER_RECORD = 8


def replicate_generator(seed: int, replicate: int, point: int = 0) -> np.random.Generator:
    """The random stream of one replicate: PCG64 from SeedSequence(seed, spawn_key=(point, k))."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(point, replicate)))
    )


@dataclass
class BlockResult:
    """Kernel outputs for a block of replicates (row i = ``replicates[i]``).

    Trajectory rows of replicate i are ``traj_*[i, :trajectory_rows[i]]``.
    """

    replicates: np.ndarray  # (B,) int64 replicate indices
    status: np.ndarray  # (B,) int8, kernel.STATUS_*
    stop_day: np.ndarray  # (B,) day of extinction or death; NaN if neither
    final_cells: np.ndarray  # (B,) int64
    days_to_diagnosis: np.ndarray  # (B,) NaN without pre-growth
    trajectory_rows: np.ndarray  # (B,) int64
    compartment_steps: np.ndarray  # (B,) int64: live compartments summed over steps after day 0
    traj_day: np.ndarray  # (B, R) float64 days
    traj_genotype: np.ndarray  # (B, R) int64 bit masks
    traj_phenotype: np.ndarray  # (B, R) int64 phenotype indices
    traj_cells: np.ndarray  # (B, R) int64
    mechanism_cells_at_start: np.ndarray  # (B, M) int64
    mechanism_arise_day: np.ndarray  # (B, M) float64, NaN if never


def _num_records(model: CompiledModel) -> int:
    return model.num_steps // model.record_every_steps + 2


def _max_compartments(model: CompiledModel) -> int:
    """Compartments one replicate may need: all (genotype, phenotype) pairs, capped by config."""
    possible = (1 << min(model.num_alterations, 40)) * model.num_phenotypes
    return min(model.max_compartments, possible)


def _run_kernel(model: CompiledModel, seed: int, replicates: np.ndarray, point: int,
                rows_per_replicate: int) -> BlockResult:
    size = len(replicates)
    num_mechanisms = len(model.mechanism_names)
    generators = typed.List([replicate_generator(seed, int(k), point) for k in replicates])
    result = BlockResult(
        replicates=np.asarray(replicates, dtype=np.int64),
        status=np.zeros(size, np.int8),
        stop_day=np.full(size, np.nan),
        final_cells=np.zeros(size, np.int64),
        days_to_diagnosis=np.full(size, np.nan),
        trajectory_rows=np.zeros(size, np.int64),
        compartment_steps=np.zeros(size, np.int64),
        traj_day=np.zeros((size, rows_per_replicate)),
        traj_genotype=np.zeros((size, rows_per_replicate), np.int64),
        traj_phenotype=np.zeros((size, rows_per_replicate), np.int64),
        traj_cells=np.zeros((size, rows_per_replicate), np.int64),
        mechanism_cells_at_start=np.zeros((size, num_mechanisms), np.int64),
        mechanism_arise_day=np.full((size, num_mechanisms), np.nan),
    )
    max_compartments = _max_compartments(model)
    kernel.simulate_block(
        generators, model.kernel, model.initial_cells, model.initial_phenotype_fraction,
        model.initial_alteration_fraction, model.grow_from_single_cell_to, model.dt_days,
        model.horizon_days, model.num_steps, model.record_every_steps, max_compartments,
        result.status, result.stop_day, result.final_cells, result.days_to_diagnosis,
        result.trajectory_rows, result.compartment_steps, result.traj_day, result.traj_genotype,
        result.traj_phenotype,
        result.traj_cells, result.mechanism_cells_at_start, result.mechanism_arise_day,
    )
    return result


def run_block(model: CompiledModel, seed: int, replicates: Sequence[int], point: int = 0
              ) -> BlockResult:
    """Simulate the given replicates; replicates whose trajectory overflowed are rerun.

    A rerun restarts the replicate's own stream, so it reproduces the same
    path and only the buffer is larger.
    """
    replicates = np.asarray(replicates, dtype=np.int64)
    rows = _num_records(model) * min(INITIAL_ROWS_PER_RECORD, _max_compartments(model))
    result = _run_kernel(model, seed, replicates, point, rows)
    overflow = np.flatnonzero(result.trajectory_rows > rows)
    if overflow.size:
        needed = int(result.trajectory_rows[overflow].max())
        rerun = _run_kernel(model, seed, replicates[overflow], point, needed)
        result = _merge_rerun(result, rerun, overflow, needed)
    _raise_on_errors(model, result)
    return result


def _merge_rerun(result: BlockResult, rerun: BlockResult, rows_of: np.ndarray, width: int
                 ) -> BlockResult:
    """Widen the trajectory buffers to ``width`` and put the rerun replicates in place."""
    for field in dataclasses.fields(BlockResult):
        name = field.name
        if name == "replicates":
            continue
        if name.startswith("traj_"):
            old = getattr(result, name)
            wide = np.zeros((old.shape[0], width), old.dtype)
            wide[:, : old.shape[1]] = old
            setattr(result, name, wide)
        getattr(result, name)[rows_of] = getattr(rerun, name)
    return result


def _raise_on_errors(model: CompiledModel, result: BlockResult) -> None:
    failed = np.flatnonzero(result.status >= kernel.STATUS_FIRST_ERROR)
    if not failed.size:
        return
    replicate = int(result.replicates[failed[0]])
    code = int(result.status[failed[0]])
    if code == kernel.STATUS_TOO_MANY_COMPARTMENTS:
        raise ClonesimError(
            f"engine.max_compartments: replicate {replicate} needed more than "
            f"{model.max_compartments} compartments; raise engine.max_compartments"
        )
    if code == kernel.STATUS_PREGROWTH_FAILED:
        raise ClonesimError(
            f"tumor.grow_from_single_cell_to: replicate {replicate} did not reach "
            f"{model.grow_from_single_cell_to:g} cells in {kernel.MAX_PREGROWTH_ATTEMPTS} attempts"
        )
    raise ClonesimError(f"replicate {replicate}: engine error code {code}")


def iterate_blocks(model: CompiledModel, seed: int, replicates: Sequence[int], point: int = 0,
                   block_size: int | None = None,
                   on_block: Callable[[int], None] | None = None) -> Iterator[BlockResult]:
    """Yield results block by block, so memory is bounded by the block, not the run."""
    replicates = np.asarray(replicates, dtype=np.int64)
    block_size = block_size or model.block_replicates
    for start in range(0, len(replicates), block_size):
        block = run_block(model, seed, replicates[start : start + block_size], point)
        if on_block is not None:
            on_block(len(block.replicates))
        yield block
        del block  # free this block before the next one is allocated


def compile_kernels() -> None:
    """Compile (or load from numba's cache) the kernels by running one tiny replicate.

    Every compiled model has the same argument types, so this serves any config;
    it lets a caller show "compiling" apart from progress on the real run.
    """
    tiny = config_from_mapping({
        "name": "compile",
        "time": {"horizon_days": 1.0},
        "tumor": {"initial_cells": 2},
        "phenotypes": {"a": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.1}},
    })
    run_block(compile_model(tiny), 0, [0])


def set_threads(threads: int | None) -> int:
    """Set numba's thread count (None: all cores); returns the count in use."""
    if threads is not None:
        if threads < 1 or threads > numba.config.NUMBA_NUM_THREADS:
            raise ClonesimError(
                f"--threads: {threads} is outside 1..{numba.config.NUMBA_NUM_THREADS}"
            )
        numba.set_num_threads(threads)
    return numba.get_num_threads()
