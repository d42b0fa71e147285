#!/usr/bin/env python
"""Benchmark the clone engine, side by side, in one run.

Sections (all timings wall-clock; numba compile time excluded by warming every kernel up first):

1. Engine throughput on the shipped workload ``configs/untreated_growth.yaml``
   (1e9 cells, ~7 live compartments, 1,825 daily steps, mutation and switching on, no drugs):
   N replicates (default 10,000) on 1 and on 2 numba threads, in compartment-steps per second.
2. The pure random-number limit: a numba kernel that makes only the draws the engine makes
   per compartment-step (same distributions, same parameters, the same per-replicate PCG64
   streams that drive the engine's steps, i.e. the therapy streams
   ``SeedSequence(seed, spawn_key=(0, k, 1))``, in a ``numba.typed.List`` indexed inside
   ``prange``, same thread count), and the ratio engine / RNG-only per compartment-step (the
   target: within 2x). A third kernel makes the same draws through the engine's own
   per-compartment code, which splits the engine's time into draws, per-compartment math and
   bookkeeping.
3. Therapy: ``configs/egfr_nsclc.yaml`` (pre-growth from one cell to 1e10, 4 drugs), all its
   schedules, 2,000 replicates, 5-year horizon, on 2 threads: wall time (target < 120 s) and
   compartment-steps/s, side by side (block by block) with (a) the untreated workload of
   section 1 and (b) the same EGFR config with its drugs removed (one no-drug schedule);
   the ratio of compartment-steps/s untreated / treated (target <= 1.5), and the share of
   the wall time spent building the day-0 tumours (pre-growth, ``grow_from_single_cell_to``).
4. Speedup over the exact Gillespie reference engine (``clonesim.engine.reference``) on
   small models, same replicates, same statistic (final size), both on 1 thread.
5. GillesPy2's exact SSA (C++ ``SSACSolver`` when it builds here, else its NumPy SSA) on
   the same small birth-death model; its one-off build is excluded.
6. Peak RSS: of this process after sections 1-2, and of fresh subprocesses that stream
   2,000 and 10,000 replicates through ``runner.iterate_blocks`` and discard the blocks.

Run:  /work/venv/bin/python scripts/benchmark.py [--quick] [--replicates N]
          [--therapy-replicates N] [--skip-gillespy2]

``--quick`` runs every section (self-check included) at toy sizes, as a smoke test of the
script (about half a minute with numba's cache warm); its figures are not measurements.

Compartment-steps (the denominator of every per-step figure)
------------------------------------------------------------
The engine's count is exact: ``BlockResult.compartment_steps``, the compartments holding cells
at the start of each step's ``_advance``, summed over the steps. The RNG-only kernel replays,
per replicate, the draw mix of that replicate's own trajectory: each live row (genotype,
phenotype, cells) stands for the steps until the next record, with ``n`` held at the recorded
size and the draw parameters from per-type tables. That mix misses compartments born and
emptied between two records, so its step count (the "trajectory estimate") is a little
below the exact one; engine and RNG-only costs are compared per compartment-step, each over
its own count. The exact count covers the steps after day 0 only (every schedule's, in the
therapy section), not pre-growth's: section 3 reports compartment-steps/s both over the whole
wall time and over the wall time less the day-0 build.

Before anything is timed, a self-check runs the engine and the RNG-only kernel as plain Python
(``NUMBA_DISABLE_JIT=1``, in a subprocess) on a few replicates with a Generator that counts
draws and sums their parameters, the RNG-only kernel on the engine's exact compartment states
and the same therapy streams; it stops the benchmark when the two no longer make the same
draws with the same mean parameters (see ``check_mirror``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange, typed

from clonesim.config import config_from_mapping, load_config
from clonesim.engine import kernel, runner
from clonesim.engine import reference as reference_engine
from clonesim.engine.birth_death import (
    birth_death_step,
    integrated_cells,
    transition_coefficients,
)
from clonesim.model.compiled import CompiledModel, compile_model

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "configs" / "untreated_growth.yaml"
THERAPY_CONFIG = ROOT / "configs" / "egfr_nsclc.yaml"
THERAPY_HORIZON_DAYS = 5 * 365.0  # the therapy section's horizon: 5 years
WARMUP_REPLICATES = 4
CHECK_REPLICATES = 8  # replicates of the workload in the draw self-check (~0.2 s each as Python)
DRAW_KINDS = ("binomial", "negative binomial", "Poisson", "uniform")


# =============================================================================== numba kernels


@njit(cache=True)
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


# The two kernels below MIRROR the draws of ``kernel._advance`` (via ``_switch``,
# ``birth_death_step``, ``multinomial_split`` and ``_grow_new_cells``): same distributions,
# same conditions, same order per compartment. If the engine's draws change, update them
# (and ``draw_tables``); ``check_mirror``, run at the start of every benchmark, counts the
# draws of both on the engine's own compartment states and stops the benchmark when they
# no longer match.


@njit(cache=True)
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


@njit(parallel=True, cache=True)
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
    target but the last; then each target's batch of k new cells grows for the rest of the step:
    up to ``max_individual_arrivals`` cells, per cell a ``random()`` birth time,
    ``binomial(1, .)`` and ``negative_binomial(1, .)``; a larger batch one ``random()``
    (its earliest birth time) and one binomial / negative binomial pair), switching for dt/2
    again. No rate evaluation, no compartment bookkeeping: every parameter comes from a
    table, and n stays at the recorded size. ``draws[i]`` counts the draws by DRAW_KINDS.
    """
    for i in prange(len(generators)):
        rng = generators[np.int64(i)]
        acc = np.int64(0)
        n_binomial = np.int64(0)
        n_negbin = np.int64(0)
        n_poisson = np.int64(0)
        n_uniform = np.int64(0)
        batch = np.zeros(mut_split.shape[1], np.int64)
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
                    # As multinomial_split, then _grow_new_cells per target: first one
                    # binomial per target but the last while mutants are left, then the batches.
                    for j in range(mut_targets[t]):
                        k = mutants
                        if mutants > 0 and j < mut_targets[t] - 1:
                            k = rng.binomial(mutants, mut_split[t, j])
                            n_binomial += 1
                        batch[j] = k
                        mutants -= k
                    for j in range(mut_targets[t]):
                        k = batch[j]
                        if k == 0:
                            continue
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
                            acc += np.int64(rng.random() * 2.0)
                            n_uniform += 1
                            alive = k
                            if mut_alpha[t, j] > 0.0:
                                alive = rng.binomial(k, 1.0 - mut_alpha[t, j])
                                n_binomial += 1
                            if alive > 0 and mut_beta[t, j] > 0.0:
                                acc += rng.negative_binomial(alive, 1.0 - mut_beta[t, j])
                                n_negbin += 1
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


@njit(parallel=True, cache=True)
def _draws_and_math_block(generators, model, cache_key, cache_epoch, epoch, cache_signal,
                          cache_lacking_rate, extra_death, offsets, row_cells, row_type,
                          row_steps, dt_days, type_geno, type_pheno, leave_probability,
                          switch_targets, switch_split, checksum):
    """The RNG-only kernel plus the engine's own per-compartment math, for a time breakdown.

    Same draw mix as ``_rng_only_block``, but the birth-death, mutation and mutant-growth
    parts go through the kernel's own code exactly as ``_advance`` runs it: the genotype
    cache lookups (``_key_slot``, ``_probe``, on a cache filled beforehand and only read
    here), the rates written out as ``_advance`` writes them (``rates_under_signal``),
    ``birth_death_step`` with its transition coefficients, ``integrated_cells``,
    ``multinomial_split`` and ``_grow_new_cells``. What the engine spends beyond this is
    compartment bookkeeping (the switching sub-steps' loops and arrivals, finding or adding
    compartments, arisal days, totals, compaction, trajectory rows, the per-step exposure,
    events and triggers of ``run_schedule``) and per-replicate setup.
    """
    mutation_rates = model.alteration_mutation_rate_per_division
    base_birth = model.phenotype_birth_rate_per_day
    base_death = model.phenotype_death_rate_per_day
    kill = model.phenotype_drug_kill_rate_per_day
    cytostatic = model.phenotype_cytostatic_share
    multiplier = model.phenotype_mutation_rate_multiplier
    num_alterations = mutation_rates.shape[0]
    logistic = 1.0  # the workload has no carrying capacity (checked by run_workload)
    for i in prange(len(generators)):
        rng = generators[np.int64(i)]
        acc = np.int64(0)
        weights = np.zeros(num_alterations)
        counts = np.zeros(num_alterations, np.int64)
        for r in range(offsets[i], offsets[i + 1]):
            n = row_cells[r]
            t = row_type[r]
            g = type_geno[t]
            p = type_pheno[t]
            leave = leave_probability[t]
            for _ in range(row_steps[r]):
                if leave > 0.0:
                    stay, _made = _switch_draws(rng, n, leave, switch_targets, switch_split, t)
                    acc += stay
                slot = kernel._key_slot(cache_key, g)
                lack_signal = 1.0 - cache_signal[slot]
                birth = base_birth[p] * (1.0 - cytostatic[p] * lack_signal) * logistic
                death = base_death[p] + kill[p] * lack_signal + extra_death[p]
                mutation = cache_lacking_rate[slot] * multiplier[p]
                end = birth_death_step(rng, n, birth * (1.0 - mutation), death, dt_days)
                if mutation > 0.0 and birth > 0.0:
                    cell_days = integrated_cells(n, end, dt_days)
                    mutants = rng.poisson(birth * mutation * cell_days)
                    if mutants > 0:
                        for a in range(num_alterations):
                            weights[a] = mutation_rates[a] if not (g >> a) & 1 else 0.0
                        kernel.multinomial_split(rng, mutants, weights, counts)
                        for a in range(num_alterations):
                            if counts[a] == 0:
                                continue
                            m = kernel._probe(cache_key, cache_epoch, epoch,
                                              g | (np.int64(1) << a))
                            lack_mutant = 1.0 - cache_signal[m]
                            birth_m = base_birth[p] * (1.0 - cytostatic[p] * lack_mutant) * logistic
                            death_m = base_death[p] + kill[p] * lack_mutant + extra_death[p]
                            mutation_m = cache_lacking_rate[m] * multiplier[p]
                            grown, _first = kernel._grow_new_cells(
                                rng, birth_m * (1.0 - mutation_m), death_m, counts[a], n, end,
                                dt_days,
                            )
                            acc += grown
                if leave > 0.0 and end > 0:
                    end, _made = _switch_draws(rng, end, leave, switch_targets, switch_split, t)
                acc += end
        checksum[i] = acc


@njit(cache=True)
def _pregrow_one(rng, model, initial_cells, phenotype_fraction, alteration_fraction,
                 grow_to_cells, dt_days, max_compartments, num_mechanisms):
    """The day-0 part of ``kernel.simulate_replicate``: its workspace and ``build_day_zero``."""
    ws = kernel.make_workspace(model, max_compartments)
    arise_day = np.empty(num_mechanisms)
    num_active, days_to_diagnosis, _status = kernel.build_day_zero(
        rng, initial_cells, phenotype_fraction, alteration_fraction, grow_to_cells, dt_days,
        ws, arise_day,
    )
    return days_to_diagnosis, kernel._total(ws.cells, num_active)


@njit(parallel=True, cache=True)
def _pregrowth_block(day_zero_generators, model, initial_cells, phenotype_fraction,
                     alteration_fraction, grow_to_cells, dt_days, max_compartments,
                     num_mechanisms, days_to_diagnosis, day_zero_cells):
    """Build every replicate's day-0 tumour as ``kernel.simulate_block`` does, and nothing else
    (pre-growth, ``grow_from_single_cell_to``, when the config has it)."""
    for i in prange(len(day_zero_generators)):
        days_to_diagnosis[i], day_zero_cells[i] = _pregrow_one(
            day_zero_generators[np.int64(i)], model, initial_cells, phenotype_fraction,
            alteration_fraction, grow_to_cells, dt_days, max_compartments, num_mechanisms,
        )


# ======================================================================= draw tables and mixes


@contextlib.contextmanager
def numba_threads(count: int):
    """Run the body with ``count`` numba threads, restoring the previous count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def generators_for(seed: int, replicates: np.ndarray) -> typed.List:
    """The streams that drive the engine's steps after day 0, built as ``runner._run_kernel``
    builds them: per replicate k (one schedule), ``runner.therapy_generator(seed, k)``, i.e.
    PCG64(SeedSequence(seed, spawn_key=(0, k, 1))). The day-0 stream (0, k) only seeds the
    tumour; the RNG-only kernels leave it out (the engine's time includes building it)."""
    return typed.List([runner.therapy_generator(seed, int(k), 0) for k in replicates])


def day_zero_generators_for(seed: int, replicates: np.ndarray) -> typed.List:
    """The day-0 streams, as ``runner._run_kernel`` builds them (seeding or pre-growth)."""
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


@njit(cache=True)
def _cache_arrays(ws):
    """The genotype cache's arrays of a workspace (a StructRef has no Python attributes):
    key, epoch, signal, lacking rate, transitions, extra death per phenotype, and the epoch."""
    return (ws.cache_key, ws.cache_epoch, ws.cache_signal, ws.cache_lacking_rate,
            ws.cache_transition, ws.extra_death, np.int64(ws.state[kernel.EPOCH]))


def genotype_cache(model: CompiledModel, genotypes, exposure: np.ndarray | None = None):
    """A kernel workspace whose genotype cache holds ``genotypes`` (and their single mutants)
    under ``exposure`` (default: no drug) for steps of ``model.dt_days``, as ``_advance``
    fills it: ``set_exposure`` then ``genotype_slot`` per genotype."""
    km = model.kernel
    ws = kernel.make_workspace(km, runner._max_compartments(model))
    if exposure is None:
        exposure = np.zeros(len(model.drug_names))
    kernel.set_exposure(ws, np.asarray(exposure, np.float64), model.dt_days)
    for g in sorted({int(g) for g in genotypes}):
        for a in range(-1, model.num_alterations):
            kernel.genotype_slot(ws, np.int64(g | (1 << a) if a >= 0 else g))
    return ws


def draw_tables(model: CompiledModel, types: np.ndarray, exposure: np.ndarray | None = None
                ) -> DrawTables:
    """Draw parameters of each (genotype, phenotype) in ``types`` (rows), as ``_advance`` sets them.

    Rates come from the kernel's genotype cache (signal s_g, summed mutation rate of the
    alterations g lacks, switching transition over dt / 2) under ``exposure`` (default: no
    drug, s_g = 1) through ``kernel.rates_under_signal``, without logistic competition (the
    workload has no carrying capacity), so they depend on the type only. Where ``_advance``
    uses the step's integrated cells I (mutant mean b U I) the tables use I = n dt; new
    mutant cells grow for dt / 2, about their mean remaining time; switching uses the
    cache's own P_g = expm(Q(s_g) dt / 2) for each of the two half-steps.
    """
    km = model.kernel
    dt = model.dt_days
    num_types = len(types)
    num_alterations = model.num_alterations
    num_phenotypes = model.num_phenotypes
    u = np.asarray(km.alteration_mutation_rate_per_division)
    ws = genotype_cache(model, types[:, 0] if num_types else [], exposure)
    _, _, signal, lacking_rate, transitions, extra_death, _ = _cache_arrays(ws)

    def rates(g: int, p: int):
        slot = kernel.genotype_slot(ws, np.int64(g))
        return kernel.rates_under_signal(km, p, signal[slot], lacking_rate[slot],
                                         extra_death[p], 1.0), slot

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
        (b, d, mutation), slot = rates(g, p)
        tables.alpha[t], tables.beta[t] = transition_coefficients(b * (1.0 - mutation), d, dt)
        if mutation > 0.0 and b > 0.0:
            tables.mutants_per_cell_day[t] = b * mutation
            targets = [a for a in range(num_alterations) if not (g >> a) & 1 and u[a] > 0.0]
            tables.mut_targets[t] = len(targets)
            remaining = lacking_rate[slot]
            for j, a in enumerate(targets):
                tables.mut_split[t, j] = min(1.0, u[a] / remaining)
                remaining -= u[a]
                (bm, dm, um), _ = rates(g | (1 << a), p)
                tables.mut_alpha[t, j], tables.mut_beta[t, j] = transition_coefficients(
                    bm * (1.0 - um), dm, dt / 2
                )
        if km.has_switching:
            transition = transitions[kernel.genotype_slot(ws, np.int64(g))]
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


@dataclass
class Mix:
    """A block's draw mix: compartment rows flattened, and their type tables."""

    offsets: np.ndarray  # (B + 1,) replicate i's rows are offsets[i]:offsets[i + 1]
    cells: np.ndarray  # cells of the row (held for its steps)
    row_type: np.ndarray  # index into types
    steps: np.ndarray  # steps the row stands for
    types: np.ndarray  # (T, 2) genotype, phenotype
    tables: DrawTables


def make_mix(model: CompiledModel, offsets, cells, geno, pheno, steps) -> Mix:
    types, row_type = np.unique(np.stack([geno, pheno], axis=1), axis=0, return_inverse=True)
    return Mix(np.asarray(offsets, np.int64), np.asarray(cells, np.int64),
               np.ascontiguousarray(row_type.ravel(), dtype=np.int64),
               np.asarray(steps, np.int64), np.ascontiguousarray(types),
               draw_tables(model, types))


def trajectory_mix(model: CompiledModel, result: runner.BlockResult) -> Mix:
    """The RNG-only kernels' input for a block: its live trajectory rows."""
    offsets = np.zeros(len(result.replicates) + 1, np.int64)
    cells, geno, pheno, steps = _live_rows(
        result.traj_day, result.traj_genotype, result.traj_phenotype, result.traj_cells,
        result.trajectory_rows, model.dt_days, offsets,
    )
    return make_mix(model, offsets, cells, geno, pheno, steps)


def rng_only(model: CompiledModel, generators, mix: Mix) -> np.ndarray:
    """Run the RNG-only kernel on a draw mix; returns the (B, 4) draw counts by DRAW_KINDS."""
    draws = np.zeros((len(generators), 4), np.int64)
    _rng_only_block(generators, mix.offsets, mix.cells, mix.row_type, mix.steps, model.dt_days,
                    *mix.tables.args(), kernel.MAX_INDIVIDUAL_ARRIVALS,
                    np.zeros(len(generators), np.int64), draws)
    return draws


def draws_and_math(model: CompiledModel, generators, mix: Mix, ws) -> None:
    """Run the draws + per-compartment math kernel on a draw mix; ``ws`` is
    ``genotype_cache(model, mix.types[:, 0])`` (read only by the kernel's threads)."""
    tables = mix.tables
    key, epoch_of, signal, lacking_rate, _, extra_death, epoch = _cache_arrays(ws)
    _draws_and_math_block(generators, model.kernel, key, epoch_of, epoch, signal,
                          lacking_rate, extra_death, mix.offsets, mix.cells,
                          mix.row_type, mix.steps, model.dt_days, mix.types[:, 0].copy(),
                          mix.types[:, 1].copy(), tables.leave_probability,
                          tables.switch_targets, tables.switch_split,
                          np.zeros(len(generators), np.int64))


# ================================================== self-check: does the mirror still match?


class CountingGenerator:
    """A Generator that counts its draws by DRAW_KINDS while ``counting`` is set (Python mode),
    and sums their parameters: per kind, the first argument (n; the Poisson mean) and, for a
    probability p, p (1 - p) (PARAMETERS).

    Any other draw method fails: the RNG-only kernel would not mirror it either.
    """

    METHODS = ("binomial", "negative_binomial", "poisson", "random")  # DRAW_KINDS, in order

    def __init__(self, rng: np.random.Generator, counting: bool = False):
        self.rng = rng
        self.counting = counting
        self.counts = [0] * len(self.METHODS)
        self.sums = [[0.0, 0.0] for _ in self.METHODS]  # per kind: sum of n, of p (1 - p)

    def __getattr__(self, name):
        if name not in self.METHODS:
            raise AttributeError(f"the engine calls rng.{name}, which the RNG-only kernel does "
                                 "not mirror")
        kind = self.METHODS.index(name)
        draw = getattr(self.rng, name)

        def counted(*args):
            if self.counting:
                self.counts[kind] += 1
                if args:
                    self.sums[kind][0] += float(args[0])
                if len(args) > 1:
                    self.sums[kind][1] += float(args[1]) * (1.0 - float(args[1]))
            return draw(*args)

        return counted


#: Draw parameters compared by the self-check, as (label, kind index, sum index): their mean
#: over all draws of the kind, engine vs RNG-only kernel on the same states. p (1 - p) rather
#: than p: the mean of p is dominated by whichever draws have p near 1 whatever their
#: parameters, while p (1 - p) moves with every small probability (switching, death) and
#: every complement of one near 1 (survival).
PARAMETERS = (("binomial n", 0, 0), ("binomial p(1-p)", 0, 1), ("neg. binomial n", 1, 0),
              ("neg. binomial p(1-p)", 1, 1), ("Poisson mean", 2, 0))


def census(model: CompiledModel, seed: int, replicates: int) -> dict:
    """Count the draws of the engine and of the RNG-only kernel on the same compartment states.

    Python mode only (numba disabled). The engine runs ``kernel.simulate_replicate`` (day-0
    stream ``runner.replicate_generator``, the schedule's stream ``runner.therapy_generator``,
    as the runner builds them) with ``_advance`` wrapped so that only the steps after day 0
    count (calls on the therapy stream: pre-growth, ``grow_from_single_cell_to``, draws from
    the day-0 stream and is left out, as the kernel's compartment-steps leave it out) and
    each compartment-step's state (cells, genotype, phenotype at the start of ``_advance``)
    is recorded; the RNG-only kernel then makes its draws for exactly those states, on the
    same therapy streams. The model must have one schedule, without drugs (the RNG-only
    tables are for zero exposure).
    """
    if len(model.schedule_names) != 1 or model.drug_names:
        raise ValueError("census needs one schedule and no drugs")
    states: list[tuple[int, int, int]] = []
    advance = kernel._advance

    def counted_advance(rng, ws, num_active, *rest):
        if not isinstance(rng, CountingGenerator):  # the day-0 stream: pre-growth
            return advance(rng, ws, num_active, *rest)
        cells, geno, pheno = ws.cells, ws.geno, ws.pheno
        states.extend((int(cells[c]), int(geno[c]), int(pheno[c]))
                      for c in range(num_active) if cells[c] > 0)
        rng.counting = True
        try:
            return advance(rng, ws, num_active, *rest)
        finally:
            rng.counting = False

    kernel._advance = counted_advance  # Python mode: run_schedule looks it up per call
    offsets, final, steps = [0], [], []
    engine = np.zeros(4, np.int64)
    engine_sums = np.zeros((4, 2))
    num_mechanisms = len(model.mechanism_names)
    no_rows = np.zeros((1, 0), np.int64)  # trajectory buffers of capacity 0: rows counted only
    try:
        for k in range(replicates):
            rng = CountingGenerator(runner.therapy_generator(seed, k, 0))
            int_out = np.zeros((1, kernel.NUM_INT_OUT), np.int64)
            kernel.simulate_replicate(
                runner.replicate_generator(seed, k, 0), [rng], 0, model.kernel, model.schedules,
                np.zeros(1, np.int64), model.initial_cells, model.initial_phenotype_fraction,
                model.initial_alteration_fraction, model.grow_from_single_cell_to,
                model.dt_days, model.horizon_days, model.record_every_steps,
                runner._max_compartments(model), int_out,
                np.full((1, kernel.NUM_FLOAT_OUT), np.nan), np.zeros((1, 0)),
                np.zeros((1, num_mechanisms), np.int64),
                np.full((1, num_mechanisms, kernel.NUM_MECH_DAYS), np.nan), np.zeros((1, 0)),
                no_rows, no_rows, no_rows, np.zeros((1, 0)), no_rows, no_rows,
            )
            final.append(int(int_out[0, kernel.OUT_FINAL_CELLS]))
            steps.append(int(int_out[0, kernel.OUT_COMPARTMENT_STEPS]))
            offsets.append(len(states))
            engine += rng.counts
            engine_sums += rng.sums
    finally:
        kernel._advance = advance

    cells, geno, pheno = np.array(states, np.int64).T
    mix = make_mix(model, offsets, cells, geno, pheno, np.ones(len(states), np.int64))
    generators = [CountingGenerator(runner.therapy_generator(seed, k, 0), counting=True)
                  for k in range(replicates)]
    own = rng_only(model, generators, mix).sum(axis=0)
    counted = np.sum([g.counts for g in generators], axis=0).tolist()
    mirror_sums = np.sum([g.sums for g in generators], axis=0)
    return {"final_cells": final, "compartment_steps": steps, "states": len(states),
            "engine": engine.tolist(), "mirror": counted, "mirror_own": own.tolist(),
            "engine_sums": engine_sums.tolist(), "mirror_sums": mirror_sums.tolist()}


def draw_census(replicates: int, seed: int, large_batch_replicates: int) -> None:
    """Subprocess body (run with NUMBA_DISABLE_JIT=1): ``census`` of the workload, and of a
    "large batches" variant (100x the tumour for 100 days, every alteration at the largest
    rate: ~40 mutants per alteration and step, so the engine's batch branch of
    ``_grow_new_cells`` runs, which the workload rarely reaches). Prints one JSON line."""
    if not numba.config.DISABLE_JIT:
        raise SystemExit("--draw-census needs NUMBA_DISABLE_JIT=1")
    model = compile_model(load_config(WORKLOAD))
    km = model.kernel
    rates = np.full_like(km.alteration_mutation_rate_per_division,
                         km.alteration_mutation_rate_per_division.max())
    big = dataclasses.replace(model, initial_cells=100 * model.initial_cells, horizon_days=100.0,
                              kernel=km._replace(alteration_mutation_rate_per_division=rates))
    print(json.dumps({"workload": census(model, seed, replicates),
                      "large batches": census(big, seed, large_batch_replicates)}))


#: Allowed relative difference, engine vs RNG-only kernel, of the draws of each kind
#: (DRAW_KINDS) on the same compartment states. They differ only through the values drawn
#: (mutant numbers; the few compartments a step's opening switch creates, which the engine
#: advances but does not count): under 3% on both cases over several seeds. A draw dropped
#: from or added to any branch moves its kind much more (the batch uniform: -79% on
#: "large batches"; the per-cell uniform: -100% on the workload).
MIRROR_TOLERANCE = (0.02, 0.02, 0.01, 0.10)
#: Allowed relative difference of the mean draw parameters (PARAMETERS), engine vs RNG-only
#: kernel, on the same states. Observed over 5 seeds: under 0.5% on the workload, under 1.7%
#: on "large batches" (binomial p(1-p): the new cells' draws, whose remaining times the kernel
#: fixes at dt / 2, weigh more there). Tables deliberately wrong moved them, on the workload:
#: switching over dt instead of dt / 2, binomial p(1-p) +18%; beta 10% low, neg. binomial
#: p(1-p) -8%; the mutation rate 10% low, Poisson mean -10%; alpha 10% high, binomial
#: p(1-p) +3.2% (at the edge of what this catches).
PARAMETER_TOLERANCE = (0.02, 0.03, 0.02, 0.02, 0.01)


@dataclass
class MirrorCheck:
    replicates: int
    compartment_steps: int
    engine: np.ndarray  # (4,) draws by DRAW_KINDS
    mirror: np.ndarray
    engine_parameters: np.ndarray  # mean draw parameters, by PARAMETERS
    mirror_parameters: np.ndarray


def mean_parameters(counts: list[int], sums: list[list[float]]) -> np.ndarray:
    """Mean of each of PARAMETERS over the draws of its kind (NaN without draws)."""
    return np.array([sums[kind][arg] / counts[kind] if counts[kind] else math.nan
                     for _, kind, arg in PARAMETERS])


def check_mirror(model: CompiledModel, seed: int, result: runner.BlockResult,
                 large_batch_replicates: int) -> MirrorCheck:
    """Stop the benchmark unless the RNG-only kernel still makes the draws the engine makes.

    ``result`` is the compiled engine's run of replicates 0..n-1. Checks, on those replicates
    run again as Python (``draw_census``): that run reproduces the compiled engine (final
    cells, compartment-steps); ``compartment_steps`` is still the compartments live at the
    start of ``_advance``; the RNG-only kernel's own counters count every draw it makes; and
    on the engine's exact compartment states it makes as many draws of each kind as the
    engine, within MIRROR_TOLERANCE, with the same mean parameters, within
    PARAMETER_TOLERANCE (the "large batches" case on ``large_batch_replicates`` replicates).
    """
    count = len(result.replicates)
    if not np.array_equal(result.replicates, np.arange(count)):
        raise ValueError("check_mirror needs replicates 0..n-1")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--draw-census", str(count),
         "--seed", str(seed), "--large-batch-replicates", str(large_batch_replicates)],
        capture_output=True, text=True, check=False, env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"draw self-check subprocess failed:\n{proc.stderr}")
    cases = json.loads(proc.stdout.strip().splitlines()[-1])
    workload = cases["workload"]
    problems = []
    if (workload["final_cells"] != result.final_cells.tolist()
            or workload["compartment_steps"] != result.compartment_steps.tolist()):
        problems.append("the engine run as Python does not reproduce the compiled engine, so the "
                        "counts below are not the compiled engine's")
    for case, counts in cases.items():
        if counts["states"] != sum(counts["compartment_steps"]):
            problems.append(f"{case}: the kernel counts {sum(counts['compartment_steps']):,} "
                            "compartment-steps, the compartments live at the start of _advance "
                            f"{counts['states']:,}")
        if counts["mirror_own"] != counts["mirror"]:
            problems.append(f"{case}: _rng_only_block counts {counts['mirror_own']} draws but "
                            f"makes {counts['mirror']}")
        for kind, e, m, tolerance in zip(DRAW_KINDS, counts["engine"], counts["mirror"],
                                         MIRROR_TOLERANCE, strict=True):
            if abs(m - e) > tolerance * max(e, 1):
                problems.append(f"{case}: {kind} draws: engine {e:,}, RNG-only kernel {m:,} "
                                f"(more than {tolerance:.0%} apart)")
        engine_means = mean_parameters(counts["engine"], counts["engine_sums"])
        mirror_means = mean_parameters(counts["mirror"], counts["mirror_sums"])
        for (label, _, _), e, m, tolerance in zip(PARAMETERS, engine_means, mirror_means,
                                                  PARAMETER_TOLERANCE, strict=True):
            if not (abs(m - e) <= tolerance * abs(e) or (math.isnan(e) and math.isnan(m))):
                problems.append(f"{case}: mean {label}: engine {e:.6g}, RNG-only kernel {m:.6g} "
                                f"(more than {tolerance:.0%} apart)")
    if problems:
        raise SystemExit(
            "draw self-check FAILED: the RNG-only kernel no longer mirrors kernel._advance; "
            "update _rng_only_block / _switch_draws / draw_tables.\n  " + "\n  ".join(problems)
        )
    return MirrorCheck(count, workload["states"], np.array(workload["engine"]),
                       np.array(workload["mirror"]),
                       mean_parameters(workload["engine"], workload["engine_sums"]),
                       mean_parameters(workload["mirror"], workload["mirror_sums"]))


# ======================================================================= sections 1+2: workload


@dataclass
class WorkloadTiming:
    threads: int
    engine_seconds: float = 0.0
    rng_seconds: float = 0.0
    engine_cpu_seconds: float = 0.0  # process CPU time (all threads) during the engine runs
    rng_cpu_seconds: float = 0.0
    math_seconds: float = 0.0  # draws + the engine's per-compartment math (breakdown only)
    reruns: int = 0  # replicates rerun by run_block because their trajectory overflowed


@dataclass
class WorkloadCounts:
    exact_steps: int = 0  # the engine's: sum of BlockResult.compartment_steps
    trajectory_steps: int = 0  # the RNG-only kernel's: sum of the trajectory mix's steps
    draws: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4, np.int64))


def warm_up_workload(model: CompiledModel, seed: int, check_replicates: int
                     ) -> runner.BlockResult:
    """Compile everything sections 1-2 call; returns the engine's run of the check replicates."""
    reps = np.arange(check_replicates, dtype=np.int64)
    result = runner.run_block(model, seed, reps)
    mix = trajectory_mix(model, result)
    rng_only(model, generators_for(seed, reps), mix)
    draws_and_math(model, generators_for(seed, reps), mix, genotype_cache(model, mix.types[:, 0]))
    return result


def run_workload(model: CompiledModel, seed: int, replicates: int, thread_counts: list[int],
                 block: int, console) -> tuple[list[WorkloadTiming], WorkloadCounts]:
    """Time the engine and the RNG-only kernel block by block, on every thread count.

    Per block of ``block`` replicates: the engine on each thread count
    (timed: ``runner.run_block``, i.e. streams, buffers, kernel and any overflow rerun, as a
    run pays them), then the untimed draw mix, then the RNG-only kernel on each thread count
    (timed: streams + kernel) and the draws + math kernel on the first. Interleaving the
    measurements block by block makes them share the same machine conditions. Results must
    be identical on every thread count (checked).
    """
    if model.kernel.carrying_capacity_cells < math.inf:
        raise SystemExit("the RNG-only tables assume no carrying capacity (rates fixed per type)")
    if len(model.schedule_names) != 1 or model.drug_names:
        raise SystemExit("the RNG-only tables assume one schedule and no drugs")
    counts = WorkloadCounts()
    timings = {t: WorkloadTiming(threads=t) for t in thread_counts}
    # The trajectory rows run_block reserves per replicate before it reruns one (runner._run_kernel).
    reserved = runner._num_records(model) * min(runner.INITIAL_ROWS_PER_RECORD,
                                                runner._max_compartments(model))
    for start in range(0, replicates, block):
        reps = np.arange(start, min(replicates, start + block), dtype=np.int64)
        result = None
        for threads in thread_counts:
            with numba_threads(threads):
                began, began_cpu = time.perf_counter(), time.process_time()
                this = runner.run_block(model, seed, reps)
                timings[threads].engine_seconds += time.perf_counter() - began
                timings[threads].engine_cpu_seconds += time.process_time() - began_cpu
            timings[threads].reruns += int(np.count_nonzero(this.trajectory_rows > reserved))
            if result is None:
                result = this
            elif not (np.array_equal(result.final_cells, this.final_cells)
                      and np.array_equal(result.compartment_steps, this.compartment_steps)):
                raise SystemExit(f"{threads} threads gave other results than {thread_counts[0]}")
            del this
        counts.exact_steps += int(result.compartment_steps.sum())
        mix = trajectory_mix(model, result)  # untimed
        cache = genotype_cache(model, mix.types[:, 0])
        counts.trajectory_steps += int(mix.steps.sum())
        del result

        for threads in thread_counts:  # timed: streams built as the runner builds them + kernel
            with numba_threads(threads):
                began, began_cpu = time.perf_counter(), time.process_time()
                draws = rng_only(model, generators_for(seed, reps), mix)
                timings[threads].rng_seconds += time.perf_counter() - began
                timings[threads].rng_cpu_seconds += time.process_time() - began_cpu
                if threads == thread_counts[0]:  # the breakdown is for the first thread count
                    began = time.perf_counter()
                    draws_and_math(model, generators_for(seed, reps), mix, cache)
                    timings[threads].math_seconds += time.perf_counter() - began
        counts.draws += draws.sum(axis=0)
        console.log(f"workload: {int(reps[-1]) + 1:,}/{replicates:,} replicates; " + "; ".join(
            f"{t} thr: engine {timings[t].engine_seconds:.1f} s, RNG-only "
            f"{timings[t].rng_seconds:.1f} s" for t in thread_counts))
    return [timings[t] for t in thread_counts], counts


def per_replicate_overhead(model: CompiledModel, seed: int, replicates: int) -> float:
    """Seconds per replicate of everything but the steps: the workload cut to one step
    (streams, typed list, buffers, seeding the tumour, one step, trajectory rows)."""
    one_step = dataclasses.replace(model, horizon_days=model.dt_days)
    runner.run_block(one_step, seed, range(WARMUP_REPLICATES))
    seconds, _ = best_of(3, lambda: runner.run_block(one_step, seed, range(replicates)))
    return seconds / replicates


# ===================================================================== section 6: therapy


@dataclass
class TherapyRun:
    """One model of the therapy section, timed block by block."""

    label: str
    model: CompiledModel
    seconds: float = 0.0  # wall, iterate_blocks (as a run pays it)
    cpu_seconds: float = 0.0
    day_zero_seconds: float = 0.0  # wall, the day-0 tumours alone (_pregrowth_block)
    steps: int = 0  # exact compartment-steps (after day 0)
    rows: int = 0  # (replicate, schedule) pairs
    replicates: int = 0
    blocks: int = 0
    step_days: float = 0.0  # sum over rows of the days simulated after day 0
    status: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3, np.int64))

    @property
    def schedules(self) -> int:
        return len(self.model.schedule_names)

    @property
    def rate(self) -> float:
        """Compartment-steps per second of the whole run's wall time."""
        return self.steps / self.seconds

    @property
    def rate_after_day_zero(self) -> float:
        """Compartment-steps per second of the time after day 0 (wall minus the day-0 build)."""
        return self.steps / max(self.seconds - self.day_zero_seconds, 1e-12)


def without_drugs(path: Path) -> CompiledModel:
    """The config at ``path`` with its drugs removed: no drugs, no schedules (so the one
    implicit ``untreated`` schedule), no IC50 shifts. Everything else, pre-growth included,
    is unchanged; drug-induced switching stays but is inert (signal 1 without drugs)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.pop("drugs", None)
    data.pop("schedules", None)
    for alteration in (data.get("alterations") or {}).values():
        alteration.pop("ic50_fold", None)
    return compile_model(config_from_mapping(data))


def therapy_models() -> list[tuple[str, CompiledModel]]:
    """The therapy section's three models, all on a THERAPY_HORIZON_DAYS horizon."""
    models = [
        (f"treated {THERAPY_CONFIG.stem}", compile_model(load_config(THERAPY_CONFIG))),
        (f"(b) {THERAPY_CONFIG.stem}, no drugs", without_drugs(THERAPY_CONFIG)),
        (f"(a) {WORKLOAD.stem}", compile_model(load_config(WORKLOAD))),
    ]
    return [(label, dataclasses.replace(m, horizon_days=THERAPY_HORIZON_DAYS))
            for label, m in models]


def day_zero_build(model: CompiledModel, seed: int, reps: np.ndarray) -> tuple[np.ndarray, ...]:
    """Build the day-0 tumours of ``reps`` as the engine does (streams included)."""
    generators = day_zero_generators_for(seed, reps)
    days = np.full(len(reps), np.nan)
    cells = np.zeros(len(reps), np.int64)
    _pregrowth_block(generators, model.kernel, model.initial_cells,
                     model.initial_phenotype_fraction, model.initial_alteration_fraction,
                     model.grow_from_single_cell_to, model.dt_days,
                     runner._max_compartments(model), len(model.mechanism_names), days, cells)
    return days, cells


def run_therapy(seed: int, replicates: int, block: int, threads: int, console
                ) -> list[TherapyRun]:
    """Time the treated config against its drug-free version and the untreated workload.

    All three stream the same replicates 0..n-1 through ``runner.iterate_blocks`` (blocks of
    ``block`` replicates, i.e. ``block`` x S rows for S schedules), advanced in lockstep so
    that the three share the machine's conditions block by block; after each block, the
    day-0 tumours of its replicates are built again alone (``_pregrowth_block``: workspace +
    ``kernel.build_day_zero``, day-0 streams included), which times pre-growth. Checked: the
    day-0 build reproduces the engine's days to diagnosis, and the treated config and its
    drug-free version start every replicate from the same day-0 tumour.
    """
    runs = [TherapyRun(label, model) for label, model in therapy_models()]
    with numba_threads(threads):  # warm up (the kernels load from numba's cache)
        for run in runs:
            runner.run_block(run.model, seed, [0])
            day_zero_build(run.model, seed, np.zeros(1, np.int64))
    iterators = [runner.iterate_blocks(run.model, seed, range(replicates),
                                       block_size=block * run.schedules) for run in runs]
    for start in range(0, replicates, block):
        reps = np.arange(start, min(replicates, start + block), dtype=np.int64)
        day_zero_cells = {}
        for run, blocks in zip(runs, iterators, strict=True):
            with numba_threads(threads):
                began, began_cpu = time.perf_counter(), time.process_time()
                result = next(blocks)
                run.seconds += time.perf_counter() - began
                run.cpu_seconds += time.process_time() - began_cpu
                began = time.perf_counter()
                days, cells = day_zero_build(run.model, seed, reps)
                run.day_zero_seconds += time.perf_counter() - began
            first = result.schedules == result.schedules[0]
            if not (np.array_equal(result.replicates[first], reps)
                    and np.array_equal(days, result.days_to_diagnosis[first], equal_nan=True)):
                raise SystemExit(f"{run.label}: the day-0 build does not reproduce the engine's")
            day_zero_cells[run.label] = cells
            run.steps += int(result.compartment_steps.sum())
            run.rows += len(result.replicates)
            run.replicates += len(reps)
            run.blocks += 1
            stop = np.where(np.isnan(result.stop_day), run.model.horizon_days, result.stop_day)
            run.step_days += float(stop.sum())
            run.status += np.bincount(np.minimum(result.status, 2), minlength=3)[:3]
            del result
        treated, drug_free = runs[0].label, runs[1].label
        if not np.array_equal(day_zero_cells[treated], day_zero_cells[drug_free]):
            raise SystemExit("the treated config and its drug-free version start from "
                             "different day-0 tumours")
        console.log(f"therapy: {int(reps[-1]) + 1:,}/{replicates:,} replicates; " + "; ".join(
            f"{run.label} {run.seconds:.1f} s" for run in runs))
    return runs


# ================================================================================ section 5: RSS


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


def rss_child(replicates: int, threads: int, seed: int, block: int | None) -> None:
    """Subprocess body: stream ``replicates`` through iterate_blocks, discard, report peak RSS."""
    model = compile_model(load_config(WORKLOAD))
    runner.set_threads(threads)
    runner.run_block(model, seed, range(WARMUP_REPLICATES))
    baseline = peak_rss_mb()
    began = time.perf_counter()
    blocks = 0
    for result in runner.iterate_blocks(model, seed, range(replicates), block_size=block):
        blocks += 1
        del result
    print(json.dumps({"replicates": replicates, "blocks": blocks, "baseline_mb": baseline,
                      "block": block or model.block_replicates,
                      "peak_mb": peak_rss_mb(), "seconds": time.perf_counter() - began}))


def run_rss_children(replicate_counts: list[int], threads: int, seed: int,
                     block: int | None) -> list[dict]:
    out = []
    for count in replicate_counts:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(count),
             "--threads", str(threads), "--seed", str(seed)]
            + (["--block", str(block)] if block else []),
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"RSS subprocess failed:\n{proc.stderr}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


# ================================================================ sections 3+4: small exact models


def small_model(initial_cells: int, dt_days: float = 1.0, mutation_switching: bool = False
                ) -> CompiledModel:
    """Linear birth-death b = 1, d = 0.5 per day for 10 days; optionally with 2 phenotypes
    (switching both ways) and 2 alterations (mutation)."""
    config = {
        "name": "bench-birth-death",
        "seed": 1,
        "time": {"horizon_days": 10.0, "dt_days": dt_days, "record_every_days": 10.0},
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


def best_of(repeats: int, run):
    """Run ``run()`` ``repeats`` times; return (shortest wall time, its last output).

    The small-model timings are fractions of a second, so one-off hiccups (page faults of a
    fresh buffer, another process on the core) would dominate a single measurement.
    """
    best = math.inf
    output = None
    for _ in range(repeats):
        began = time.perf_counter()
        output = run()
        best = min(best, time.perf_counter() - began)
    return best, output


def engine_final_sizes(model: CompiledModel, seed: int, replicates: int, repeats: int
                       ) -> tuple[float, np.ndarray]:
    """Wall time and final sizes of ``replicates`` engine replicates (current thread count)."""
    runner.run_block(model, seed, range(WARMUP_REPLICATES))  # compile / warm caches
    return best_of(repeats, lambda: np.concatenate(
        [b.final_cells for b in runner.iterate_blocks(model, seed, range(replicates))]
    ))


def reference_final_sizes(model: CompiledModel, seed: int, replicates: int, repeats: int
                          ) -> tuple[float, np.ndarray]:
    """Wall time and final sizes of the reference engine (``simulate_reference_many``)."""
    end = [0.0, model.horizon_days]
    reference_engine.simulate_reference_many(model, seed, WARMUP_REPLICATES, end)
    return best_of(repeats, lambda: np.array(
        [r.final_cells for r in reference_engine.simulate_reference_many(
            model, seed, replicates, end)], dtype=np.int64,
    ))


def exact_mean_final_size(model: CompiledModel) -> float | None:
    """E[N(T)] from the mean ODE dE[n]/dt = n A (mutants share their parent's rates here)."""
    try:
        from scipy.linalg import expm

        from clonesim.model.analytic import mean_matrix
    except ImportError:
        return None
    start = np.zeros(model.num_phenotypes)
    start[0] = model.initial_cells
    return float((start @ expm(mean_matrix(model) * model.horizon_days)).sum())


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
    exact_mean: float | None
    z: float | None
    ks_p: float | None
    note: str = ""

    @property
    def speedup(self) -> float | None:
        if self.other_seconds is None:
            return None
        return self.other_seconds / self.engine_seconds

    @property
    def agree(self) -> bool:
        return (self.ks_p is None or self.ks_p > 0.001) and abs(self.z or 0.0) < 4.0


def reference_comparisons(seed: int, replicates: dict[str, int], repeats: int, console
                          ) -> list[Comparison]:
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
        engine_seconds, engine_final = engine_final_sizes(model, seed, count, repeats)
        exact = exact_mean_final_size(model)
        # The reference does not depend on dt: simulate each (cells, mutation) model once.
        key = (kwargs.get("initial_cells"), kwargs.get("mutation_switching", False), count)
        if key not in reference_cache:
            reference_cache[key] = reference_final_sizes(model, seed, count, repeats)
        ref_seconds, ref_final = reference_cache[key]
        z, p = compare_samples(engine_final, ref_final)
        out.append(Comparison(label, "reference", count, engine_seconds, ref_seconds,
                              float(engine_final.mean()), float(ref_final.mean()), exact, z, p))
        console.log(f"reference: {label}: engine {engine_seconds:.3f} s, "
                    f"reference {ref_seconds:.3f} s")
    return out


def gillespy2_model(gillespy2, cells: int):
    """Species N; birth N -> 2N at propensity b N, death N -> 0 at d N; 10 days, daily output."""
    model = gillespy2.Model(name="birth_death")
    b = gillespy2.Parameter(name="b", expression=1.0)
    d = gillespy2.Parameter(name="d", expression=0.5)
    model.add_parameter([b, d])
    n = gillespy2.Species(name="N", initial_value=cells, mode="discrete")
    model.add_species(n)
    model.add_reaction(gillespy2.Reaction(name="birth", reactants={n: 1}, products={n: 2}, rate=b))
    model.add_reaction(gillespy2.Reaction(name="death", reactants={n: 1}, products={}, rate=d))
    model.timespan(np.linspace(0.0, 10.0, 11))
    return model


def gillespy2_comparisons(seed: int, replicates: dict[str, int], repeats: int, console
                          ) -> list[Comparison]:
    """GillesPy2's SSA on the same birth-death model, same trajectories, same end time."""
    cases = [("1 cell, b=1 d=0.5, 10 d", 1, replicates["one_cell"]),
             ("100 cells, b=1 d=0.5, 10 d", 100, replicates["hundred"])]
    # GillesPy2 finds SCons on PATH, else runs `<resolved sys.executable> -m SCons`, which in a
    # venv resolves to the base interpreter (without SCons): put this venv's bin/ first.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    try:
        import gillespy2
    except ImportError as error:
        return [Comparison(label, "GillesPy2", count, math.nan, None, math.nan, None, None,
                           None, None, f"unavailable: {error}") for label, _, count in cases]
    out = []
    for label, cells, count in cases:
        model = gillespy2_model(gillespy2, cells)
        solver_name = "SSACSolver (C++)"
        trajectories = count
        note = ""
        began = time.perf_counter()
        try:
            solver = gillespy2.SSACSolver(model=model)  # builds the C++ simulation
            solver.run(number_of_trajectories=2, seed=seed)
        except Exception as error:  # noqa: BLE001 - any build failure means: fall back
            solver_name = "NumPySSASolver"
            solver = gillespy2.NumPySSASolver(model=model)
            trajectories = min(count, 200)
            note = f"C++ solver failed ({type(error).__name__}); NumPy SSA on {trajectories}"
        compile_seconds = time.perf_counter() - began
        other_seconds, results = best_of(
            repeats, lambda s=solver, n=trajectories: s.run(number_of_trajectories=n, seed=seed)
        )
        finals = np.array([trajectory["N"][-1] for trajectory in results], dtype=np.int64)
        engine_model = small_model(initial_cells=cells)
        engine_seconds, engine_final = engine_final_sizes(engine_model, seed, trajectories,
                                                          repeats)
        z, p = compare_samples(engine_final, finals)
        note = note or f"{solver_name}; build {compile_seconds:.1f} s excluded"
        out.append(Comparison(label, f"GillesPy2 {gillespy2.__version__}", trajectories,
                              engine_seconds, other_seconds, float(engine_final.mean()),
                              float(finals.mean()), exact_mean_final_size(engine_model), z, p,
                              note))
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


@dataclass
class Sizes:
    """How big each section runs (full, or ``--quick``: everything small, a smoke test)."""

    replicates: int  # sections 1-2 workload replicates
    block: int  # sections 1-2 replicates per block
    check_replicates: int  # draw self-check: workload replicates run as Python
    large_batch_replicates: int  # draw self-check: "large batches" replicates
    therapy_replicates: int
    therapy_block: int | None  # replicates per block (None: the treated config's default)
    small: dict[str, int]  # sections 3-4 replicates
    repeats: int
    rss_counts: list[int]
    rss_block: int | None  # replicates per block in the RSS subprocesses (None: default)
    overhead_replicates: int


def sizes(quick: bool, replicates: int | None, therapy_replicates: int | None) -> Sizes:
    if quick:
        return Sizes(replicates=replicates or 64, block=32, check_replicates=2,
                     large_batch_replicates=1, therapy_replicates=therapy_replicates or 8,
                     therapy_block=4, small={"one_cell": 200, "hundred": 20}, repeats=2,
                     rss_counts=[40, 100], rss_block=20, overhead_replicates=64)
    # At least 2 blocks in both RSS runs, so that the comparison is not 1 block against many.
    return Sizes(replicates=replicates or 10_000, block=0, check_replicates=CHECK_REPLICATES,
                 large_batch_replicates=CHECK_REPLICATES // 4,
                 therapy_replicates=therapy_replicates or 2_000, therapy_block=None,
                 small={"one_cell": 10_000, "hundred": 2_000}, repeats=3,
                 rss_counts=[2_000, 10_000], rss_block=None, overhead_replicates=2_000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=None,
                        help="workload replicates (default 10,000; 64 with --quick)")
    parser.add_argument("--therapy-replicates", type=int, default=None,
                        help="therapy section replicates (default 2,000; 8 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="everything small: a smoke test, not a measurement")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--skip-gillespy2", action="store_true", help="leave out GillesPy2")
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--block", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--draw-census", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--large-batch-replicates", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_child is not None:
        rss_child(args.rss_child, args.threads or numba.config.NUMBA_NUM_THREADS, args.seed,
                  args.block)
        return
    if args.draw_census is not None:
        draw_census(args.draw_census, args.seed, args.large_batch_replicates)
        return

    from rich.console import Console

    console = Console(stderr=True, width=120)
    out = Console(width=150)
    size = sizes(args.quick, args.replicates, args.therapy_replicates)
    max_threads = numba.config.NUMBA_NUM_THREADS
    thread_counts = sorted({1, min(2, max_threads)})
    began_all = time.perf_counter()
    load_before = os.getloadavg()[0]

    model = compile_model(load_config(WORKLOAD))
    block = size.block or model.block_replicates
    console.log("warming up (numba compile excluded from every timing)")
    with numba_threads(max_threads):
        check_result = warm_up_workload(model, args.seed, size.check_replicates)
    console.log(f"draw self-check on {size.check_replicates} replicates (engine and RNG-only "
                "as Python)")
    check = check_mirror(model, args.seed, check_result, size.large_batch_replicates)
    del check_result

    timings, counts = run_workload(model, args.seed, size.replicates, thread_counts, block,
                                   console)
    with numba_threads(1):
        overhead = per_replicate_overhead(model, args.seed,
                                          min(size.replicates, size.overhead_replicates))
    rss_main = peak_rss_mb()

    therapy_threads = thread_counts[-1]
    treated = compile_model(load_config(THERAPY_CONFIG))
    # iterate_blocks' own block: engine.block_replicates rows, i.e. that / S replicates.
    therapy_block = size.therapy_block or max(1, treated.block_replicates
                                              // len(treated.schedule_names))
    console.log(f"therapy: {size.therapy_replicates:,} replicates on {therapy_threads} threads")
    therapy = run_therapy(args.seed, size.therapy_replicates, therapy_block, therapy_threads,
                          console)

    console.log(f"peak RSS: subprocesses streaming {size.rss_counts} replicates")
    rss = run_rss_children(size.rss_counts, max_threads, args.seed, size.rss_block)

    with numba_threads(1):
        refs = reference_comparisons(args.seed, size.small, size.repeats, console)
        gill = ([] if args.skip_gillespy2
                else gillespy2_comparisons(args.seed, size.small, size.repeats, console))
    report(out, args, model, size.replicates, timings, counts, check, overhead, rss_main, rss,
           refs + gill, therapy, therapy_threads, began_all, load_before)


def report(out, args, model, replicates, timings, counts, check, overhead, rss_main, rss,
           comparisons, therapy, therapy_threads, began_all, load_before) -> None:
    """Print the tables, then plain-text lines to paste into a README."""
    from rich.table import Table

    steps = counts.exact_steps
    rng_steps = counts.trajectory_steps
    lines: list[str] = []

    head = Table(title=f"clonesim engine benchmark: workload {WORKLOAD.relative_to(ROOT)}")
    head.add_column("item")
    head.add_column("value", justify="right")
    head.add_row("replicates x steps (dt = 1 day)", f"{replicates:,} x {model.num_steps:,}")
    head.add_row("compartment-steps, exact (BlockResult.compartment_steps)", f"{steps:,}")
    head.add_row("compartment-steps, trajectory estimate (RNG-only mix)",
                 f"{rng_steps:,} ({rng_steps / steps - 1:+.2%})")
    head.add_row("live compartments per step, mean", f"{steps / replicates / model.num_steps:.2f}")
    head.add_row("draws per compartment-step: binomial / neg. binomial / Poisson / uniform",
                 " / ".join(f"{x:.2f}" for x in counts.draws / rng_steps))
    head.add_row(f"  self-check, {check.replicates} replicates' exact states: engine",
                 " / ".join(f"{x:.3f}" for x in check.engine / check.compartment_steps))
    head.add_row("  same states, RNG-only kernel",
                 " / ".join(f"{x:.3f}" for x in check.mirror / check.compartment_steps))
    head.add_row("  mean draw parameters, engine: " + " / ".join(p[0] for p in PARAMETERS),
                 " / ".join(f"{x:.4g}" for x in check.engine_parameters))
    head.add_row("  same states, RNG-only kernel",
                 " / ".join(f"{x:.4g}" for x in check.mirror_parameters))
    out.print(head)
    lines.append(
        f"draw self-check ({check.replicates} replicates, {check.compartment_steps:,} "
        "compartment-steps): draws per compartment-step, binomial / neg. binomial / Poisson / "
        "uniform: engine " + " / ".join(f"{x:.3f}" for x in check.engine / check.compartment_steps)
        + ", RNG-only kernel "
        + " / ".join(f"{x:.3f}" for x in check.mirror / check.compartment_steps)
    )

    table = Table(title="1-2. Engine vs its pure random-number cost "
                        "(same draws, same parameter sizes, same per-replicate streams)")
    for col in ("threads", "engine wall", "comp-steps/s", "core-ns/step", "CPU use",
                "RNG-only wall", "RNG steps/s", "RNG core-ns/step", "CPU use ",
                "engine / RNG", "reruns"):
        table.add_column(col, justify="right")
    for t in timings:
        engine_rate = steps / t.engine_seconds
        rng_rate = rng_steps / t.rng_seconds
        ratio = rng_rate / engine_rate
        table.add_row(
            str(t.threads), f"{t.engine_seconds:.2f} s", fmt_rate(engine_rate),
            f"{1e9 * t.threads / engine_rate:.0f}",
            f"{t.engine_cpu_seconds / t.engine_seconds / t.threads:.0%}",
            f"{t.rng_seconds:.2f} s", fmt_rate(rng_rate), f"{1e9 * t.threads / rng_rate:.0f}",
            f"{t.rng_cpu_seconds / t.rng_seconds / t.threads:.0%}", f"{ratio:.2f}x",
            str(t.reruns),
        )
        lines.append(
            f"engine, {t.threads} thread{'s' if t.threads > 1 else ''}: {replicates:,} "
            f"replicates x {model.num_steps:,} steps = {steps / 1e6:.1f} M compartment-steps "
            f"(exact count) in {t.engine_seconds:.1f} s = {engine_rate / 1e6:.2f} M/s; the "
            f"same draws alone {steps / rng_rate:.1f} s; engine / RNG-only = {ratio:.2f}x "
            f"({'within' if ratio <= 2.0 else 'above'} the 2x target)"
        )
    if len(timings) > 1:
        lines.append(f"parallel speedup {timings[0].threads} -> {timings[-1].threads} threads: "
                     f"{timings[0].engine_seconds / timings[-1].engine_seconds:.2f}x")
    out.print(table)
    out.print("core-ns/step = wall x threads / compartment-steps. CPU use = process CPU time / "
              "(wall x threads); well below 100% means other processes shared the cores. "
              "reruns = replicates rerun because their trajectory overflowed its buffer.",
              highlight=False)

    one = timings[0]
    engine_ns = 1e9 * one.engine_seconds * one.threads / steps
    draws_ns = 1e9 * one.rng_seconds * one.threads / rng_steps
    math_ns = 1e9 * one.math_seconds * one.threads / rng_steps - draws_ns
    setup_ns = 1e9 * overhead * replicates / steps
    rest_ns = engine_ns - draws_ns - math_ns - setup_ns
    parts = Table(title=f"Where the engine's time goes ({one.threads} thread), "
                        "ns per compartment-step")
    for col in ("part", "ns", "share", "measured as"):
        parts.add_column(col, justify="left" if col in ("part", "measured as") else "right")
    for name, ns, how in (
        ("random draws", draws_ns, "RNG-only kernel"),
        ("per-compartment math", math_ns,
         "same draws through the genotype cache lookups and rates (as _advance writes them) / "
         "birth_death_step / integrated_cells / multinomial_split / _grow_new_cells, minus "
         "RNG-only"),
        ("per-replicate setup", setup_ns,
         f"workload cut to 1 step: {overhead * 1e6:.0f} us per replicate"),
        ("compartment bookkeeping", rest_ns,
         "the rest: switching loops and arrivals, find/add, totals, compaction, records, "
         "run_schedule's per-step exposure and events"),
        ("engine", engine_ns, "section 1"),
    ):
        parts.add_row(name, f"{ns:.0f}", f"{ns / engine_ns:.0%}", how)
    out.print(parts)
    lines.append(
        f"engine time per compartment-step ({one.threads} thread): {engine_ns:.0f} ns = "
        f"draws {draws_ns:.0f} + per-compartment math {math_ns:.0f} + bookkeeping "
        f"{rest_ns:.0f} + per-replicate setup {setup_ns:.0f}"
    )

    table3 = Table(title=f"3. Therapy: {THERAPY_CONFIG.relative_to(ROOT)}, every schedule, "
                         f"{therapy[0].replicates:,} replicates, "
                         f"{therapy[0].model.horizon_days / 365:.0f}-year horizon, "
                         f"{therapy_threads} threads, side by side")
    for col in ("run", "schedules", "rows", "compartment-steps", "live comp. per step", "wall",
                "CPU use", "comp-steps/s", "day-0 build", "comp-steps/s after day 0",
                "died / extinct / alive"):
        table3.add_column(col, justify="left" if col == "run" else "right")
    for run in therapy:
        table3.add_row(
            run.label, str(run.schedules), f"{run.rows:,}", f"{run.steps:,}",
            f"{run.steps / max(run.step_days / run.model.dt_days, 1):.2f}",
            f"{run.seconds:.2f} s", f"{run.cpu_seconds / run.seconds / therapy_threads:.0%}",
            fmt_rate(run.rate), f"{run.day_zero_seconds:.2f} s "
            f"({run.day_zero_seconds / run.seconds:.0%})", fmt_rate(run.rate_after_day_zero),
            " / ".join(str(x) for x in run.status[[2, 1, 0]]),
        )
    out.print(table3)
    out.print("rows = (replicate, schedule) pairs, each a schedule's run from the replicate's "
              "day-0 tumour. day-0 build = the replicates' day-0 tumours built again alone "
              "(pre-growth from one cell for the EGFR config, seeding for the workload), timed "
              "right after each block: its share of the run's wall time. comp-steps/s after day "
              "0 = compartment-steps / (wall - day-0 build). A row stops when its tumour dies "
              "(lethal burden) or goes extinct; live comp. per step = compartment-steps / steps "
              "run. Untreated, the EGFR tumour dies within a year, so (b)'s wall time is mostly "
              "pre-growth: compare the rates after day 0. All three run the same replicates in "
              "lockstep blocks of the treated config's size.", highlight=False)
    treated = therapy[0]
    per_replicate = treated.seconds / treated.replicates
    lines.append(
        f"therapy ({THERAPY_CONFIG.name}, {treated.schedules} schedules, {treated.replicates:,} "
        f"replicates, {treated.model.horizon_days:.0f} days, {therapy_threads} threads): "
        f"{treated.seconds:.1f} s wall ({per_replicate * 2_000:.0f} s per 2,000 replicates at "
        f"this rate; target < 120 s), {treated.steps / 1e6:.1f} M compartment-steps = "
        f"{treated.rate / 1e6:.2f} M/s ({treated.rate_after_day_zero / 1e6:.2f} M/s after day "
        f"0); pre-growth (day-0 build) {treated.day_zero_seconds / treated.seconds:.1%} of the "
        "wall time"
    )
    for untreated in therapy[1:]:
        ratio = untreated.rate / treated.rate
        ratio_after = untreated.rate_after_day_zero / treated.rate_after_day_zero
        lines.append(
            f"compartment-steps/s untreated / treated, {untreated.label}: {ratio:.2f}x on the "
            f"whole wall time, {ratio_after:.2f}x after day 0 "
            f"({'within' if ratio_after <= 1.5 else 'above'} the 1.5x target); untreated "
            f"{untreated.rate / 1e6:.2f} M/s ({untreated.rate_after_day_zero / 1e6:.2f} M/s "
            f"after day 0), pre-growth {untreated.day_zero_seconds / untreated.seconds:.1%} of "
            "its wall time"
        )

    small_table = Table(title="4-5. Same model, same replicates, same statistic (final size); "
                              "1 thread; best of repeated runs")
    for col in ("model", "vs", "replicates", "engine", "other", "speedup",
                "mean: engine / other / exact", "z", "KS p", "note"):
        small_table.add_column(col, justify="left" if col in ("model", "vs", "note")
                               else "right")
    for c in comparisons:
        exact = f"{c.exact_mean:,.0f}" if c.exact_mean is not None else "?"
        if c.speedup is None:
            small_table.add_row(c.label, c.other, f"{c.replicates:,}", "", "n/a", "n/a", "",
                                "", "", c.note)
            lines.append(f"vs {c.other}, {c.label}: unavailable ({c.note})")
            continue
        small_table.add_row(
            c.label, c.other, f"{c.replicates:,}", f"{c.engine_seconds:.3f} s",
            f"{c.other_seconds:.3f} s", f"{c.speedup:.1f}x",
            f"{c.engine_mean:,.0f} / {c.other_mean:,.0f} / {exact}", f"{c.z:+.1f}",
            f"{c.ks_p:.2g}" if c.ks_p is not None else "", c.note,
        )
        lines.append(
            f"vs {c.other}, {c.label}: {c.replicates:,} replicates in {c.engine_seconds:.3f} s "
            f"vs {c.other_seconds:.3f} s = {c.speedup:.1f}x "
            f"({'final sizes agree' if c.agree else 'final sizes DIFFER'}: mean "
            f"{c.engine_mean:,.0f} vs {c.other_mean:,.0f}, exact {exact}"
            + (f", KS p {c.ks_p:.2g}" if c.ks_p is not None else "") + ")"
            + (f" [{c.note}]" if c.note else "")
        )
    out.print(small_table)
    out.print("z = (engine mean - other mean) / its standard error; KS p = two-sample "
              "Kolmogorov-Smirnov on the final sizes; exact = E[N(10 d)] from the mean ODE.",
              highlight=False)

    mem = Table(title="6. Peak RSS (VmHWM of the process; ru_maxrss where /proc is missing)")
    for col in ("process", "replicates", "blocks", "after warm-up", "peak", "wall"):
        mem.add_column(col, justify="left" if col == "process" else "right")
    mem.add_row("this benchmark, after sections 1-2", f"{replicates:,}", "", "",
                f"{rss_main:.0f} MiB", "")
    for r in rss:
        mem.add_row("fresh subprocess: iterate_blocks, blocks discarded",
                    f"{r['replicates']:,}", str(r["blocks"]), f"{r['baseline_mb']:.0f} MiB",
                    f"{r['peak_mb']:.0f} MiB", f"{r['seconds']:.1f} s")
    out.print(mem)
    size_note = f"{rss[0]['block']:,}" if rss else ""
    lines.append(
        "peak RSS streaming the workload through iterate_blocks (blocks of "
        f"{size_note}): "
        + ", ".join(f"{r['peak_mb']:.0f} MiB for {r['replicates']:,} replicates" for r in rss)
    )

    out.print()
    mode = "quick: toy sizes, a smoke test, not a measurement" if args.quick else "full"
    out.print(f"clonesim benchmark ({mode}): {platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}, numba "
              f"{numba.__version__}, numpy {np.__version__}, {source_version()}; load average "
              f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after; "
              f"{time.perf_counter() - began_all:.0f} s in all",
              markup=False, highlight=False, soft_wrap=True)
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
