#!/usr/bin/env python
"""Benchmark the clone engine, side by side, in one run.

Sections (all timings are wall-clock, numba compile time excluded by warming up first):

1. Engine throughput on the shipped workload ``configs/untreated_growth.yaml``
   (1e9 cells, ~7-8 live compartments, 1,825 daily steps, mutation and switching on):
   N replicates on 1 and on 2 numba threads, in live compartment-steps per second.
2. The pure random-number limit: a numba kernel that makes only the draws the engine
   makes per compartment-step (same distributions, same parameter magnitudes, same
   per-replicate PCG64 Generators in a ``numba.typed.List`` indexed inside ``prange``),
   and the ratio engine time / RNG-only time per compartment-step.
3. Speedup over the exact Gillespie reference engine (``clonesim.engine.reference``)
   on small models, for the same replicates and the same statistic (final size).
4. GillesPy2's exact SSA (C++ ``SSACSolver`` when it builds) on the same small
   birth-death model, its one-off compile time excluded.
5. Peak RSS: of this process after the workload, and of fresh subprocesses that stream
   2,000 and 10,000 replicates through ``runner.iterate_blocks`` and discard the blocks.

Run:  /work/venv/bin/python scripts/benchmark.py [--quick] [--replicates N]

How compartment-steps are counted (the denominator of every per-step figure)
---------------------------------------------------------------------------
The kernel does not return a step count and this script must not change src/, so:

* **exact count** (used for the engine): :func:`_count_block` re-runs every replicate
  of the timed run, untimed, through the kernel's own step functions (``_seed_initial_tumour``,
  ``_advance``, ``_record``, ``_compact``) on a fresh copy of the replicate's Generator,
  and counts the compartments holding cells at the start of each step (exactly the
  compartments ``_advance`` makes draws for). The replay is only trusted when it reproduces
  the timed run (status, final cells and trajectory rows of every replicate identical);
  otherwise the script falls back to the trajectory estimate below and says so.
* **trajectory estimate** (used for the RNG-only kernel, and printed next to the exact
  count): the trajectory table holds the live compartments every ``record_every_days``;
  each live row is taken to last until the next record. It misses compartments born and
  emptied between two records, so it is a slight undercount.

The RNG-only kernel replays, per replicate, the draw mix of that replicate's own
trajectory: every live row (genotype, phenotype, cells) makes, for each step until the next
record, the draws ``_advance`` would make for it, with ``n`` held at the recorded size.
Engine and RNG-only costs are compared per compartment-step (each over its own count).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange, typed
from numba.core.errors import NumbaTypeSafetyWarning

from clonesim.config import config_from_mapping, load_config
from clonesim.engine import kernel, runner
from clonesim.engine.birth_death import transition_coefficients
from clonesim.model.compiled import CompiledModel, compile_model

try:  # the exact reference engine is written alongside this script; guard until it exists
    from clonesim.engine import reference as reference_engine
except ImportError:  # pragma: no cover - depends on the checkout
    reference_engine = None

# prange over len(typed.List) indexes the list with an unsigned integer; harmless here.
warnings.filterwarnings("ignore", category=NumbaTypeSafetyWarning)

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "configs" / "untreated_growth.yaml"
WARMUP_REPLICATES = 4


# =============================================================================== numba kernels


@njit
def _count_replicate(rng, model, initial_cells, phenotype_fraction, alteration_fraction,
                     dt_days, horizon_days, num_steps, record_every_steps, max_compartments,
                     num_mechanisms):
    """Replay ``kernel.simulate_replicate`` (initial-cells branch) and count compartment-steps.

    Same calls, same order, same stream as the kernel, so the path is identical; the only
    addition is the counter. Trajectory buffers have capacity 0: ``_record`` then only
    counts rows and sets the ``written`` flags that ``_compact`` depends on.
    Returns (status, final cells, trajectory rows, live compartment-steps).
    """
    num_alterations = alteration_fraction.shape[0]
    num_phenotypes = phenotype_fraction.shape[0]
    geno = np.zeros(max_compartments, np.int64)
    pheno = np.zeros(max_compartments, np.int64)
    cells = np.zeros(max_compartments, np.int64)
    written = np.zeros(max_compartments, np.int8)
    arrival_capacity = max_compartments * (num_alterations + num_phenotypes)
    arrivals_geno = np.zeros(arrival_capacity, np.int64)
    arrivals_pheno = np.zeros(arrival_capacity, np.int64)
    arrivals_cells = np.zeros(arrival_capacity, np.int64)
    arise_day = np.full(num_mechanisms, np.nan)
    no_days = np.zeros(0)
    no_ints = np.zeros(0, np.int64)

    num_active = kernel._seed_initial_tumour(
        rng, initial_cells, phenotype_fraction, alteration_fraction, geno, pheno, cells, written
    )
    total = np.int64(0)
    for c in range(num_active):
        total += cells[c]
    rows = kernel._record(0.0, geno, pheno, cells, written, num_active, 0,
                          no_days, no_ints, no_ints, no_ints)
    status = kernel.STATUS_ALIVE
    day = 0.0
    transition = np.empty((num_phenotypes, num_phenotypes))
    transition_days = -1.0
    compartment_steps = np.int64(0)
    for step in range(num_steps):
        day_end = min((step + 1) * dt_days, horizon_days)
        if step == num_steps - 1:
            day_end = horizon_days
        if model.has_switching and day_end - day != transition_days:
            transition_days = day_end - day
            kernel.switching_transition(model, 1.0, 0.5 * transition_days, transition)
        for c in range(num_active):
            if cells[c] > 0:
                compartment_steps += 1
        num_active, total = kernel._advance(
            rng, model, geno, pheno, cells, written, num_active, day_end - day, day_end, 1.0,
            transition, arrivals_geno, arrivals_pheno, arrivals_cells, arise_day,
        )
        day = day_end
        if num_active < 0:
            return kernel.STATUS_TOO_MANY_COMPARTMENTS, np.int64(0), rows, compartment_steps
        if total == 0:
            status = kernel.STATUS_EXTINCT
        elif total >= model.lethal_cells:
            status = kernel.STATUS_DIED
        if status != kernel.STATUS_ALIVE or step == num_steps - 1 or (
            (step + 1) % record_every_steps == 0
        ):
            rows = kernel._record(day, geno, pheno, cells, written, num_active, rows,
                                  no_days, no_ints, no_ints, no_ints)
        if status != kernel.STATUS_ALIVE:
            break
        num_active = kernel._compact(geno, pheno, cells, written, num_active)
    return status, total, rows, compartment_steps


@njit(parallel=True)
def _count_block(generators, model, initial_cells, phenotype_fraction, alteration_fraction,
                 dt_days, horizon_days, num_steps, record_every_steps, max_compartments,
                 num_mechanisms, status, final_cells, rows, compartment_steps):
    for i in prange(len(generators)):
        s, final, r, steps = _count_replicate(
            generators[i], model, initial_cells, phenotype_fraction, alteration_fraction,
            dt_days, horizon_days, num_steps, record_every_steps, max_compartments,
            num_mechanisms,
        )
        status[i] = s
        final_cells[i] = final
        rows[i] = r
        compartment_steps[i] = steps


@njit
def _live_rows(traj_day, traj_geno, traj_pheno, traj_cells, trajectory_rows, dt_days, offsets):
    """Flatten the live trajectory rows of a block into a draw mix.

    Each row with cells > 0 stands for the steps from its record day to the next
    record day of the same replicate (the rows of one record share a day).
    Returns (cells, genotype, phenotype, steps); ``offsets[i]:offsets[i+1]`` are
    replicate i's rows, and the per-replicate sum of ``steps`` is the trajectory
    estimate of its compartment-steps.
    """
    size = 0
    for i in range(traj_day.shape[0]):
        size += trajectory_rows[i]
    out_cells = np.empty(size, np.int64)
    out_geno = np.empty(size, np.int64)
    out_pheno = np.empty(size, np.int64)
    out_steps = np.empty(size, np.int64)
    k = 0
    for i in range(traj_day.shape[0]):
        offsets[i] = k
        n = trajectory_rows[i]
        r = 0
        while r < n:
            day = traj_day[i, r]
            end = r
            while end < n and traj_day[i, end] == day:
                end += 1
            next_day = traj_day[i, end] if end < n else day
            steps = np.int64(math.ceil((next_day - day) / dt_days - 1e-9))
            if steps > 0:
                for j in range(r, end):
                    if traj_cells[i, j] > 0:
                        out_cells[k] = traj_cells[i, j]
                        out_geno[k] = traj_geno[i, j]
                        out_pheno[k] = traj_pheno[i, j]
                        out_steps[k] = steps
                        k += 1
            r = end
    offsets[traj_day.shape[0]] = k
    return out_cells[:k], out_geno[:k], out_pheno[:k], out_steps[:k]


@njit
def _switch_draws(rng, n, leave, targets, split, t):
    """The draws of ``kernel._switch`` for one compartment of n cells: returns (stay, draws)."""
    leaving = rng.binomial(n, leave)
    draws = 1
    j = 0
    left = leaving
    while left > 0 and j < targets[t] - 1:
        k = rng.binomial(left, split[t, j])
        draws += 1
        left -= k
        j += 1
    return n - leaving, draws


@njit(parallel=True)
def _rng_only_block(generators, offsets, row_cells, row_type, row_steps, dt_days,
                    alpha, beta, mutants_per_cell_day, mut_targets, mut_split, mut_alpha,
                    mut_beta, leave_probability, switch_targets, switch_split,
                    max_individual_arrivals, checksum, draws):
    """Only the draws of ``kernel._advance``, per compartment-step, for a precomputed mix.

    Per live compartment of n cells and type t (genotype, phenotype), in the engine's order:
    switching for dt/2 (``binomial(n, 1 - P[p, p])`` and one conditional binomial per
    target but the last), the birth-death law (``binomial(n, 1 - alpha)``, then
    ``negative_binomial(K, 1 - beta)``), mutation when the type can mutate
    (``poisson(b U n dt)``, then while mutants are left one ``binomial(m, u_a / rest)`` per
    target but the last, and each new mutant cell grows for the rest of the step: per cell a
    ``random()`` birth time, ``binomial(1, .)`` and ``negative_binomial(1, .)``; a batch above
    ``max_individual_arrivals`` makes one pair), switching for dt/2 again. No rate
    evaluation, no compartment bookkeeping: every parameter comes from a table, and n stays
    at the recorded size. ``draws[i]`` counts (binomial, negative binomial, poisson, uniform).
    """
    for i in prange(len(generators)):
        rng = generators[i]
        acc = np.int64(0)
        n_binomial = np.int64(0)
        n_negbin = np.int64(0)
        n_poisson = np.int64(0)
        n_uniform = np.int64(0)
        for r in range(offsets[i], offsets[i + 1]):
            n = row_cells[r]
            t = row_type[r]
            a_t = alpha[t]
            b_t = beta[t]
            mutant_mean = mutants_per_cell_day[t] * n * dt_days
            leave = leave_probability[t]
            for _ in range(row_steps[r]):
                if leave > 0.0:
                    stay, made = _switch_draws(rng, n, leave, switch_targets, switch_split, t)
                    n_binomial += made
                    acc += stay
                end = n
                if a_t > 0.0:
                    end = rng.binomial(n, 1.0 - a_t)
                    n_binomial += 1
                if end > 0 and b_t > 0.0:
                    end += rng.negative_binomial(end, 1.0 - b_t)
                    n_negbin += 1
                if mutant_mean > 0.0:
                    mutants = rng.poisson(mutant_mean)
                    n_poisson += 1
                    j = 0
                    while mutants > 0 and j < mut_targets[t]:
                        if j == mut_targets[t] - 1:
                            k = mutants
                        else:
                            k = rng.binomial(mutants, mut_split[t, j])
                            n_binomial += 1
                        if k > 0:
                            if k <= max_individual_arrivals:
                                for _cell in range(k):
                                    acc += np.int64(rng.random() * 2.0)
                                    n_uniform += 1
                                    alive = np.int64(1)
                                    if mut_alpha[t, j] > 0.0:
                                        alive = rng.binomial(1, 1.0 - mut_alpha[t, j])
                                        n_binomial += 1
                                    if alive > 0 and mut_beta[t, j] > 0.0:
                                        acc += rng.negative_binomial(1, 1.0 - mut_beta[t, j])
                                        n_negbin += 1
                            else:
                                alive = k
                                if mut_alpha[t, j] > 0.0:
                                    alive = rng.binomial(k, 1.0 - mut_alpha[t, j])
                                    n_binomial += 1
                                if alive > 0 and mut_beta[t, j] > 0.0:
                                    acc += rng.negative_binomial(alive, 1.0 - mut_beta[t, j])
                                    n_negbin += 1
                        mutants -= k
                        j += 1
                if leave > 0.0 and end > 0:
                    stay, made = _switch_draws(rng, end, leave, switch_targets, switch_split, t)
                    n_binomial += made
                    end = stay
                acc += end
        checksum[i] = acc
        draws[i, 0] = n_binomial
        draws[i, 1] = n_negbin
        draws[i, 2] = n_poisson
        draws[i, 3] = n_uniform


# ============================================================================ helper functions


@contextlib.contextmanager
def numba_threads(count: int):
    """Run the body with ``count`` numba threads, restoring the previous count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB.

    ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, except that on Linux a child started by
    fork + exec inherits its parent's ru_maxrss (it is carried over the exec), so a fresh
    subprocess would report the parent's peak. Where /proc is available, VmHWM (the peak
    RSS of the current address space, reset by exec) is used instead.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def kernel_max_compartments(model: CompiledModel) -> int:
    """The compartment capacity ``runner._run_kernel`` gives the kernel."""
    return min(model.max_compartments, (1 << min(model.num_alterations, 40)) * model.num_phenotypes)


def generators_for(seed: int, replicates: np.ndarray) -> typed.List:
    """The engine's per-replicate streams, built exactly as ``runner._run_kernel`` builds them."""
    return typed.List([runner.replicate_generator(seed, int(k), 0) for k in replicates])


@dataclass
class DrawTables:
    """Per compartment type (genotype, phenotype): the parameters of the draws it makes."""

    alpha: np.ndarray
    beta: np.ndarray
    mutants_per_cell_day: np.ndarray
    mut_targets: np.ndarray
    mut_split: np.ndarray
    mut_alpha: np.ndarray
    mut_beta: np.ndarray
    leave_probability: np.ndarray
    switch_targets: np.ndarray
    switch_split: np.ndarray

    def args(self):
        return (self.alpha, self.beta, self.mutants_per_cell_day, self.mut_targets,
                self.mut_split, self.mut_alpha, self.mut_beta, self.leave_probability,
                self.switch_targets, self.switch_split)


def draw_tables(model: CompiledModel, types: np.ndarray) -> DrawTables:
    """Draw parameters of each (genotype, phenotype) in ``types`` (rows), as ``_advance`` sets them.

    Untreated (signal 1) and without logistic competition (the workload has no carrying
    capacity), so rates depend on the type only. Where ``_advance`` uses the step's
    integrated cells I (mutant mean b U I) the tables use I = n dt; new mutant cells grow
    for dt / 2, about their mean remaining time; switching uses the kernel's own
    P = expm(Q dt / 2) for each of the two half-steps.
    """
    km = model.kernel
    dt = model.dt_days
    num_types = len(types)
    num_alterations = model.num_alterations
    num_phenotypes = model.num_phenotypes
    u = np.asarray(km.alteration_mutation_rate_per_division)
    tables = DrawTables(
        alpha=np.zeros(num_types), beta=np.zeros(num_types),
        mutants_per_cell_day=np.zeros(num_types), mut_targets=np.zeros(num_types, np.int64),
        mut_split=np.ones((num_types, max(1, num_alterations))),
        mut_alpha=np.zeros((num_types, max(1, num_alterations))),
        mut_beta=np.zeros((num_types, max(1, num_alterations))),
        leave_probability=np.zeros(num_types), switch_targets=np.zeros(num_types, np.int64),
        switch_split=np.ones((num_types, max(1, num_phenotypes))),
    )
    for t, (g, p) in enumerate(types):
        g, p = int(g), int(p)
        b, d, mutation, _ = kernel.compartment_rates(km, np.int64(g), p, 1.0, 1.0)
        tables.alpha[t], tables.beta[t] = transition_coefficients(b * (1.0 - mutation), d, dt)
        if mutation > 0.0 and b > 0.0:
            tables.mutants_per_cell_day[t] = b * mutation
            targets = [a for a in range(num_alterations) if not (g >> a) & 1 and u[a] > 0.0]
            tables.mut_targets[t] = len(targets)
            remaining = mutation / km.phenotype_mutation_rate_multiplier[p]
            for j, a in enumerate(targets):
                tables.mut_split[t, j] = min(1.0, u[a] / remaining)
                remaining -= u[a]
                bm, dm, um, _ = kernel.compartment_rates(km, np.int64(g | (1 << a)), p, 1.0, 1.0)
                tables.mut_alpha[t, j], tables.mut_beta[t, j] = transition_coefficients(
                    bm * (1.0 - um), dm, dt / 2
                )
    if km.has_switching:
        # The two switching half-steps: P = expm(Q dt/2), as the kernel computes it.
        transition = np.empty((num_phenotypes, num_phenotypes))
        kernel.switching_transition(km, 1.0, 0.5 * dt, transition)
        for t, (_, p) in enumerate(types):
            p = int(p)
            leave = 1.0 - transition[p, p]
            if leave <= 0.0:
                continue
            tables.leave_probability[t] = min(1.0, leave)
            shares = [transition[p, q] for q in range(num_phenotypes)
                      if q != p and transition[p, q] > 0.0]
            tables.switch_targets[t] = len(shares)
            remaining = leave
            for j, share in enumerate(shares):
                tables.switch_split[t, j] = min(1.0, share / remaining)
                remaining -= share
    return tables


# ======================================================================= section 1+2: workload


@dataclass
class WorkloadTiming:
    threads: int
    replicates: int
    engine_seconds: float = 0.0
    rng_seconds: float = 0.0
    reruns: int = 0  # replicates rerun by run_block because their trajectory overflowed


@dataclass
class WorkloadCounts:
    exact_steps: int = 0
    exact_ok: bool = True
    exact_note: str = ""
    trajectory_steps: int = 0
    rng_steps: int = 0
    draws: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    final_cells: list[np.ndarray] = field(default_factory=list)


def run_workload(model: CompiledModel, seed: int, replicates: int, thread_counts: list[int],
                 replay: tuple[bool, str], console) -> tuple[list[WorkloadTiming], WorkloadCounts]:
    """Time the engine and the RNG-only kernel block by block, on every thread count.

    Per block of ``model.block_replicates`` replicates: the engine on each thread count
    (timed: ``runner.run_block``, i.e. streams, buffers, kernel and any overflow rerun, as a
    run pays them), then untimed bookkeeping (draw mix, exact replay count), then the
    RNG-only kernel on each thread count (timed: streams + kernel). Interleaving all four
    measurements block by block makes them share the same machine conditions. Results must
    be identical on every thread count (they are checked).
    """
    if model.kernel.carrying_capacity_cells < math.inf:
        raise SystemExit("the RNG-only tables assume no carrying capacity (rates fixed per type)")
    block = model.block_replicates
    max_threads = max(thread_counts)
    counts = WorkloadCounts(exact_ok=replay[0], exact_note=replay[1])
    timings = {t: WorkloadTiming(threads=t, replicates=replicates) for t in thread_counts}
    num_mechanisms = len(model.mechanism_names)
    max_comp = kernel_max_compartments(model)
    width = _num_rows_reserved(model)
    for start in range(0, replicates, block):
        reps = np.arange(start, min(replicates, start + block), dtype=np.int64)
        result = None
        for threads in thread_counts:
            with numba_threads(threads):
                began = time.perf_counter()
                this = runner.run_block(model, seed, reps)
                timings[threads].engine_seconds += time.perf_counter() - began
            timings[threads].reruns += int(np.count_nonzero(this.trajectory_rows > width))
            if result is None:
                result = this
            elif not np.array_equal(result.final_cells, this.final_cells):
                raise SystemExit(f"{threads} threads gave other results than {thread_counts[0]}")
            del this

        # ---- untimed: the draw mix and the compartment-step counts
        mix = draw_mix(model, result)
        counts.trajectory_steps += int(mix[3].sum())
        counts.rng_steps += int(mix[3].sum())
        if counts.exact_ok:
            with numba_threads(max_threads):
                counts.exact_steps += _exact_block_count(
                    model, seed, reps, result, max_comp, num_mechanisms, counts
                )
        del result

        # ---- timed: the same block's draws alone, streams built as the runner builds them
        for threads in thread_counts:
            with numba_threads(threads):
                began = time.perf_counter()
                draws = rng_only(model, seed, reps, mix)
                timings[threads].rng_seconds += time.perf_counter() - began
        counts.draws += draws.sum(axis=0)
        done = int(reps[-1]) + 1
        console.log(f"workload: {done:,}/{replicates:,} replicates; " + "; ".join(
            f"{t} thr: engine {timings[t].engine_seconds:.1f} s, RNG-only "
            f"{timings[t].rng_seconds:.1f} s" for t in thread_counts))
    return [timings[t] for t in thread_counts], counts


def draw_mix(model: CompiledModel, result: runner.BlockResult):
    """The RNG-only kernel's input for a block: (offsets, cells, type, steps, tables)."""
    offsets = np.zeros(len(result.replicates) + 1, np.int64)
    row_cells, row_geno, row_pheno, row_steps = _live_rows(
        result.traj_day, result.traj_genotype, result.traj_phenotype, result.traj_cells,
        result.trajectory_rows, model.dt_days, offsets,
    )
    types, row_type = np.unique(np.stack([row_geno, row_pheno], axis=1), axis=0,
                                return_inverse=True)
    row_type = np.ascontiguousarray(row_type.ravel(), dtype=np.int64)
    return offsets, row_cells, row_type, row_steps, draw_tables(model, types)


def rng_only(model: CompiledModel, seed: int, reps: np.ndarray, mix) -> np.ndarray:
    """Run the RNG-only kernel on a block's draw mix; returns the (B, 4) draw counts."""
    offsets, row_cells, row_type, row_steps, tables = mix
    draws = np.zeros((len(reps), 4), np.int64)
    _rng_only_block(generators_for(seed, reps), offsets, row_cells, row_type, row_steps,
                    model.dt_days, *tables.args(), kernel.MAX_INDIVIDUAL_ARRIVALS,
                    np.zeros(len(reps), np.int64), draws)
    return draws


def _num_rows_reserved(model: CompiledModel) -> int:
    return (model.num_steps // model.record_every_steps + 2) * runner.INITIAL_ROWS_PER_RECORD


def _exact_block_count(model, seed, reps, result, max_comp, num_mechanisms,
                       counts: WorkloadCounts) -> int:
    """Exact compartment-steps of a block by replay; marks ``counts`` unusable on mismatch."""
    size = len(reps)
    status = np.zeros(size, np.int8)
    final = np.zeros(size, np.int64)
    rows = np.zeros(size, np.int64)
    steps = np.zeros(size, np.int64)
    _count_block(generators_for(seed, reps), model.kernel, model.initial_cells,
                 model.initial_phenotype_fraction, model.initial_alteration_fraction,
                 model.dt_days, model.horizon_days, model.num_steps, model.record_every_steps,
                 max_comp, num_mechanisms, status, final, rows, steps)
    same = (np.array_equal(status, result.status) and np.array_equal(final, result.final_cells)
            and np.array_equal(rows, result.trajectory_rows))
    if not same:
        counts.exact_ok = False
        counts.exact_note = ("the replay no longer reproduces the kernel (kernel changed?); "
                             "using the trajectory estimate")
        return 0
    return int(steps.sum())


def warm_up_workload(model: CompiledModel, seed: int) -> tuple[bool, str]:
    """Compile everything the timed sections call (engine, draw mix, RNG-only, replay).

    Returns whether the exact replay counter can be used, and why not.
    """
    reps = np.arange(WARMUP_REPLICATES, dtype=np.int64)
    result = runner.run_block(model, seed, reps)
    rng_only(model, seed, reps, draw_mix(model, result))
    if model.grow_from_single_cell_to != 0:
        return False, "the replay covers initial_cells configs only"
    scratch = WorkloadCounts()
    try:
        _exact_block_count(model, seed, reps, result, kernel_max_compartments(model),
                           len(model.mechanism_names), scratch)
    except Exception as error:  # noqa: BLE001 - a kernel whose internals changed
        return False, f"the replay no longer compiles against the kernel ({type(error).__name__})"
    return scratch.exact_ok, scratch.exact_note


# ================================================================================ section 5: RSS


def rss_child(replicates: int, threads: int, seed: int) -> None:
    """Subprocess body: stream ``replicates`` through iterate_blocks, discard, report peak RSS."""
    model = compile_model(load_config(WORKLOAD))
    runner.set_threads(threads)
    runner.run_block(model, seed, range(WARMUP_REPLICATES))
    baseline = peak_rss_mb()
    began = time.perf_counter()
    blocks = 0
    for block in runner.iterate_blocks(model, seed, range(replicates)):
        blocks += 1
        del block
    print(json.dumps({"replicates": replicates, "blocks": blocks, "baseline_mb": baseline,
                      "peak_mb": peak_rss_mb(), "seconds": time.perf_counter() - began}))


def run_rss_children(replicate_counts: list[int], threads: int, seed: int) -> list[dict]:
    out = []
    for count in replicate_counts:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(count),
             "--threads", str(threads), "--seed", str(seed)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"RSS subprocess failed:\n{proc.stderr}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


# ================================================================ sections 3+4: small exact models


def small_model(initial_cells: int, dt_days: float = 1.0, mutation_switching: bool = False,
                horizon_days: float = 10.0) -> CompiledModel:
    """Linear birth-death b = 1, d = 0.5 per day for 10 days; optionally with 2 phenotypes
    (switching both ways) and 2 alterations (mutation)."""
    config = {
        "name": "bench-birth-death",
        "seed": 1,
        "time": {"horizon_days": horizon_days, "dt_days": dt_days,
                 "record_every_days": horizon_days},
        "tumor": {"initial_cells": float(initial_cells)},
        "phenotypes": {"sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5}},
    }
    if mutation_switching:
        config["phenotypes"]["persister"] = {
            "birth_rate_per_day": 0.2, "death_rate_per_day": 0.1, "mutation_rate_multiplier": 10,
        }
        config["switching"] = [
            {"from": "sensitive", "to": "persister", "rate_per_day": 0.05},
            {"from": "persister", "to": "sensitive", "rate_per_day": 0.2},
        ]
        config["alterations"] = {
            "A": {"mutation_rate_per_division": 1e-3},
            "B": {"mutation_rate_per_division": 5e-4},
        }
    return compile_model(config_from_mapping(config))


def engine_final_sizes(model: CompiledModel, seed: int, replicates: int
                       ) -> tuple[float, np.ndarray]:
    """Wall time and final sizes of ``replicates`` engine replicates (current thread count)."""
    runner.run_block(model, seed, range(WARMUP_REPLICATES))  # compile / warm caches
    began = time.perf_counter()
    finals = [b.final_cells for b in runner.iterate_blocks(model, seed, range(replicates))]
    return time.perf_counter() - began, np.concatenate(finals)


def reference_final_sizes(model: CompiledModel, seed: int, replicates: int
                          ) -> tuple[float, np.ndarray]:
    end = [0.0, model.horizon_days]
    reference_engine.simulate_reference_many(model, seed, WARMUP_REPLICATES, end)
    began = time.perf_counter()
    results = reference_engine.simulate_reference_many(model, seed, replicates, end)
    seconds = time.perf_counter() - began
    return seconds, np.array([r.final_cells for r in results], dtype=np.int64)


def compare_samples(a: np.ndarray, b: np.ndarray) -> tuple[float, float | None]:
    """(z of the difference of means, two-sample KS p-value or None without scipy)."""
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    z = (a.mean() - b.mean()) / se if se > 0 else 0.0
    try:
        from scipy.stats import ks_2samp
    except ImportError:
        return z, None
    return z, float(ks_2samp(a, b).pvalue)


@dataclass
class Comparison:
    label: str
    other: str
    replicates: int
    engine_seconds: float
    other_seconds: float | None
    engine_mean: float
    other_mean: float | None
    z: float | None
    ks_p: float | None
    note: str = ""

    @property
    def speedup(self) -> float | None:
        if self.other_seconds is None:
            return None
        return self.other_seconds / self.engine_seconds


def reference_comparisons(seed: int, replicates: dict[str, int], console) -> list[Comparison]:
    cases = [
        ("1 cell, b=1 d=0.5, 10 d", dict(initial_cells=1), replicates["one_cell"]),
        ("100 cells, b=1 d=0.5, 10 d", dict(initial_cells=100), replicates["hundred"]),
        ("100 cells + mut + switch, dt=1", dict(initial_cells=100, mutation_switching=True),
         replicates["hundred"]),
        ("100 cells + mut + switch, dt=0.1",
         dict(initial_cells=100, mutation_switching=True, dt_days=0.1), replicates["hundred"]),
    ]
    out = []
    reference_cache: dict[tuple, tuple[float, np.ndarray]] = {}
    for label, kwargs, count in cases:
        model = small_model(**kwargs)
        engine_seconds, engine_final = engine_final_sizes(model, seed, count)
        if reference_engine is None:
            out.append(Comparison(label, "reference", count, engine_seconds, None,
                                  float(engine_final.mean()), None, None, None,
                                  "reference engine not available"))
            continue
        # The reference does not depend on dt: simulate each (cells, mutation) model once.
        key = (kwargs.get("initial_cells"), kwargs.get("mutation_switching", False), count)
        if key not in reference_cache:
            reference_cache[key] = reference_final_sizes(model, seed, count)
        ref_seconds, ref_final = reference_cache[key]
        z, p = compare_samples(engine_final, ref_final)
        out.append(Comparison(label, "reference", count, engine_seconds, ref_seconds,
                              float(engine_final.mean()), float(ref_final.mean()), z, p))
        console.log(f"reference: {label}: engine {engine_seconds:.3f} s, "
                    f"reference {ref_seconds:.3f} s")
    return out


def gillespy2_comparisons(seed: int, replicates: dict[str, int], console) -> list[Comparison]:
    """GillesPy2 SSA on the birth-death model: species N, N -> 2N at b N, N -> 0 at d N."""
    cases = [("1 cell, b=1 d=0.5, 10 d", 1, replicates["one_cell"]),
             ("100 cells, b=1 d=0.5, 10 d", 100, replicates["hundred"])]
    # GillesPy2 finds SCons through PATH (or `sys.executable -m SCons`, which resolves the
    # venv's python symlink to the base interpreter): put this interpreter's bin dir first.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    try:
        import gillespy2
    except ImportError as error:
        return [Comparison(label, "GillesPy2", count, math.nan, None, math.nan, None, None, None,
                           f"unavailable: {error}") for label, _, count in cases]
    out = []
    for label, cells, count in cases:
        model = gillespy2.Model(name="birth_death")
        b = gillespy2.Parameter(name="b", expression=1.0)
        d = gillespy2.Parameter(name="d", expression=0.5)
        model.add_parameter([b, d])
        n = gillespy2.Species(name="N", initial_value=cells, mode="discrete")
        model.add_species(n)
        model.add_reaction(gillespy2.Reaction(name="birth", reactants={n: 1}, products={n: 2},
                                              rate=b))
        model.add_reaction(gillespy2.Reaction(name="death", reactants={n: 1}, products={},
                                              rate=d))
        model.timespan(np.linspace(0.0, 10.0, 11))
        solver_name = "SSACSolver (C++)"
        trajectories = count
        note = ""
        began = time.perf_counter()
        try:
            solver = gillespy2.SSACSolver(model=model)
            solver.run(number_of_trajectories=2, seed=seed)  # first run outside the timing
        except Exception as error:  # noqa: BLE001 - any build failure means: fall back
            solver_name = "NumPySSASolver"
            solver = gillespy2.NumPySSASolver(model=model)
            trajectories = min(count, 200)
            note = f"C++ solver failed ({type(error).__name__}); NumPy SSA on {trajectories}"
        compile_seconds = time.perf_counter() - began
        began = time.perf_counter()
        results = solver.run(number_of_trajectories=trajectories, seed=seed)
        other_seconds = time.perf_counter() - began
        finals = np.array([trajectory["N"][-1] for trajectory in results], dtype=np.int64)
        engine_model = small_model(initial_cells=cells)
        engine_seconds, engine_final = engine_final_sizes(engine_model, seed, trajectories)
        z, p = compare_samples(engine_final, finals)
        note = note or f"{solver_name}; compile + first run {compile_seconds:.1f} s (excluded)"
        out.append(Comparison(label, f"GillesPy2 {gillespy2.__version__}", trajectories,
                              engine_seconds, other_seconds, float(engine_final.mean()),
                              float(finals.mean()), z, p, note))
        console.log(f"gillespy2: {label}: engine {engine_seconds:.3f} s, "
                    f"{solver_name} {other_seconds:.3f} s")
    return out


# ================================================================================== reporting


def source_version() -> str:
    """The checkout's commit, and whether the engine sources differ from it."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "src/clonesim/engine"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {commit}" + (" + uncommitted engine changes" if dirty else "")


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=None,
                        help="workload replicates (default 10,000; 1,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smaller run (under ~2 minutes)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-gillespy2", action="store_true", help="leave out GillesPy2")
    args = parser.parse_args(argv)

    if args.rss_child is not None:
        rss_child(args.rss_child, args.threads or numba.config.NUMBA_NUM_THREADS, args.seed)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, width=120)
    out = Console(width=150)
    replicates = args.replicates or (1_000 if args.quick else 10_000)
    small = ({"one_cell": 2_000, "hundred": 500} if args.quick
             else {"one_cell": 10_000, "hundred": 2_000})
    # At least 2 blocks in both, so that the comparison is not 1 block against many.
    rss_counts = [2_000, 5_000] if args.quick else [2_000, 10_000]
    max_threads = numba.config.NUMBA_NUM_THREADS
    thread_counts = sorted({1, min(2, max_threads)})
    began_all = time.perf_counter()
    load_before = os.getloadavg()[0]

    model = compile_model(load_config(WORKLOAD))
    console.log("warming up (numba compile excluded from every timing)")
    with numba_threads(max_threads):
        replay = warm_up_workload(model, args.seed)

    timings, counts = run_workload(model, args.seed, replicates, thread_counts, replay, console)
    rss_main = peak_rss_mb()

    console.log(f"peak RSS: subprocesses streaming {rss_counts} replicates")
    rss = run_rss_children(rss_counts, max_threads, args.seed)

    with numba_threads(1):
        refs = reference_comparisons(args.seed, small, console)
        gill = ([] if args.skip_gillespy2 else gillespy2_comparisons(args.seed, small, console))

    # ------------------------------------------------------------------ tables
    steps = counts.exact_steps if counts.exact_ok else counts.trajectory_steps
    steps_label = "exact (replay)" if counts.exact_ok else "trajectory estimate"
    rng_steps = counts.rng_steps
    lines: list[str] = []

    head = Table(title=f"clonesim engine benchmark - {model.name} ({WORKLOAD.name})")
    head.add_column("item")
    head.add_column("value", justify="right")
    head.add_row("replicates x steps", f"{replicates:,} x {model.num_steps:,}")
    head.add_row("compartment-steps, exact (replay)",
                 f"{counts.exact_steps:,}" if counts.exact_ok else f"n/a ({counts.exact_note})")
    head.add_row("compartment-steps, trajectory estimate",
                 f"{counts.trajectory_steps:,}"
                 + (f" ({counts.trajectory_steps / counts.exact_steps - 1:+.2%})"
                    if counts.exact_ok and counts.exact_steps else ""))
    head.add_row("live compartments per step (mean)",
                 f"{steps / replicates / model.num_steps:.2f}")
    draws_per_step = counts.draws / max(rng_steps, 1)
    head.add_row("draws per compartment-step (binom/negbin/poisson/uniform)",
                 " / ".join(f"{x:.2f}" for x in draws_per_step))
    out.print(head)

    table = Table(title="1-2. Engine vs pure random-number cost (same draws, same streams)")
    for col in ("threads", "engine wall", "compartment-steps/s", "core-ns / step",
                "RNG-only wall", "RNG-only steps/s", "RNG core-ns / step", "engine / RNG",
                "reruns"):
        table.add_column(col, justify="right")
    for t in timings:
        engine_rate = steps / t.engine_seconds
        rng_rate = rng_steps / t.rng_seconds
        ratio = rng_rate / engine_rate
        table.add_row(str(t.threads), f"{t.engine_seconds:.2f} s", fmt_rate(engine_rate),
                      f"{1e9 * t.threads / engine_rate:.0f}", f"{t.rng_seconds:.2f} s",
                      fmt_rate(rng_rate), f"{1e9 * t.threads / rng_rate:.0f}",
                      f"{ratio:.2f}x", str(t.reruns))
        lines.append(
            f"engine, {t.threads} thread(s): {replicates:,} replicates x {model.num_steps:,} "
            f"steps in {t.engine_seconds:.1f} s = {engine_rate / 1e6:.2f} M compartment-steps/s "
            f"({steps_label} count); RNG-only {rng_rate / 1e6:.2f} M/s -> engine/RNG = "
            f"{ratio:.2f}x"
        )
    if len(timings) > 1:
        lines.append(f"parallel speedup {timings[0].threads} -> {timings[-1].threads} threads: "
                     f"{timings[0].engine_seconds / timings[-1].engine_seconds:.2f}x")
    out.print(table)

    small_table = Table(title="3-4. Same statistic (final size), same replicates, 1 thread")
    for col in ("model", "vs", "replicates", "engine", "other", "speedup",
                "mean engine / other", "z", "KS p", "note"):
        small_table.add_column(col, justify="right" if col not in ("model", "vs", "note")
                               else "left")
    for c in refs + gill:
        speed = f"{c.speedup:.1f}x" if c.speedup is not None else "n/a"
        small_table.add_row(
            c.label, c.other, f"{c.replicates:,}", f"{c.engine_seconds:.3f} s",
            f"{c.other_seconds:.3f} s" if c.other_seconds is not None else "n/a", speed,
            f"{c.engine_mean:,.0f} / {c.other_mean:,.0f}" if c.other_mean is not None else "n/a",
            f"{c.z:+.1f}" if c.z is not None else "", f"{c.ks_p:.2g}" if c.ks_p is not None
            else "", c.note,
        )
        if c.speedup is None:
            lines.append(f"{c.other} on {c.label}: unavailable ({c.note})")
        else:
            agree = ("final sizes agree" if (c.ks_p is None or c.ks_p > 0.001) and abs(c.z) < 4
                     else "final sizes DIFFER")
            lines.append(
                f"vs {c.other}, {c.label}: {c.replicates:,} replicates, engine "
                f"{c.engine_seconds:.3f} s vs {c.other_seconds:.3f} s -> {c.speedup:.1f}x "
                f"faster ({agree}: mean {c.engine_mean:,.0f} vs {c.other_mean:,.0f}, "
                f"z {c.z:+.1f}" + (f", KS p {c.ks_p:.2g}" if c.ks_p is not None else "") + ")"
            )
    out.print(small_table)

    mem = Table(title="5. Peak RSS (VmHWM; getrusage ru_maxrss where /proc is missing)")
    for col in ("process", "replicates", "blocks", "baseline after warm-up", "peak", "wall"):
        mem.add_column(col, justify="right" if col != "process" else "left")
    mem.add_row("this benchmark, after section 1-2", f"{replicates:,}", "", "",
                f"{rss_main:.0f} MiB", "")
    for r in rss:
        mem.add_row(f"fresh subprocess, iterate_blocks ({max_threads} thr)",
                    f"{r['replicates']:,}", str(r["blocks"]), f"{r['baseline_mb']:.0f} MiB",
                    f"{r['peak_mb']:.0f} MiB", f"{r['seconds']:.1f} s")
    out.print(mem)
    lines.append(
        "peak RSS streaming the workload through iterate_blocks: "
        + ", ".join(f"{r['replicates']:,} replicates {r['peak_mb']:.0f} MiB" for r in rss)
        + f" (block of {model.block_replicates:,} replicates)"
    )

    out.print()
    out.print(f"# clonesim benchmark ({'quick' if args.quick else 'full'}) on "
              f"{platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, numba {numba.__version__}, numpy {np.__version__}; "
              f"{source_version()}; 1-min load average {load_before:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after; total {time.perf_counter() - began_all:.0f} s",
              markup=False, highlight=False, soft_wrap=True)
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
