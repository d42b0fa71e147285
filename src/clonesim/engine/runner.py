"""Drive the kernels over blocks of replicates: streams, buffers, threads.

Every replicate k draws from its own PCG64 stream seeded by
``SeedSequence(seed, spawn_key=(point, k))``, so a replicate's result depends
only on (config, seed, point, k): not on the block it runs in, the thread
count, or how many other replicates run.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import typed, types
from numba.core.errors import NumbaPendingDeprecationWarning, TypingError

from clonesim.config import config_from_mapping
from clonesim.config.errors import ClonesimError
from clonesim.engine import kernel
from clonesim.model.compiled import CompiledModel, compile_model

#: Trajectory rows reserved per record time and row before a rerun is needed (first block;
#: later blocks size their buffers from what earlier blocks used).
INITIAL_ROWS_PER_RECORD = 16
#: Phase changes reserved per (replicate, schedule) before a rerun is needed.
INITIAL_PHASE_CHANGES = 32
#: Last element of the therapy streams' spawn key (the day-0 stream has none).
THERAPY_STREAM = 1


def replicate_generator(seed: int, replicate: int, point: int = 0) -> np.random.Generator:
    """The day-0 stream of one replicate: PCG64 from SeedSequence(seed, spawn_key=(point, k)).

    It builds the tumour at day 0 (seeding or pre-growth), shared by every schedule.
    """
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(point, replicate)))
    )


def therapy_generator(seed: int, replicate: int, point: int = 0) -> np.random.Generator:
    """The stream of one replicate after day 0: SeedSequence(seed, spawn_key=(point, k, 1)).

    Every schedule of replicate k starts this same stream, so schedules share their
    random numbers until their paths diverge (common random numbers).
    """
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(seed, spawn_key=(point, replicate, THERAPY_STREAM))
    ))


def generator_list(generators: list[np.random.Generator]) -> typed.List:
    """The generators as a numba typed List, for the kernels.

    Filled by a compiled loop over the Python list: ``typed.List(generators)`` appends
    one by one from Python (~30-90 us per generator, a quarter of a small replicate's
    whole simulation); the compiled loop takes ~5 us. The list arrives in that loop as
    a reflected list, which numba marks as pending deprecation: if it ever goes, this
    falls back to the slow constructor (same list).
    """
    filled = typed.List.empty_list(_GENERATOR_TYPE)
    if not generators:
        return filled
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
            kernel.append_generators(generators, filled)
    except TypingError:  # pragma: no cover - only if numba drops reflected lists
        return typed.List(generators)
    return filled


_GENERATOR_TYPE = types.NumPyRandomGeneratorType("NumPyRandomGeneratorType")


@dataclass
class BlockResult:
    """Kernel outputs for a block: row r is (``replicates[r]``, ``schedules[r]``).

    Trajectory rows of row r are ``traj_*[r, :trajectory_rows[r]]``; phase
    changes ``phase_*[r, :phase_change_rows[r]]``.
    """

    replicates: np.ndarray  # (N,) int64 replicate indices
    schedules: np.ndarray  # (N,) int64 schedule indices into model.schedule_names
    int_out: np.ndarray  # (N, kernel.NUM_INT_OUT) int64
    float_out: np.ndarray  # (N, kernel.NUM_FLOAT_OUT) float64, NaN = never
    drug_days: np.ndarray  # (N, D) standard doses given
    mechanism_cells_at_start: np.ndarray  # (N, M) int64
    mechanism_days: np.ndarray  # (N, M, kernel.NUM_MECH_DAYS) float64, NaN = never
    traj_day: np.ndarray  # (N, R) float64 days
    traj_genotype: np.ndarray  # (N, R) int64 bit masks
    traj_phenotype: np.ndarray  # (N, R) int64 phenotype indices
    traj_cells: np.ndarray  # (N, R) int64
    phase_day: np.ndarray  # (N, K) float64
    phase_index: np.ndarray  # (N, K) int64 phase entered (0-based, within its schedule)
    phase_reason: np.ndarray  # (N, K) int64 index into PHASE_CHANGE_REASONS

    def _int(self, column: int) -> np.ndarray:
        return self.int_out[:, column]

    def _float(self, column: int) -> np.ndarray:
        return self.float_out[:, column]

    status = property(lambda self: self._int(kernel.OUT_STATUS))
    final_cells = property(lambda self: self._int(kernel.OUT_FINAL_CELLS))
    nadir_cells = property(lambda self: self._int(kernel.OUT_NADIR_CELLS))
    trajectory_rows = property(lambda self: self._int(kernel.OUT_TRAJECTORY_ROWS))
    compartment_steps = property(lambda self: self._int(kernel.OUT_COMPARTMENT_STEPS))
    progressed = property(lambda self: self._int(kernel.OUT_PROGRESSED) != 0)
    best_response = property(lambda self: self._int(kernel.OUT_BEST_RESPONSE))
    mechanism_at_progression = property(
        lambda self: self._int(kernel.OUT_MECHANISM_AT_PROGRESSION))
    phase_change_rows = property(lambda self: self._int(kernel.OUT_PHASE_CHANGES))
    stop_day = property(lambda self: self._float(kernel.OUT_STOP_DAY))
    days_to_diagnosis = property(lambda self: self._float(kernel.OUT_DAYS_TO_DIAGNOSIS))
    ttp_days = property(lambda self: self._float(kernel.OUT_TTP_DAYS))
    nadir_day = property(lambda self: self._float(kernel.OUT_NADIR_DAY))
    mechanism_share_at_progression = property(
        lambda self: self._float(kernel.OUT_MECHANISM_SHARE))
    mechanism_arise_day = property(lambda self: self.mechanism_days[:, :, kernel.MECH_ARISE])
    mechanism_established_day = property(
        lambda self: self.mechanism_days[:, :, kernel.MECH_ESTABLISHED])
    mechanism_dominant_day = property(lambda self: self.mechanism_days[:, :, kernel.MECH_DOMINANT])
    mechanism_ctdna_day = property(lambda self: self.mechanism_days[:, :, kernel.MECH_CTDNA])


def _num_records(model: CompiledModel) -> int:
    return model.num_steps // model.record_every_steps + 2


def _max_compartments(model: CompiledModel) -> int:
    """Compartments one replicate may need: all (genotype, phenotype) pairs, capped by config."""
    possible = (1 << min(model.num_alterations, 40)) * model.num_phenotypes
    return min(model.max_compartments, possible)


def _schedule_ids(model: CompiledModel, schedules: Sequence[int] | None) -> np.ndarray:
    if schedules is None:
        return np.arange(len(model.schedule_names), dtype=np.int64)
    return np.asarray(schedules, dtype=np.int64)


def _run_kernel(model: CompiledModel, seed: int, replicates: np.ndarray, schedule_ids: np.ndarray,
                point: int, rows_per_replicate: int, phase_rows: int) -> BlockResult:
    num_schedules = len(schedule_ids)
    size = len(replicates) * num_schedules
    num_mechanisms = len(model.mechanism_names)
    day_zero = generator_list([replicate_generator(seed, int(k), point) for k in replicates])
    therapy = generator_list([therapy_generator(seed, int(k), point)
                              for k in replicates for _ in range(num_schedules)])
    result = BlockResult(
        replicates=np.repeat(np.asarray(replicates, dtype=np.int64), num_schedules),
        schedules=np.tile(schedule_ids, len(replicates)),
        int_out=np.zeros((size, kernel.NUM_INT_OUT), np.int64),
        float_out=np.full((size, kernel.NUM_FLOAT_OUT), np.nan),
        drug_days=np.zeros((size, len(model.drug_names))),
        mechanism_cells_at_start=np.zeros((size, num_mechanisms), np.int64),
        mechanism_days=np.full((size, num_mechanisms, kernel.NUM_MECH_DAYS), np.nan),
        traj_day=np.zeros((size, rows_per_replicate)),
        traj_genotype=np.zeros((size, rows_per_replicate), np.int64),
        traj_phenotype=np.zeros((size, rows_per_replicate), np.int64),
        traj_cells=np.zeros((size, rows_per_replicate), np.int64),
        phase_day=np.zeros((size, phase_rows)),
        phase_index=np.zeros((size, phase_rows), np.int64),
        phase_reason=np.zeros((size, phase_rows), np.int64),
    )
    kernel.simulate_block(
        day_zero, therapy, model.kernel, model.schedules, schedule_ids, model.initial_cells,
        model.initial_phenotype_fraction, model.initial_alteration_fraction,
        model.grow_from_single_cell_to, model.dt_days, model.horizon_days,
        model.record_every_steps, _max_compartments(model), result.int_out, result.float_out,
        result.drug_days, result.mechanism_cells_at_start, result.mechanism_days,
        result.traj_day, result.traj_genotype, result.traj_phenotype, result.traj_cells,
        result.phase_day, result.phase_index, result.phase_reason,
    )
    return result


def run_block(model: CompiledModel, seed: int, replicates: Sequence[int], point: int = 0,
              schedules: Sequence[int] | None = None, trajectory_capacity: int | None = None,
              phase_capacity: int | None = None) -> BlockResult:
    """Simulate the given replicates under the given schedules (default: all).

    Replicates whose trajectory or phase-change buffer overflowed are rerun with
    larger buffers: a rerun restarts the replicate's own streams, so it
    reproduces the same paths.
    """
    replicates = np.asarray(replicates, dtype=np.int64)
    schedule_ids = _schedule_ids(model, schedules)
    rows = trajectory_capacity or _num_records(model) * min(INITIAL_ROWS_PER_RECORD,
                                                             _max_compartments(model))
    phases = phase_capacity or INITIAL_PHASE_CHANGES
    result = _run_kernel(model, seed, replicates, schedule_ids, point, rows, phases)
    overflow = np.flatnonzero((result.trajectory_rows > rows) | (result.phase_change_rows > phases))
    if overflow.size:
        rerun_replicates = np.unique(result.replicates[overflow])
        rows = max(rows, int(result.trajectory_rows[overflow].max()))
        phases = max(phases, int(result.phase_change_rows[overflow].max()))
        rerun = _run_kernel(model, seed, rerun_replicates, schedule_ids, point, rows, phases)
        positions = np.flatnonzero(np.isin(result.replicates, rerun_replicates))
        result = _merge_rerun(result, rerun, positions)
    _raise_on_errors(model, result)
    return result


def concatenate_blocks(blocks: list[BlockResult]) -> BlockResult:
    """One BlockResult of several (of models with the same names), rows in order; the
    trajectory and phase-change buffers are widened to the widest."""
    if len(blocks) == 1:
        return blocks[0]
    joined = {}
    for field in dataclasses.fields(BlockResult):
        parts = [getattr(block, field.name) for block in blocks]
        if _is_buffer(field.name, parts[0]):
            width = max(part.shape[1] for part in parts)
            parts = [_widen(part, width) for part in parts]
        joined[field.name] = np.concatenate(parts)
    return BlockResult(**joined)


def _merge_rerun(result: BlockResult, rerun: BlockResult, positions: np.ndarray) -> BlockResult:
    """Widen the buffers to the rerun's and put the rerun rows in place (same row order)."""
    for field in dataclasses.fields(BlockResult):
        name = field.name
        old = getattr(result, name)
        new = getattr(rerun, name)
        if _is_buffer(name, old):
            old = _widen(old, new.shape[1])
            setattr(result, name, old)
        old[positions] = new
    return result


def _is_buffer(name: str, array: np.ndarray) -> bool:
    """A per-row trajectory or phase-change buffer (its width varies between runs)."""
    return array.ndim == 2 and (name.startswith("traj_") or name.startswith("phase_"))


def _widen(array: np.ndarray, width: int) -> np.ndarray:
    """``array`` with zero columns added up to ``width`` (unchanged when already that wide)."""
    return array if array.shape[1] == width else np.pad(array, ((0, 0), (0, width - array.shape[1])))


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
                   on_block: Callable[[int], None] | None = None,
                   schedules: Sequence[int] | None = None) -> Iterator[BlockResult]:
    """Yield results block by block, so memory is bounded by the block, not the run.

    A block holds ``block_size`` (default: engine.block_replicates) replicate-schedule
    pairs, i.e. block_size / S replicates, each through the S schedules.
    """
    replicates = np.asarray(replicates, dtype=np.int64)
    num_schedules = len(_schedule_ids(model, schedules))
    block_size = max(1, (block_size or model.block_replicates) // num_schedules)
    trajectory_capacity = phase_capacity = None
    for start in range(0, len(replicates), block_size):
        block = run_block(model, seed, replicates[start : start + block_size], point, schedules,
                          trajectory_capacity, phase_capacity)
        # Size the next block's buffers from this one (a rerun per overflow is costly).
        trajectory_capacity = max(block.traj_day.shape[1],
                                  int(1.2 * np.quantile(block.trajectory_rows, 0.99)) + 1)
        phase_capacity = max(block.phase_day.shape[1],
                             int(1.2 * np.quantile(block.phase_change_rows, 0.99)) + 1)
        if on_block is not None:
            on_block(len(block.replicates) // num_schedules)
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
