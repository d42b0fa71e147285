#!/usr/bin/env python
"""Benchmark the clone engine, side by side, in one run.

Sections (all timings wall-clock; numba compile time excluded by warming every kernel up first):

1. Engine throughput on the shipped workload ``configs/untreated_growth.yaml``
   (1e9 cells, ~7 live compartments, 1,825 daily steps, mutation and switching on):
   N replicates (default 10,000; ``--quick`` 1,000) on 1 and on 2 numba threads, in
   compartment-steps per second.
2. The pure random-number limit: a numba kernel that makes only the draws the engine makes
   per compartment-step (same distributions, same parameter magnitudes, same per-replicate
   PCG64 Generators in a ``numba.typed.List`` indexed inside ``prange``, same thread count),
   and the ratio engine / RNG-only per compartment-step (the target: within 2x). A third
   kernel makes the same draws through the engine's own per-compartment functions, which
   splits the engine's time into draws, per-compartment math and bookkeeping.
3. Speedup over the exact Gillespie reference engine (``clonesim.engine.reference``) on
   small models, same replicates, same statistic (final size), both on 1 thread.
4. GillesPy2's exact SSA (C++ ``SSACSolver`` when it builds here, else its NumPy SSA) on
   the same small birth-death model; its one-off build is excluded.
5. Peak RSS: of this process after sections 1-2, and of fresh subprocesses that stream
   2,000 and 10,000 replicates through ``runner.iterate_blocks`` and discard the blocks.

Run:  /work/venv/bin/python scripts/benchmark.py [--quick] [--replicates N] [--skip-gillespy2]

Compartment-steps (the denominator of every per-step figure)
------------------------------------------------------------
The engine's count is exact: ``BlockResult.compartment_steps``, the compartments holding cells
at the start of each step's ``_advance``, summed over the steps. The RNG-only kernel replays,
per replicate, the draw mix of that replicate's own trajectory: each live row (genotype,
phenotype, cells) stands for the steps until the next record, with ``n`` held at the recorded
size and the draw parameters from per-type tables. That mix misses compartments born and
emptied between two records, so its step count (the "trajectory estimate") is a little
below the exact one; engine and RNG-only costs are compared per compartment-step, each over
its own count.

Before anything is timed, a self-check runs the engine and the RNG-only kernel as plain Python
(``NUMBA_DISABLE_JIT=1``, in a subprocess) on a few replicates with a Generator that counts
draws, the RNG-only kernel on the engine's exact compartment states; it stops the benchmark
when the two no longer make the same draws (see ``check_mirror``).
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
WARMUP_REPLICATES = 4
CHECK_REPLICATES = 8  # replicates of the workload in the draw self-check (~0.2 s each as Python)
DRAW_KINDS = ("binomial", "negative binomial", "Poisson", "uniform")


# =============================================================================== numba kernels


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


# The two kernels below MIRROR the draws of ``kernel._advance`` (via ``_switch``,
# ``birth_death_step``, ``multinomial_split`` and ``_grow_new_cells``): same distributions,
# same conditions, same order per compartment. If the engine's draws change, update them
# (and ``draw_tables``); ``check_mirror``, run at the start of every benchmark, counts the
# draws of both on the engine's own compartment states and stops the benchmark when they
# no longer match.


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


@njit(parallel=True)
def _draws_and_math_block(generators, model, offsets, row_cells, row_type, row_steps, dt_days,
                          type_geno, type_pheno, leave_probability, switch_targets,
                          switch_split, checksum):
    """The RNG-only kernel plus the engine's own per-compartment math, for a time breakdown.

    Same draw mix as ``_rng_only_block``, but the birth-death, mutation and mutant-growth
    parts go through the kernel's own functions (``compartment_rates``, ``birth_death_step``
    with its transition coefficients, ``integrated_cells``, ``multinomial_split``,
    ``_grow_new_cells``) exactly as ``_advance`` calls them. What the engine spends beyond
    this is compartment bookkeeping (the switching sub-steps' loops and arrivals, finding or
    adding compartments, arisal days, totals, compaction, trajectory rows) and per-replicate
    setup.
    """
    for i in prange(len(generators)):
        rng = generators[np.int64(i)]
        acc = np.int64(0)
        num_alterations = model.alteration_mutation_rate_per_division.shape[0]
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
                birth, death, mutation = kernel.compartment_rates(model, g, p, 1.0, 1.0)
                end = birth_death_step(rng, n, birth * (1.0 - mutation), death, dt_days)
                if mutation > 0.0 and birth > 0.0:
                    cell_days = integrated_cells(n, end, dt_days)
                    mutants = rng.poisson(birth * mutation * cell_days)
                    for a in range(num_alterations):
                        lacks = not (g >> a) & 1
                        weights[a] = model.alteration_mutation_rate_per_division[a] if lacks else 0.0
                    kernel.multinomial_split(rng, mutants, weights, counts)
                    for a in range(num_alterations):
                        if counts[a] > 0:
                            grown, _first = kernel._grow_new_cells(
                                rng, model, g | (np.int64(1) << a), p, 1.0, 1.0, counts[a], n, end,
                                dt_days,
                            )
                            acc += grown
                if leave > 0.0 and end > 0:
                    end, _made = _switch_draws(rng, end, leave, switch_targets, switch_split, t)
                acc += end
        checksum[i] = acc


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
        b, d, mutation = kernel.compartment_rates(km, np.int64(g), p, 1.0, 1.0)
        tables.alpha[t], tables.beta[t] = transition_coefficients(b * (1.0 - mutation), d, dt)
        if mutation > 0.0 and b > 0.0:
            tables.mutants_per_cell_day[t] = b * mutation
            targets = [a for a in range(num_alterations) if not (g >> a) & 1 and u[a] > 0.0]
            tables.mut_targets[t] = len(targets)
            remaining = mutation / km.phenotype_mutation_rate_multiplier[p]
            for j, a in enumerate(targets):
                tables.mut_split[t, j] = min(1.0, u[a] / remaining)
                remaining -= u[a]
                bm, dm, um = kernel.compartment_rates(km, np.int64(g | (1 << a)), p, 1.0, 1.0)
                tables.mut_alpha[t, j], tables.mut_beta[t, j] = transition_coefficients(
                    bm * (1.0 - um), dm, dt / 2
                )
    if km.has_switching:
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


def draws_and_math(model: CompiledModel, generators, mix: Mix) -> None:
    """Run the draws + per-compartment math kernel on a draw mix."""
    tables = mix.tables
    _draws_and_math_block(generators, model.kernel, mix.offsets, mix.cells, mix.row_type,
                          mix.steps, model.dt_days, mix.types[:, 0].copy(),
                          mix.types[:, 1].copy(), tables.leave_probability,
                          tables.switch_targets, tables.switch_split,
                          np.zeros(len(generators), np.int64))


# ================================================== self-check: does the mirror still match?


class CountingGenerator:
    """A Generator that counts its draws by DRAW_KINDS while ``counting`` is set (Python mode).

    Any other draw method fails: the RNG-only kernel would not mirror it either.
    """

    METHODS = ("binomial", "negative_binomial", "poisson", "random")  # DRAW_KINDS, in order

    def __init__(self, rng: np.random.Generator, counting: bool = False):
        self.rng = rng
        self.counting = counting
        self.counts = [0] * len(self.METHODS)

    def __getattr__(self, name):
        if name not in self.METHODS:
            raise AttributeError(f"the engine calls rng.{name}, which the RNG-only kernel does "
                                 "not mirror")
        kind = self.METHODS.index(name)
        draw = getattr(self.rng, name)

        def counted(*args):
            if self.counting:
                self.counts[kind] += 1
            return draw(*args)

        return counted


def census(model: CompiledModel, seed: int, replicates: int) -> dict:
    """Count the draws of the engine and of the RNG-only kernel on the same compartment states.

    Python mode only (numba disabled). The engine runs ``kernel.simulate_replicate`` on
    counting Generators, with ``_advance`` wrapped so that only the steps' draws count and
    each compartment-step's state (cells, genotype, phenotype at the start of ``_advance``)
    is recorded; the RNG-only kernel then makes its draws for exactly those states. (With
    pre-growth, ``grow_from_single_cell_to``, the wrapper would also record the pre-growth
    steps, which the kernel does not count; the workload starts from ``initial_cells``.)
    """
    states: list[tuple[int, int, int]] = []
    advance = kernel._advance

    def counted_advance(rng, km, geno, pheno, cells, written, num_active, *rest):
        states.extend((int(cells[c]), int(geno[c]), int(pheno[c]))
                      for c in range(num_active) if cells[c] > 0)
        rng.counting = True
        try:
            return advance(rng, km, geno, pheno, cells, written, num_active, *rest)
        finally:
            rng.counting = False

    kernel._advance = counted_advance  # Python mode: simulate_replicate looks it up per call
    offsets, final, steps = [0], [], []
    engine = np.zeros(4, np.int64)
    no_rows = np.zeros(0, np.int64)  # trajectory buffers of capacity 0: rows counted only
    num_mechanisms = len(model.mechanism_names)
    for k in range(replicates):
        rng = CountingGenerator(runner.replicate_generator(seed, k, 0))
        out = kernel.simulate_replicate(
            rng, model.kernel, model.initial_cells, model.initial_phenotype_fraction,
            model.initial_alteration_fraction, model.grow_from_single_cell_to, model.dt_days,
            model.horizon_days, model.num_steps, model.record_every_steps,
            runner._max_compartments(model), np.zeros(0), no_rows, no_rows, no_rows,
            np.zeros(num_mechanisms, np.int64), np.zeros(num_mechanisms),
        )
        final.append(int(out[2]))
        steps.append(int(out[5]))
        offsets.append(len(states))
        engine += rng.counts
    kernel._advance = advance

    cells, geno, pheno = np.array(states, np.int64).T
    mix = make_mix(model, offsets, cells, geno, pheno, np.ones(len(states), np.int64))
    generators = [CountingGenerator(runner.replicate_generator(seed, k, 0), counting=True)
                  for k in range(replicates)]
    own = rng_only(model, generators, mix).sum(axis=0)
    counted = np.sum([g.counts for g in generators], axis=0).tolist()
    return {"final_cells": final, "compartment_steps": steps, "states": len(states),
            "engine": engine.tolist(), "mirror": counted, "mirror_own": own.tolist()}


def draw_census(replicates: int, seed: int) -> None:
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
                      "large batches": census(big, seed, max(1, replicates // 4))}))


#: Allowed relative difference, engine vs RNG-only kernel, of the draws of each kind
#: (DRAW_KINDS) on the same compartment states. They differ only through the values drawn
#: (mutant numbers; the few compartments a step's opening switch creates, which the engine
#: advances but does not count): under 3% on both cases over several seeds. A draw dropped
#: from or added to any branch moves its kind much more (the batch uniform: -79% on
#: "large batches"; the per-cell uniform: -100% on the workload).
MIRROR_TOLERANCE = (0.02, 0.02, 0.01, 0.10)


@dataclass
class MirrorCheck:
    replicates: int
    compartment_steps: int
    engine: np.ndarray  # (4,) draws by DRAW_KINDS
    mirror: np.ndarray


def check_mirror(model: CompiledModel, seed: int, result: runner.BlockResult) -> MirrorCheck:
    """Stop the benchmark unless the RNG-only kernel still makes the draws the engine makes.

    ``result`` is the compiled engine's run of replicates 0..n-1. Checks, on those replicates
    run again as Python (``draw_census``): that run reproduces the compiled engine (final
    cells, compartment-steps); ``compartment_steps`` is still the compartments live at the
    start of ``_advance``; the RNG-only kernel's own counters count every draw it makes; and
    on the engine's exact compartment states it makes as many draws of each kind as the
    engine, within MIRROR_TOLERANCE.
    """
    count = len(result.replicates)
    if not np.array_equal(result.replicates, np.arange(count)):
        raise ValueError("check_mirror needs replicates 0..n-1")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--draw-census", str(count),
         "--seed", str(seed)],
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
    if problems:
        raise SystemExit(
            "draw self-check FAILED: the RNG-only kernel no longer mirrors kernel._advance; "
            "update _rng_only_block / _switch_draws / draw_tables.\n  " + "\n  ".join(problems)
        )
    return MirrorCheck(count, workload["states"], np.array(workload["engine"]),
                       np.array(workload["mirror"]))


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


def warm_up_workload(model: CompiledModel, seed: int) -> runner.BlockResult:
    """Compile everything sections 1-2 call; returns the engine's run of the check replicates."""
    reps = np.arange(CHECK_REPLICATES, dtype=np.int64)
    result = runner.run_block(model, seed, reps)
    mix = trajectory_mix(model, result)
    rng_only(model, generators_for(seed, reps), mix)
    draws_and_math(model, generators_for(seed, reps), mix)
    return result


def run_workload(model: CompiledModel, seed: int, replicates: int, thread_counts: list[int],
                 console) -> tuple[list[WorkloadTiming], WorkloadCounts]:
    """Time the engine and the RNG-only kernel block by block, on every thread count.

    Per block of ``model.block_replicates`` replicates: the engine on each thread count
    (timed: ``runner.run_block``, i.e. streams, buffers, kernel and any overflow rerun, as a
    run pays them), then the untimed draw mix, then the RNG-only kernel on each thread count
    (timed: streams + kernel) and the draws + math kernel on the first. Interleaving the
    measurements block by block makes them share the same machine conditions. Results must
    be identical on every thread count (checked).
    """
    if model.kernel.carrying_capacity_cells < math.inf:
        raise SystemExit("the RNG-only tables assume no carrying capacity (rates fixed per type)")
    counts = WorkloadCounts()
    timings = {t: WorkloadTiming(threads=t) for t in thread_counts}
    # The trajectory rows run_block reserves per replicate before it reruns one (runner._run_kernel).
    reserved = runner._num_records(model) * min(runner.INITIAL_ROWS_PER_RECORD,
                                                runner._max_compartments(model))
    for start in range(0, replicates, model.block_replicates):
        reps = np.arange(start, min(replicates, start + model.block_replicates), dtype=np.int64)
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
                    draws_and_math(model, generators_for(seed, reps), mix)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=None,
                        help="workload replicates (default 10,000; 1,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smaller run (under ~2 minutes)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--skip-gillespy2", action="store_true", help="leave out GillesPy2")
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--draw-census", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_child is not None:
        rss_child(args.rss_child, args.threads or numba.config.NUMBA_NUM_THREADS, args.seed)
        return
    if args.draw_census is not None:
        draw_census(args.draw_census, args.seed)
        return

    from rich.console import Console

    console = Console(stderr=True, width=120)
    out = Console(width=150)
    replicates = args.replicates or (1_000 if args.quick else 10_000)
    small = ({"one_cell": 2_000, "hundred": 500} if args.quick
             else {"one_cell": 10_000, "hundred": 2_000})
    repeats = 2 if args.quick else 3
    # At least 2 blocks in both, so that the comparison is not 1 block against many.
    rss_counts = [2_000, 5_000] if args.quick else [2_000, 10_000]
    max_threads = numba.config.NUMBA_NUM_THREADS
    thread_counts = sorted({1, min(2, max_threads)})
    began_all = time.perf_counter()
    load_before = os.getloadavg()[0]

    model = compile_model(load_config(WORKLOAD))
    console.log("warming up (numba compile excluded from every timing)")
    with numba_threads(max_threads):
        check_result = warm_up_workload(model, args.seed)
    console.log(f"draw self-check on {CHECK_REPLICATES} replicates (engine and RNG-only as Python)")
    check = check_mirror(model, args.seed, check_result)
    del check_result

    timings, counts = run_workload(model, args.seed, replicates, thread_counts, console)
    with numba_threads(1):
        overhead = per_replicate_overhead(model, args.seed, min(replicates, 2_000))
    rss_main = peak_rss_mb()

    console.log(f"peak RSS: subprocesses streaming {rss_counts} replicates")
    rss = run_rss_children(rss_counts, max_threads, args.seed)

    with numba_threads(1):
        refs = reference_comparisons(args.seed, small, repeats, console)
        gill = ([] if args.skip_gillespy2
                else gillespy2_comparisons(args.seed, small, repeats, console))
    report(out, args, model, replicates, timings, counts, check, overhead, rss_main, rss,
           refs + gill, began_all, load_before)


def report(out, args, model, replicates, timings, counts, check, overhead, rss_main, rss,
           comparisons, began_all, load_before) -> None:
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
         "same draws through compartment_rates / birth_death_step / integrated_cells / "
         "multinomial_split / _grow_new_cells, minus RNG-only"),
        ("per-replicate setup", setup_ns,
         f"workload cut to 1 step: {overhead * 1e6:.0f} us per replicate"),
        ("compartment bookkeeping", rest_ns,
         "the rest: switching loops and arrivals, find/add, totals, compaction, records"),
        ("engine", engine_ns, "section 1"),
    ):
        parts.add_row(name, f"{ns:.0f}", f"{ns / engine_ns:.0%}", how)
    out.print(parts)
    lines.append(
        f"engine time per compartment-step ({one.threads} thread): {engine_ns:.0f} ns = "
        f"draws {draws_ns:.0f} + per-compartment math {math_ns:.0f} + bookkeeping "
        f"{rest_ns:.0f} + per-replicate setup {setup_ns:.0f}"
    )

    small_table = Table(title="3-4. Same model, same replicates, same statistic (final size); "
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

    mem = Table(title="5. Peak RSS (VmHWM of the process; ru_maxrss where /proc is missing)")
    for col in ("process", "replicates", "blocks", "after warm-up", "peak", "wall"):
        mem.add_column(col, justify="left" if col == "process" else "right")
    mem.add_row("this benchmark, after sections 1-2", f"{replicates:,}", "", "",
                f"{rss_main:.0f} MiB", "")
    for r in rss:
        mem.add_row("fresh subprocess: iterate_blocks, blocks discarded",
                    f"{r['replicates']:,}", str(r["blocks"]), f"{r['baseline_mb']:.0f} MiB",
                    f"{r['peak_mb']:.0f} MiB", f"{r['seconds']:.1f} s")
    out.print(mem)
    lines.append(
        "peak RSS streaming the workload through iterate_blocks (blocks of "
        f"{model.block_replicates:,}): "
        + ", ".join(f"{r['peak_mb']:.0f} MiB for {r['replicates']:,} replicates" for r in rss)
    )

    out.print()
    out.print(f"clonesim benchmark ({'quick' if args.quick else 'full'}): {platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}, numba "
              f"{numba.__version__}, numpy {np.__version__}, {source_version()}; load average "
              f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after; "
              f"{time.perf_counter() - began_all:.0f} s in all",
              markup=False, highlight=False, soft_wrap=True)
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
