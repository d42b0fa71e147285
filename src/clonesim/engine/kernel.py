"""The clone engine: numba kernels that advance replicates step by step (DESIGN §2).

One replicate is a list of compartments (genotype bit mask, phenotype index,
exact int64 cells). A step of length dt, with rates held at their
start-of-step values, is a Strang splitting:

1. switching alone for dt/2: the n cells of (g, p) spread over phenotypes by
   Multinomial(n, P[p, :]) with P = expm(Q dt/2) the switching chain's exact
   transition matrix (whole cells move, none are made or lost);
2. every compartment of n cells moves by the exact birth-death law with
   birth b (1 - U) and death d, where U = m_p * sum of u_a over alterations
   the genotype lacks (a division makes a mutant daughter with probability U);
   mutant daughters number M ~ Poisson(b U I), I = integral of n over the step
   (exact given I, since mutant divisions leave the parent's count unchanged),
   are split among alterations in proportion to u_a, are born at times drawn
   from the parent's growth and follow their own exact birth-death law to the
   step's end;
3. switching alone for dt/2 again.

The approximations are the splitting (second order in dt for the mean) and I
taken from the step's two ends. All vanish as dt -> 0 (tests show it).

Rates depend on the genotype's signal s_g under the step's drug exposures
(clonesim.model.pharmacodynamics); each genotype's s_g, mutation rate and
switching matrix are cached per replicate and recomputed only when exposures
or the step length change. Therapy (run_schedule) follows the semantics in
clonesim.therapy: step points, exposure per step, events and triggers at step
ends. simulate_block builds each replicate's day-0 tumour once and forks it
into every schedule.

Kernels take arrays, NamedTuples of arrays and Generators only: no config, no I/O.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange
from numba.core import config as numba_config
from numba.core import types
from numba.experimental import structref

from clonesim.engine.birth_death import birth_death_step, integrated_cells
from clonesim.model.compiled import (
    TRIGGER_AFTER_DAYS,
    TRIGGER_BURDEN_ABOVE,
    TRIGGER_BURDEN_BELOW,
    TRIGGER_CTDNA,
    TRIGGER_DAY,
    TRIGGER_PROGRESSION,
)
from clonesim.model.pharmacodynamics import genotype_signal
from clonesim.therapy.dosing import drug_exposure_over_step, next_pattern_boundary

# Replicate outcome codes (``status``); errors are >= STATUS_FIRST_ERROR.
STATUS_ALIVE = 0
STATUS_EXTINCT = 1
STATUS_DIED = 2
STATUS_FIRST_ERROR = 10
STATUS_TOO_MANY_COMPARTMENTS = 10
STATUS_PREGROWTH_FAILED = 11

#: Attempts at growing a tumour from one cell before giving up (each restarts from 1 cell).
MAX_PREGROWTH_ATTEMPTS = 1_000_000
#: Mutant cells born in a step up to this many get their own birth time; more share the mean.
MAX_INDIVIDUAL_ARRIVALS = 16
#: The shortened final steps of pre-growth are at least this fraction of dt.
MIN_PREGROWTH_STEP_FRACTION = 1e-3


# ---------------------------------------------------------------------------------------------
# Rates under drug, cached per genotype
# ---------------------------------------------------------------------------------------------

@structref.register
class WorkspaceType(types.StructRef):
    """numba type of :class:`Workspace`."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class Workspace(structref.StructRefProxy):
    """Scratch and state arrays of one replicate (allocated once, reused by every schedule).

    A StructRef, not a NamedTuple: numba reference-counts a tuple's arrays one
    by one on every call that takes it, which cost ~0.5 us per step; a
    StructRef is one object. The genotype cache maps a genotype to its signal
    s_g, its summed mutation rate per division over the alterations it lacks,
    and its switching transition matrix over half a step; an entry is current
    when its epoch equals ``state[EPOCH]``, which moves on whenever exposures
    or the step length change. Fields:

    geno: np.ndarray  # (C,) int64 genotype bit masks
    pheno: np.ndarray  # (C,) int64 phenotype indices
    cells: np.ndarray  # (C,) int64
    written: np.ndarray  # (C,) int8: 1 when the last trajectory row of c had cells > 0
    arrivals_geno: np.ndarray
    arrivals_pheno: np.ndarray
    arrivals_cells: np.ndarray
    scratch_weights: np.ndarray
    scratch_counts: np.ndarray
    cache_key: np.ndarray  # (H,) int64 genotype, -1 = empty
    cache_epoch: np.ndarray  # (H,) int64
    cache_signal: np.ndarray  # (H,) s_g
    cache_lacking_rate: np.ndarray  # (H,) sum of u_a over alterations g lacks
    cache_transition: np.ndarray  # (H, P, P) expm(Q(s_g) h)
    exposure: np.ndarray  # (D,) mean exposure of the current step
    concentration: np.ndarray  # (D,) PK concentration at the current time
    extra_death: np.ndarray  # (P,) drug-induced extra death per phenotype this step (per day)
    expm_scratch: np.ndarray  # (3, P, P)
    mechanism_cells: np.ndarray  # (M,) int64 cells carrying each mechanism
    state: np.ndarray  # (3,) float64: [EPOCH, HALF_STEP, REFRESHED]

    It also holds, under the same names, the KernelModel tables that the step
    functions read (MODEL_TABLES), so those take the workspace alone and
    functions written against a KernelModel accept it too.
    """


WORKSPACE_FIELDS = (
    "geno",
    "pheno",
    "cells",
    "written",
    "arrivals_geno",
    "arrivals_pheno",
    "arrivals_cells",
    "scratch_weights",
    "scratch_counts",
    "cache_key",
    "cache_epoch",
    "cache_signal",
    "cache_lacking_rate",
    "cache_transition",
    "exposure",
    "concentration",
    "extra_death",
    "expm_scratch",
    "mechanism_cells",
    "state",
)
#: KernelModel fields a Workspace carries (the same arrays, not copies).
MODEL_TABLES = (
    "phenotype_birth_rate_per_day",
    "phenotype_death_rate_per_day",
    "phenotype_drug_kill_rate_per_day",
    "phenotype_cytostatic_share",
    "phenotype_mutation_rate_multiplier",
    "switch_rate_per_day",
    "switch_drug_induced_rate_per_day",
    "switch_scaled_by_signal",
    "alteration_mutation_rate_per_division",
    "alteration_pathway_mask",
    "driver_pathway_mask",
    "carrying_capacity_cells",
    "has_switching",
    "drug_target_ic50",
    "drug_target_hill",
    "drug_target_max_inhibition",
    "alteration_ic50_fold",
    "drug_extra_death_per_day",
    "drug_extra_death_ic50",
    "drug_extra_death_hill",
)
if numba_config.DISABLE_JIT:
    # Interpreted kernels (NUMBA_DISABLE_JIT=1, used to test the kernels as Python):
    # a StructRef proxy cannot be built without the JIT; a namedtuple behaves the same.
    Workspace = namedtuple("Workspace", WORKSPACE_FIELDS + MODEL_TABLES)  # type: ignore[misc]
else:
    structref.define_proxy(Workspace, WorkspaceType, list(WORKSPACE_FIELDS + MODEL_TABLES))


EPOCH = 0
HALF_STEP = 1
REFRESHED = 2  # the epoch at which _refresh_cache last ran


@njit(cache=True)
def make_workspace(model, max_compartments):
    """Allocate the arrays of one replicate."""
    num_alterations = model.alteration_mutation_rate_per_division.shape[0]
    num_phenotypes = model.phenotype_birth_rate_per_day.shape[0]
    num_drugs = model.drug_elimination_per_day.shape[0]
    arrival_capacity = max_compartments * (num_alterations + num_phenotypes)
    size = 16
    while size < 2 * max_compartments:
        size *= 2
    width = max(num_alterations, num_phenotypes)
    return Workspace(
        np.zeros(max_compartments, np.int64), np.zeros(max_compartments, np.int64),
        np.zeros(max_compartments, np.int64), np.zeros(max_compartments, np.int8),
        np.zeros(arrival_capacity, np.int64), np.zeros(arrival_capacity, np.int64),
        np.zeros(arrival_capacity, np.int64),
        np.zeros(width), np.zeros(width, np.int64),
        np.full(size, -1, np.int64), np.zeros(size, np.int64), np.zeros(size), np.zeros(size),
        np.zeros((size, num_phenotypes, num_phenotypes)),
        np.zeros(num_drugs), np.zeros(num_drugs), np.zeros(num_phenotypes),
        np.zeros((3, num_phenotypes, num_phenotypes)),
        np.zeros(num_alterations + num_phenotypes - 1, np.int64),
        np.array([0.0, 0.0, -1.0]),
        model.phenotype_birth_rate_per_day,
        model.phenotype_death_rate_per_day,
        model.phenotype_drug_kill_rate_per_day,
        model.phenotype_cytostatic_share,
        model.phenotype_mutation_rate_multiplier,
        model.switch_rate_per_day,
        model.switch_drug_induced_rate_per_day,
        model.switch_scaled_by_signal,
        model.alteration_mutation_rate_per_division,
        model.alteration_pathway_mask,
        model.driver_pathway_mask,
        model.carrying_capacity_cells,
        model.has_switching,
        model.drug_target_ic50,
        model.drug_target_hill,
        model.drug_target_max_inhibition,
        model.alteration_ic50_fold,
        model.drug_extra_death_per_day,
        model.drug_extra_death_ic50,
        model.drug_extra_death_hill,
    )


@njit(cache=True)
def _exposure_changed(state, current, exposure, step_days):
    """Whether ``exposure`` or the step length differ from the current ones."""
    if state[HALF_STEP] != 0.5 * step_days:
        return True
    for d in range(exposure.shape[0]):
        if current[d] != exposure[d]:
            return True
    return False


@njit(cache=True)
def set_exposure(ws, exposure, step_days):
    """Make ``exposure`` (D,) and the step length current; bumps the cache epoch if either changed.

    Also sets the drug-induced extra death per phenotype,
    sum_d extra_{d,p} H_d(c_d) / H_d(1), H(c) = c^n / (IC50^n + c^n).
    """
    if not _exposure_changed(ws.state, ws.exposure, exposure, step_days):
        return
    ws.exposure[:] = exposure
    ws.state[EPOCH] += 1.0
    ws.state[HALF_STEP] = 0.5 * step_days
    extra_death_rates(ws, exposure, ws.extra_death)


@njit(cache=True)
def extra_death_rates(model, exposure, out):
    """out[p] = sum_d extra_{d,p} H_d(c_d) / H_d(1), H(c) = c^n / (IC50^n + c^n) (per day).

    The drugs' direct extra death of phenotype p at exposures c (D,): the
    configured rate at the standard exposure 1.0, following the drug's Hill curve.
    ``model`` is a KernelModel or a Workspace.
    """
    out[:] = 0.0
    for d in range(exposure.shape[0]):
        c = exposure[d]
        if c <= 0.0:
            continue
        ic50 = model.drug_extra_death_ic50[d]
        n = model.drug_extra_death_hill[d]
        at_standard = 1.0 / (ic50**n + 1.0)
        effect = c**n / (ic50**n + c**n) / at_standard
        for p in range(out.shape[0]):
            out[p] += model.drug_extra_death_per_day[d, p] * effect


@njit(cache=True)
def _two_state_transition(rate_out_0, rate_out_1, h, out):
    """Exact P(h) of a two-state chain with rates 0->1 = a, 1->0 = c (per day)."""
    total = rate_out_0 + rate_out_1
    if total <= 0.0:
        out[0, 0], out[0, 1], out[1, 0], out[1, 1] = 1.0, 0.0, 0.0, 1.0
        return
    moved = -math.expm1(-total * h) / total
    out[0, 1] = rate_out_0 * moved
    out[0, 0] = 1.0 - out[0, 1]
    out[1, 0] = rate_out_1 * moved
    out[1, 1] = 1.0 - out[1, 0]


@njit(cache=True)
def _matmul(left, right, out):
    """out = left @ right for small square matrices (numba's @ would need SciPy's BLAS)."""
    size = left.shape[0]
    for i in range(size):
        for j in range(size):
            total = 0.0
            for k in range(size):
                total += left[i, k] * right[k, j]
            out[i, j] = total


@njit(cache=True)
def _expm_transition(model, signal, duration_days, out, generator, term, scratch):
    """P = expm(Q h) by scaling and squaring with a 16-term Taylor series (any P)."""
    size = out.shape[0]
    generator[:, :] = 0.0
    for p in range(size):
        for q in range(size):
            if q != p:
                rate = switch_rate(model, p, q, signal) * duration_days
                generator[p, q] = rate
                generator[p, p] -= rate
    norm = 0.0
    for p in range(size):
        norm = max(norm, -2.0 * generator[p, p])
    squarings = 0
    while norm > 0.5:
        norm *= 0.5
        squarings += 1
    generator /= 2.0**squarings
    term[:, :] = 0.0
    out[:, :] = 0.0
    for p in range(size):
        term[p, p] = 1.0
        out[p, p] = 1.0
    for k in range(1, 17):
        _matmul(term, generator, scratch)
        term[:, :] = scratch / k
        out += term
    for _ in range(squarings):
        _matmul(out, out, scratch)
        out[:, :] = scratch
    for p in range(size):  # clip rounding so every row is a probability vector
        total = 0.0
        for q in range(size):
            out[p, q] = min(max(out[p, q], 0.0), 1.0)
            total += out[p, q]
        for q in range(size):
            out[p, q] /= total


@njit(cache=True)
def transition_into(model, signal, duration_days, out, scratch):
    """P = expm(Q h): one cell's phenotype transition probabilities under switching alone.

    Q[p, q] = sigma_pq(s) for q != p and Q[p, p] = -sum_q sigma_pq(s) (per day);
    ``out[p, q]`` = P(a cell in p is in q after h days). Two phenotypes use the
    closed form; more use scaling and squaring (accurate to rounding here), with
    ``scratch`` (3, P, P). ``model`` is a KernelModel or a Workspace.
    """
    if out.shape[0] == 2:
        _two_state_transition(switch_rate(model, 0, 1, signal), switch_rate(model, 1, 0, signal),
                              duration_days, out)
    else:
        _expm_transition(model, signal, duration_days, out, scratch[0], scratch[1], scratch[2])


@njit(cache=True)
def switching_transition(model, signal, duration_days, out):
    """transition_into with its own scratch (for callers outside the kernel)."""
    size = out.shape[0]
    transition_into(model, signal, duration_days, out, np.empty((3, size, size)))


@njit(cache=True)
def switch_rate(model, from_phenotype, to_phenotype, signal):
    """sigma_{p->q}(s) = sigma_0 (s if scaled by signal else 1) + sigma_drug (1 - s), per day."""
    base = model.switch_rate_per_day[from_phenotype, to_phenotype]
    if model.switch_scaled_by_signal[from_phenotype, to_phenotype] != 0.0:
        base *= signal
    return base + model.switch_drug_induced_rate_per_day[from_phenotype, to_phenotype] * (
        1.0 - signal
    )


@njit(cache=True)
def _fill_entry(ws, slot, genotype):
    """Compute genotype g's signal, mutation rate and transition matrix into cache ``slot``."""
    signal = genotype_signal(
        genotype, ws.exposure, ws.driver_pathway_mask, ws.alteration_pathway_mask,
        ws.alteration_ic50_fold, ws.drug_target_ic50, ws.drug_target_hill,
        ws.drug_target_max_inhibition,
    )
    lacking = 0.0
    rates = ws.alteration_mutation_rate_per_division
    for a in range(rates.shape[0]):
        if not (genotype >> a) & 1:
            lacking += rates[a]
    ws.cache_key[slot] = genotype
    ws.cache_epoch[slot] = np.int64(ws.state[EPOCH])
    ws.cache_signal[slot] = signal
    ws.cache_lacking_rate[slot] = lacking
    if ws.has_switching:
        transition_into(ws, signal, ws.state[HALF_STEP], ws.cache_transition[slot],
                        ws.expm_scratch)


@njit(cache=True)
def _refresh_cache(ws, num_active):
    """Make the cache entry of every live genotype current (after exposures or dt changed).

    One call per step with the tables as locals: it repeats _fill_entry's work for
    two phenotypes (signal, lacking rate, closed-form transition) because a
    genotype_slot call per genotype measured ~3.5 % slower on the EGFR benchmark;
    more phenotypes go through genotype_slot.
    """
    geno, cells = ws.geno, ws.cells
    cache_key, cache_epoch = ws.cache_key, ws.cache_epoch
    cache_signal, cache_lacking_rate, transitions = (ws.cache_signal, ws.cache_lacking_rate,
                                                     ws.cache_transition)
    exposure = ws.exposure
    epoch = np.int64(ws.state[EPOCH])
    h = ws.state[HALF_STEP]
    driver, pathway_mask = ws.driver_pathway_mask, ws.alteration_pathway_mask
    fold, ic50 = ws.alteration_ic50_fold, ws.drug_target_ic50
    hill, max_inhibition = ws.drug_target_hill, ws.drug_target_max_inhibition
    rates = ws.alteration_mutation_rate_per_division
    base_rate, drug_rate = ws.switch_rate_per_day, ws.switch_drug_induced_rate_per_day
    scaled = ws.switch_scaled_by_signal
    two_states = transitions.shape[1] == 2
    for c in range(num_active):
        if cells[c] == 0:
            continue
        g = geno[c]
        slot = _key_slot(cache_key, g)
        if slot >= 0 and cache_key[slot] == g and cache_epoch[slot] == epoch:
            continue
        if slot < 0 or not two_states:
            genotype_slot(ws, g)
            continue
        signal = genotype_signal(g, exposure, driver, pathway_mask, fold, ic50, hill,
                                 max_inhibition)
        lacking = 0.0
        for a in range(rates.shape[0]):
            if not (g >> a) & 1:
                lacking += rates[a]
        cache_key[slot] = g
        cache_epoch[slot] = epoch
        cache_signal[slot] = signal
        cache_lacking_rate[slot] = lacking
        if ws.has_switching:
            up = base_rate[0, 1] * (signal if scaled[0, 1] != 0.0 else 1.0) + drug_rate[0, 1] * (
                1.0 - signal)
            down = base_rate[1, 0] * (signal if scaled[1, 0] != 0.0 else 1.0) + drug_rate[1, 0] * (
                1.0 - signal)
            _two_state_transition(up, down, h, transitions[slot])


@njit(cache=True)
def _key_slot(cache_key, genotype):
    """Slot holding genotype g, or the empty slot where it would go; -1 if the table is full.

    Open addressing with linear probing from a mixed hash of the bit mask.
    """
    mask = cache_key.shape[0] - 1
    slot = (genotype ^ (genotype >> 11) ^ (genotype >> 23)) & mask
    for _ in range(mask + 1):
        key = cache_key[slot]
        if key == genotype or key == -1:
            return slot
        slot = (slot + 1) & mask
    return -1


@njit(cache=True)
def _probe(cache_key, cache_epoch, epoch, genotype):
    """Slot of genotype g when its cache entry is current (epoch matches), else -1."""
    slot = _key_slot(cache_key, genotype)
    if slot >= 0 and cache_key[slot] == genotype and cache_epoch[slot] == epoch:
        return slot
    return -1


@njit(cache=True)
def genotype_slot(ws, genotype):
    """Cache slot holding genotype g's current signal, mutation rate and transition matrix.

    Fills the entry when it is missing or stale; a full table is cleared first
    (rare: it holds at least twice as many genotypes as a replicate may have
    compartments).
    """
    slot = _key_slot(ws.cache_key, genotype)
    if slot < 0:
        ws.cache_key[:] = -1
        ws.state[REFRESHED] = -1.0  # every live genotype must be computed again
        slot = _key_slot(ws.cache_key, genotype)
    if ws.cache_key[slot] != genotype or ws.cache_epoch[slot] != np.int64(ws.state[EPOCH]):
        _fill_entry(ws, slot, genotype)
    return slot


@njit(cache=True)
def _rates(base_birth, cytostatic, base_death, kill, multiplier, signal, lacking_rate,
           extra_death, logistic_factor):
    """(b, d, U) from one phenotype's parameters and one genotype's signal (scalars only,
    so the hot loop can call it without reference counting): see rates_under_signal."""
    lack_signal = 1.0 - signal
    birth = base_birth * (1.0 - cytostatic * lack_signal) * logistic_factor
    death = base_death + kill * lack_signal + extra_death
    return birth, death, lacking_rate * multiplier


@njit(cache=True)
def rates_under_signal(model, phenotype, signal, lacking_rate, extra_death, logistic_factor):
    """Per-cell rates (b, d, U) of phenotype p in a genotype with signal s_g (DESIGN §1.2-1.4).

    b = b_p (1 - phi_p (1 - s_g)) max(0, 1 - N/K), d = d_p + k_p (1 - s_g) + extra_p,
    U = m_p sum_{a not in g} u_a (the mutation probability per division), per day;
    ``lacking_rate`` is that sum and ``extra_death`` the drugs' extra death of p.
    """
    p = phenotype
    return _rates(model.phenotype_birth_rate_per_day[p], model.phenotype_cytostatic_share[p],
                  model.phenotype_death_rate_per_day[p], model.phenotype_drug_kill_rate_per_day[p],
                  model.phenotype_mutation_rate_multiplier[p], signal, lacking_rate, extra_death,
                  logistic_factor)


@njit(cache=True)
def slot_rates(ws, slot, phenotype, logistic_factor):
    """rates_under_signal for the genotype cached at ``slot``."""
    return rates_under_signal(ws, phenotype, ws.cache_signal[slot],
                              ws.cache_lacking_rate[slot], ws.extra_death[phenotype],
                              logistic_factor)


@njit(cache=True)
def multinomial_split(rng, total, weights, counts):
    """counts ~ Multinomial(total, weights / sum(weights)), drawn as conditional binomials.

    Entries with weight <= 0 get 0; the last positive entry takes what is left,
    so rounding in the running weight sum can never lose or invent a cell.
    """
    remaining_weight = 0.0
    last = -1
    for i in range(weights.shape[0]):
        counts[i] = 0
        if weights[i] > 0.0:
            remaining_weight += weights[i]
            last = i
    for i in range(last + 1):
        if total == 0:
            break
        if weights[i] <= 0.0:
            continue
        if i == last:
            counts[i] = total
        else:
            counts[i] = rng.binomial(total, min(1.0, weights[i] / remaining_weight))
        total -= counts[i]
        remaining_weight -= weights[i]


@njit(cache=True)
def stochastic_round(rng, expected):
    """floor(x) + Bernoulli(x - floor(x)): an integer with mean x and least variance."""
    whole = math.floor(expected)
    fraction = expected - whole
    if fraction > 0.0 and rng.random() < fraction:
        whole += 1
    return np.int64(whole)


@njit(cache=True)
def _find_or_add(genotype, phenotype, geno, pheno, cells, written, num_active):
    """Index of compartment (genotype, phenotype), appending it when absent; -1 if full."""
    for c in range(num_active):
        if geno[c] == genotype and pheno[c] == phenotype:
            return c, num_active
    if num_active >= geno.shape[0]:
        return -1, num_active
    geno[num_active] = genotype
    pheno[num_active] = phenotype
    cells[num_active] = 0
    written[num_active] = 0
    return num_active, num_active + 1


@njit(cache=True)
def _mark_arisal(genotype, phenotype, num_alterations, day, arise_day):
    """Record ``day`` as the first arising of every mechanism the compartment carries."""
    for a in range(num_alterations):
        if (genotype >> a) & 1 and math.isnan(arise_day[a]):
            arise_day[a] = day
    if phenotype > 0:
        m = num_alterations + phenotype - 1
        if math.isnan(arise_day[m]):
            arise_day[m] = day


@njit(cache=True)
def _birth_time(growth_rate, dt_days, u):
    """The time in [0, dt) at quantile u of the density proportional to exp(growth_rate t)."""
    x = growth_rate * dt_days
    if abs(x) < 1e-8:
        return u * dt_days
    return math.log1p(u * math.expm1(x)) / growth_rate


@njit(cache=True)
def _grow_new_cells(rng, birth, death, born, parent_start, parent_end, dt_days):
    """Advance ``born`` cells created inside a step to the step's end.

    ``birth`` (already net of mutant divisions) and ``death`` are the new
    compartment's per-cell rates. Birth times follow the parent's size, taken as
    exponential between its two ends; each new cell then follows the exact
    birth-death law for the rest of the step (a batch of more than
    MAX_INDIVIDUAL_ARRIVALS starts together at the mean birth time).
    Returns (cells at the step's end, earliest birth time within the step).
    """
    growth = 0.0
    if parent_start > 0 and parent_end > 0:
        growth = math.log(parent_end / parent_start) / dt_days
    if born <= MAX_INDIVIDUAL_ARRIVALS:
        cells = np.int64(0)
        first = dt_days
        for _ in range(born):
            t = _birth_time(growth, dt_days, rng.random())
            first = min(first, t)
            cells += birth_death_step(rng, np.int64(1), birth, death, dt_days - t)
        return cells, first
    x = growth * dt_days
    mean_time = 0.5 * dt_days if abs(x) < 1e-8 else dt_days / -math.expm1(-x) - 1.0 / growth
    # The earliest of `born` birth times: the minimum of k uniforms is 1 - V^(1/k).
    first = _birth_time(growth, dt_days, -math.expm1(math.log(rng.random()) / born))
    return birth_death_step(rng, born, birth, death, dt_days - mean_time), first


@njit(cache=True)
def _total(cells, num_active):
    total = np.int64(0)
    for c in range(num_active):
        total += cells[c]
    return total


@njit(cache=True)
def _apply_arrivals(geno, pheno, cells, written, num_active, num_arrivals, arrivals_geno,
                    arrivals_pheno, arrivals_cells, num_alterations, day, arise_day):
    """Add arriving cells to their compartments (created as needed); -1 when full."""
    for i in range(num_arrivals):
        c, num_active = _find_or_add(arrivals_geno[i], arrivals_pheno[i], geno, pheno, cells,
                                     written, num_active)
        if c < 0:
            return -1
        cells[c] += arrivals_cells[i]
        if arrivals_cells[i] > 0:
            _mark_arisal(geno[c], pheno[c], num_alterations, day, arise_day)
    return num_active


@njit(cache=True)
def _switch(rng, geno, pheno, cells, written, num_active, cache_key, transitions,
            arrivals_geno, arrivals_pheno, arrivals_cells, num_alterations, day, arise_day):
    """Phenotype switching alone over half a step: whole cells move, none are made or lost.

    The n cells of (g, p) are spread over phenotypes by Multinomial(n, P_g[p, :]),
    P_g = expm(Q(s_g) h) from the genotype cache (``transitions``; every live
    genotype must be current there), drawn as conditional binomials (written out
    rather than with multinomial_split: this is the hottest loop, and the inline
    form measured 20 % faster). Exact for pure switching. Returns the new number
    of compartments, or -1 when there is no room for one.
    """
    num_phenotypes = transitions.shape[1]
    num_arrivals = 0
    for c in range(num_active):
        n = cells[c]
        if n == 0:
            continue
        p = pheno[c]
        slot = _key_slot(cache_key, geno[c])
        leave_probability = 1.0 - transitions[slot, p, p]
        if leave_probability <= 0.0:
            continue
        leaving = rng.binomial(n, min(1.0, leave_probability))
        cells[c] = n - leaving
        last_target = -1
        for q in range(num_phenotypes):
            if q != p and transitions[slot, p, q] > 0.0:
                last_target = q
        remaining = leave_probability
        q = 0
        while leaving > 0 and q <= last_target:
            share = transitions[slot, p, q] if q != p else 0.0
            if share > 0.0:
                if q == last_target:
                    k = leaving
                else:
                    k = rng.binomial(leaving, min(1.0, share / remaining))
                if k > 0:
                    arrivals_geno[num_arrivals] = geno[c]
                    arrivals_pheno[num_arrivals] = q
                    arrivals_cells[num_arrivals] = k
                    num_arrivals += 1
                leaving -= k
                remaining -= share
            q += 1
    return _apply_arrivals(geno, pheno, cells, written, num_active, num_arrivals, arrivals_geno,
                           arrivals_pheno, arrivals_cells, num_alterations, day, arise_day)


@njit(cache=True)
def _advance(rng, ws, num_active, dt_days, day_end, arise_day):
    """Advance every compartment by one step; returns (num_active, total_cells) or (-1, 0).

    Strang splitting: switching for dt/2, then the exact birth-death step with
    mutation for dt, then switching for dt/2 (second order in dt for the mean).
    Rates, including the logistic factor, are taken at the start of the step;
    the exposures and ``dt_days`` must have been made current with set_exposure.

    Performance note: numba updates reference counts of every array an argument
    holds on each call, so the loops below call only functions of scalars and a
    few arrays, the model tables come from the workspace (one object), and the
    genotype cache is brought up to date once, before the first switching half-step.
    """
    geno, pheno, cells, written = ws.geno, ws.pheno, ws.cells, ws.written
    arrivals_geno, arrivals_pheno, arrivals_cells = (ws.arrivals_geno, ws.arrivals_pheno,
                                                     ws.arrivals_cells)
    cache_key, cache_epoch, transitions = ws.cache_key, ws.cache_epoch, ws.cache_transition
    cache_signal, cache_lacking_rate, extra_death = (ws.cache_signal, ws.cache_lacking_rate,
                                                     ws.extra_death)
    epoch = np.int64(ws.state[EPOCH])
    mutation_rates = ws.alteration_mutation_rate_per_division
    base_birth = ws.phenotype_birth_rate_per_day
    base_death = ws.phenotype_death_rate_per_day
    kill = ws.phenotype_drug_kill_rate_per_day
    cytostatic = ws.phenotype_cytostatic_share
    multiplier = ws.phenotype_mutation_rate_multiplier
    num_alterations = mutation_rates.shape[0]
    day_start = day_end - dt_days

    if ws.state[REFRESHED] != ws.state[EPOCH]:
        _refresh_cache(ws, num_active)
        ws.state[REFRESHED] = ws.state[EPOCH]

    logistic = 1.0
    if ws.carrying_capacity_cells < math.inf:
        logistic = max(0.0, 1.0 - _total(cells, num_active) / ws.carrying_capacity_cells)
    if ws.has_switching:
        num_active = _switch(rng, geno, pheno, cells, written, num_active, cache_key, transitions,
                             arrivals_geno, arrivals_pheno, arrivals_cells, num_alterations,
                             day_start, arise_day)
        if num_active < 0:
            return -1, np.int64(0)

    weights = ws.scratch_weights[:num_alterations]
    counts = ws.scratch_counts[:num_alterations]
    num_arrivals = 0
    for c in range(num_active):
        start = cells[c]
        if start == 0:
            continue
        g = geno[c]
        p = pheno[c]
        slot = _key_slot(cache_key, g)
        # _rates, written out here and for mutants below (calling it measured 2-4 % slower
        # on the EGFR benchmark).
        lack_signal = 1.0 - cache_signal[slot]
        birth = base_birth[p] * (1.0 - cytostatic[p] * lack_signal) * logistic
        death = base_death[p] + kill[p] * lack_signal + extra_death[p]
        mutation = cache_lacking_rate[slot] * multiplier[p]
        end = birth_death_step(rng, start, birth * (1.0 - mutation), death, dt_days)
        if mutation > 0.0 and birth > 0.0:
            cell_days = integrated_cells(start, end, dt_days)
            mutants = rng.poisson(birth * mutation * cell_days)
            if mutants > 0:
                # Split over the alterations g lacks, in proportion to u_a.
                for a in range(num_alterations):
                    weights[a] = mutation_rates[a] if not (g >> a) & 1 else 0.0
                multinomial_split(rng, mutants, weights, counts)
                for a in range(num_alterations):
                    if counts[a] == 0:
                        continue
                    mutant = g | (np.int64(1) << a)
                    m = _probe(cache_key, cache_epoch, epoch, mutant)
                    if m < 0:
                        m = genotype_slot(ws, mutant)
                    lack_mutant = 1.0 - cache_signal[m]
                    birth_m = base_birth[p] * (1.0 - cytostatic[p] * lack_mutant) * logistic
                    death_m = base_death[p] + kill[p] * lack_mutant + extra_death[p]
                    mutation_m = cache_lacking_rate[m] * multiplier[p]
                    grown, first_birth = _grow_new_cells(
                        rng, birth_m * (1.0 - mutation_m), death_m, counts[a], start, end, dt_days
                    )
                    _mark_arisal(mutant, p, num_alterations, day_start + first_birth, arise_day)
                    arrivals_geno[num_arrivals] = mutant
                    arrivals_pheno[num_arrivals] = p
                    arrivals_cells[num_arrivals] = grown
                    num_arrivals += 1
        cells[c] = end

    num_active = _apply_arrivals(geno, pheno, cells, written, num_active, num_arrivals,
                                 arrivals_geno, arrivals_pheno, arrivals_cells, num_alterations,
                                 day_end, arise_day)
    if ws.state[REFRESHED] != ws.state[EPOCH]:  # the cache was cleared for a new genotype
        _refresh_cache(ws, num_active)
        ws.state[REFRESHED] = ws.state[EPOCH]
    if num_active >= 0 and ws.has_switching:
        num_active = _switch(rng, geno, pheno, cells, written, num_active, cache_key, transitions,
                             arrivals_geno, arrivals_pheno, arrivals_cells, num_alterations,
                             day_end, arise_day)
    if num_active < 0:
        return -1, np.int64(0)
    return num_active, _total(cells, num_active)


@njit(cache=True)
def _compact(geno, pheno, cells, written, num_active):
    """Drop empty compartments that no trajectory row still needs, keeping order."""
    kept = 0
    for c in range(num_active):
        if cells[c] > 0 or written[c] != 0:
            geno[kept] = geno[c]
            pheno[kept] = pheno[c]
            cells[kept] = cells[c]
            written[kept] = written[c]
            kept += 1
    return kept


@njit(cache=True)
def _record(day, geno, pheno, cells, written, num_active, rows, traj_day, traj_geno, traj_pheno,
            traj_cells):
    """Append the live compartments (and those that just emptied, with 0) to the trajectory.

    Rows past the buffer's capacity are counted but not written, so the caller
    can rerun the replicate with a buffer of the right size.
    """
    capacity = traj_day.shape[0]
    for c in range(num_active):
        if cells[c] > 0 or written[c] != 0:
            if rows < capacity:
                traj_day[rows] = day
                traj_geno[rows] = geno[c]
                traj_pheno[rows] = pheno[c]
                traj_cells[rows] = cells[c]
            rows += 1
            written[c] = 1 if cells[c] > 0 else 0
    return rows


@njit(cache=True)
def _seed_initial_tumour(rng, initial_cells, phenotype_fraction, alteration_fraction, ws):
    """Split ``initial_cells`` into compartments by the configured fractions.

    Phenotype q gets round(N f_q) cells (stochastic rounding), the founder the
    rest; within each phenotype, alteration a gets round(n_p f_a) single-mutant
    cells. Returns the number of compartments.
    """
    geno, pheno, cells, written = ws.geno, ws.pheno, ws.cells, ws.written
    num_phenotypes = phenotype_fraction.shape[0]
    num_alterations = alteration_fraction.shape[0]
    per_phenotype = np.zeros(num_phenotypes, np.int64)
    rest = np.int64(initial_cells)
    for q in range(1, num_phenotypes):
        if phenotype_fraction[q] > 0.0:
            per_phenotype[q] = min(rest, stochastic_round(rng, initial_cells * phenotype_fraction[q]))
            rest -= per_phenotype[q]
    per_phenotype[0] = rest
    num_active = 0
    for p in range(num_phenotypes):
        remaining = per_phenotype[p]
        if remaining == 0:
            continue
        founder_slot = num_active
        geno[founder_slot] = 0
        pheno[founder_slot] = p
        written[founder_slot] = 0
        num_active += 1
        for a in range(num_alterations):
            if alteration_fraction[a] > 0.0:
                k = min(remaining, stochastic_round(rng, per_phenotype[p] * alteration_fraction[a]))
                if k > 0:
                    geno[num_active] = np.int64(1) << a
                    pheno[num_active] = p
                    cells[num_active] = k
                    written[num_active] = 0
                    num_active += 1
                    remaining -= k
        cells[founder_slot] = remaining
    return _compact(geno, pheno, cells, written, num_active)


@njit(cache=True)
def _grow_from_one_cell(rng, target_cells, dt_days, ws, arise_day):
    """Grow untreated from one founder cell until the burden reaches ``target_cells``.

    Conditioned on reaching it: a lineage that dies out is restarted from one
    cell on the same stream. Pre-growth ends at the first step end with the
    burden at or above the target; the final steps shrink geometrically (to at
    least MIN_PREGROWTH_STEP_FRACTION * dt) so that the overshoot is small.
    Returns (num_active, days taken, status); arise days are relative to the start.
    """
    geno, pheno, cells = ws.geno, ws.pheno, ws.cells
    num_alterations = ws.alteration_mutation_rate_per_division.shape[0]
    no_drug = np.zeros(ws.exposure.shape[0])
    for _attempt in range(MAX_PREGROWTH_ATTEMPTS):
        arise_day[:] = np.nan
        geno[0] = 0
        pheno[0] = 0
        cells[0] = 1
        ws.written[0] = 0
        num_active = 1
        total = np.int64(1)
        day = 0.0
        while 0 < total < target_cells:
            # Mean net growth rate of the tumour, to aim the last steps at the target.
            growth = 0.0
            logistic = 1.0
            if ws.carrying_capacity_cells < math.inf:
                logistic = max(0.0, 1.0 - total / ws.carrying_capacity_cells)
            for c in range(num_active):
                if cells[c] > 0:
                    b, d, _ = slot_rates(ws, genotype_slot(ws, geno[c]), pheno[c],
                                         logistic)
                    growth += (b - d) * cells[c]
            growth /= total
            step = dt_days
            if growth > 0.0:
                # Aim at half the expected time left: the steps shrink geometrically on the
                # final approach, so the first step end at or above the target overshoots
                # it by about one step's worth of a few cells, not by a whole day's growth.
                to_target = math.log(target_cells / total) / growth
                step = min(dt_days, max(0.5 * to_target, MIN_PREGROWTH_STEP_FRACTION * dt_days))
            day += step
            set_exposure(ws, no_drug, step)
            num_active, total = _advance(rng, ws, num_active, step, day, arise_day)
            if num_active < 0:
                return 0, day, STATUS_TOO_MANY_COMPARTMENTS
            num_active = _compact(geno, pheno, cells, ws.written, num_active)
        if total >= target_cells:
            _mark_arisal(np.int64(0), 0, num_alterations, 0.0, arise_day)
            return num_active, day, STATUS_ALIVE
    return 0, 0.0, STATUS_PREGROWTH_FAILED


@njit(cache=True)
def build_day_zero(rng, initial_cells, phenotype_fraction, alteration_fraction,
                   grow_to_cells, dt_days, ws, arise_day):
    """The tumour at day 0 (start of therapy) in ``ws``: (num_active, days_to_diagnosis, status).

    Seeded from the configured fractions, or grown untreated from one cell to
    ``grow_to_cells`` (arise days then are negative: before diagnosis).
    """
    num_alterations = alteration_fraction.shape[0]
    arise_day[:] = np.nan
    if grow_to_cells > 0:
        num_active, days_to_diagnosis, status = _grow_from_one_cell(
            rng, grow_to_cells, dt_days, ws, arise_day
        )
        if status != STATUS_ALIVE:
            return 0, days_to_diagnosis, status
        for m in range(arise_day.shape[0]):
            arise_day[m] -= days_to_diagnosis
        return num_active, days_to_diagnosis, STATUS_ALIVE
    num_active = _seed_initial_tumour(rng, initial_cells, phenotype_fraction, alteration_fraction,
                                      ws)
    for c in range(num_active):
        _mark_arisal(ws.geno[c], ws.pheno[c], num_alterations, 0.0, arise_day)
    return num_active, np.nan, STATUS_ALIVE


@njit(cache=True)
def _count_mechanisms(geno, pheno, cells, num_active, num_alterations, counts):
    """counts[m] = cells carrying mechanism m (alterations, then phenotypes 1, 2, ...)."""
    counts[:] = 0
    for c in range(num_active):
        n = cells[c]
        if n == 0:
            continue
        g = geno[c]
        a = 0
        while g != 0:
            if g & 1:
                counts[a] += n
            g >>= 1
            a += 1
        if pheno[c] > 0:
            counts[num_alterations + pheno[c] - 1] += n


# ---------------------------------------------------------------------------------------------
# Therapy: one schedule from day 0 to the horizon
# ---------------------------------------------------------------------------------------------

# Columns of the per-(replicate, schedule) integer and float outputs.
OUT_STATUS = 0
OUT_FINAL_CELLS = 1
OUT_NADIR_CELLS = 2
OUT_TRAJECTORY_ROWS = 3
OUT_COMPARTMENT_STEPS = 4
OUT_PROGRESSED = 5
OUT_BEST_RESPONSE = 6
OUT_MECHANISM_AT_PROGRESSION = 7  # -1: none
OUT_PHASE_CHANGES = 8
NUM_INT_OUT = 9
OUT_STOP_DAY = 0
OUT_DAYS_TO_DIAGNOSIS = 1
OUT_TTP_DAYS = 2
OUT_NADIR_DAY = 3
OUT_MECHANISM_SHARE = 4
NUM_FLOAT_OUT = 5
# Per-mechanism days (NaN: never).
MECH_ARISE = 0
MECH_ESTABLISHED = 1
MECH_DOMINANT = 2
MECH_CTDNA = 3
NUM_MECH_DAYS = 4
# Best response codes.
RESPONSE_CR = 0
RESPONSE_PR = 1
RESPONSE_SD = 2
RESPONSE_PD = 3
#: Two times closer than this (days) are the same time.
TIME_TOLERANCE_DAYS = 1e-9


@njit(cache=True)
def _trigger_fires(kind, value, phase_start, day, burden, baseline, progression_now,
                   sampled_now, detected_now):
    """Whether a phase's trigger (kind, value) fires at the step end ``day`` (clonesim.therapy)."""
    if kind == TRIGGER_CTDNA:
        return sampled_now and detected_now[np.int64(value)]
    if day <= phase_start + TIME_TOLERANCE_DAYS:
        return False
    if kind == TRIGGER_DAY:
        return day >= value - TIME_TOLERANCE_DAYS
    if kind == TRIGGER_AFTER_DAYS:
        return day >= phase_start + value - TIME_TOLERANCE_DAYS
    if kind == TRIGGER_PROGRESSION:
        return progression_now
    if kind == TRIGGER_BURDEN_BELOW:
        return burden < value * baseline
    if kind == TRIGGER_BURDEN_ABOVE:
        return burden > value * baseline
    return False


@njit(cache=True)
def _next_step_end(kind, value, dose, on_days, off_days, dose_origin, phase_start, day,
                   grid_end, horizon_days, next_sample):
    """The step's end: the next grid point, or an earlier step point (the current phase's
    fixed-time trigger or dosing on/off boundary, or a ctDNA sampling day).

    ``dose``, ``on_days``, ``off_days`` are the current phase's rows (D,);
    ``dose_origin`` (D,) the day each drug's dosing pattern started.
    """
    end = min(grid_end, horizon_days, next_sample)
    if kind == TRIGGER_DAY and value > day + TIME_TOLERANCE_DAYS:
        end = min(end, value)
    elif kind == TRIGGER_AFTER_DAYS and phase_start + value > day + TIME_TOLERANCE_DAYS:
        end = min(end, phase_start + value)
    for d in range(dose.shape[0]):
        if dose[d] > 0.0 and on_days[d] < math.inf:
            boundary = next_pattern_boundary(day - dose_origin[d], on_days[d], off_days[d])
            end = min(end, dose_origin[d] + boundary)
    return end


@njit(cache=True)
def _next_phase(phase, first, num_phases):
    """The phase after ``phase`` in a schedule of phases first .. first + num_phases - 1
    (back to the first after the last: only repeating schedules get there)."""
    local = phase - first + 1
    return first + (0 if local >= num_phases else local)


@njit(cache=True)
def _log_phase(rows, day, phase, reason, phase_day, phase_index, phase_reason):
    """Append a phase change (rows past the buffer are counted, not written); new row count."""
    if rows < phase_day.shape[0]:
        phase_day[rows], phase_index[rows], phase_reason[rows] = day, phase, reason
    return rows + 1


@njit(cache=True)
def _continue_or_restart_doses(doses, every_days, on_days, off_days, previous, phase, day,
                               dose_origin):
    """At a phase change: a drug given the same way in both phases keeps its dosing times;
    any other drug starts its pattern at the change (``dose_origin[d] = day``)."""
    for d in range(doses.shape[1]):
        same = (doses[previous, d] > 0.0 and doses[previous, d] == doses[phase, d]
                and every_days[previous, d] == every_days[phase, d]
                and on_days[previous, d] == on_days[phase, d]
                and off_days[previous, d] == off_days[phase, d])
        if not same:
            dose_origin[d] = day


@njit(cache=True)
def _ctdna_sample(counts, burden, num_alterations, detection_vaf, day, mech_days,
                  detected_now):
    """One liquid biopsy: alteration a is seen when VAF = carriers / (2 N) >= the limit."""
    for a in range(num_alterations):
        seen = burden > 0 and 0.5 * counts[a] / burden >= detection_vaf
        detected_now[a] = seen
        if seen and math.isnan(mech_days[a, MECH_CTDNA]):
            mech_days[a, MECH_CTDNA] = day


@njit(cache=True)
def _mechanism_milestones(counts, established_cells, burden, day, mech_days):
    """First days each mechanism holds established_cells cells and more than half the burden."""
    for m in range(counts.shape[0]):
        n = counts[m]
        if n >= established_cells and math.isnan(mech_days[m, MECH_ESTABLISHED]):
            mech_days[m, MECH_ESTABLISHED] = day
        if 2 * n > burden and math.isnan(mech_days[m, MECH_DOMINANT]):
            mech_days[m, MECH_DOMINANT] = day


@njit(cache=True)
def run_schedule(rng, model, schedules, schedule, ws, num_active, dt_days, horizon_days,
                 record_every_steps, arise_day, int_out, float_out, drug_days, mech_days,
                 traj_day, traj_geno, traj_pheno, traj_cells, phase_day, phase_index,
                 phase_reason):
    """Treat the day-0 tumour in ``ws`` with one schedule until the horizon, extinction or death.

    Implements the semantics documented in :mod:`clonesim.therapy` (step grid with
    step points, exposure per step, events and triggers at step ends). Writes
    the outputs of this (replicate, schedule): ``int_out``/``float_out`` (OUT_*
    columns), ``drug_days`` (D,), ``mech_days`` (M, NUM_MECH_DAYS), the
    trajectory and the phase changes (rows past a buffer's end are counted, not
    written). ``arise_day`` (M,) holds the day-0 arise days on entry.
    """
    # Locals, not attribute reads in the loop: see the performance note of _advance.
    num_alterations = model.alteration_mutation_rate_per_division.shape[0]
    elimination = model.drug_elimination_per_day
    num_drugs = elimination.shape[0]
    lethal_cells = model.lethal_cells
    detection_cells = model.detection_cells
    progression_factor = model.progression_burden_factor
    established_cells = model.established_cells
    ctdna_every_days = model.ctdna_every_days
    ctdna_vaf = model.ctdna_detection_vaf
    trigger_kind, trigger_value = schedules.trigger_kind, schedules.trigger_value
    doses, every_days = schedules.dose, schedules.every_days
    on_days, off_days = schedules.on_days, schedules.off_days
    geno, pheno, cells, written = ws.geno, ws.pheno, ws.cells, ws.written
    concentration, counts = ws.concentration, ws.mechanism_cells
    state = ws.state
    first = schedules.first_phase[schedule]
    num_phases = schedules.num_phases[schedule]
    from_baseline = schedules.baseline_reference[schedule] != 0
    phase = first
    phase_start = 0.0
    phase_rows = _log_phase(0, 0.0, 0, 0, phase_day, phase_index, phase_reason)

    mech_days[:, :] = np.nan
    mech_days[:, MECH_ARISE] = arise_day
    drug_days[:] = 0.0
    concentration[:] = 0.0
    exposure = np.zeros(num_drugs)
    dose_origin = np.zeros(num_drugs)  # day each drug's current dosing pattern started
    detected_now = np.zeros(max(num_alterations, 1), np.bool_)

    baseline = _total(cells, num_active)
    burden = baseline
    nadir = baseline  # least burden before the schedule's progression
    nadir_day = 0.0
    line_nadir = baseline  # reference for progression in the current line of therapy
    progressed = False
    ttp = np.nan
    mechanism_at_progression = -1
    mechanism_share = np.nan
    counts_at_line_nadir = np.zeros(counts.shape[0], np.int64)
    status = STATUS_ALIVE
    stop_day = np.nan
    compartment_steps = np.int64(0)

    rows = _record(0.0, geno, pheno, cells, written, num_active, 0, traj_day, traj_geno,
                   traj_pheno, traj_cells)
    _count_mechanisms(geno, pheno, cells, num_active, num_alterations, counts)
    counts_at_line_nadir[:] = counts
    _mechanism_milestones(counts, established_cells, burden, 0.0, mech_days)
    _ctdna_sample(counts, burden, num_alterations, ctdna_vaf, 0.0, mech_days, detected_now)
    next_sample = ctdna_every_days
    for _ in range(num_phases):  # a day-0 liquid biopsy may end the first phases at once
        if not _trigger_fires(trigger_kind[phase], trigger_value[phase], phase_start, 0.0, burden,
                              baseline, False, True, detected_now):
            break
        phase = _next_phase(phase, first, num_phases)
        phase_rows = _log_phase(phase_rows, 0.0, phase - first, TRIGGER_CTDNA, phase_day,
                                phase_index, phase_reason)

    day = 0.0
    grid_index = 0
    while day < horizon_days - TIME_TOLERANCE_DAYS:
        grid_end = (grid_index + 1) * dt_days
        day_end = _next_step_end(trigger_kind[phase], trigger_value[phase], doses[phase],
                                 on_days[phase], off_days[phase], dose_origin, phase_start, day,
                                 grid_end, horizon_days, next_sample)
        on_grid = day_end >= grid_end - TIME_TOLERANCE_DAYS
        if on_grid:
            day_end = min(grid_end, horizon_days)
            grid_index += 1
        step = day_end - day
        for d in range(num_drugs):
            mean, end, given = drug_exposure_over_step(
                concentration[d], elimination[d], day, day_end, dose_origin[d], doses[phase, d],
                every_days[phase, d], on_days[phase, d], off_days[phase, d],
            )
            exposure[d] = mean
            concentration[d] = end
            drug_days[d] += given
        if _exposure_changed(state, ws.exposure, exposure, step):
            set_exposure(ws, exposure, step)
        for c in range(num_active):
            if cells[c] > 0:
                compartment_steps += 1
        num_active, burden = _advance(rng, ws, num_active, step, day_end, arise_day)
        day = day_end
        if num_active < 0:
            status = STATUS_TOO_MANY_COMPARTMENTS
            stop_day = day
            break
        for m in range(arise_day.shape[0]):
            mech_days[m, MECH_ARISE] = arise_day[m]

        # Events at the step end.
        if burden == 0:
            status = STATUS_EXTINCT
        elif burden >= lethal_cells:
            status = STATUS_DIED
        _count_mechanisms(geno, pheno, cells, num_active, num_alterations, counts)
        if not progressed and burden < nadir:
            nadir = burden
            nadir_day = day
        if burden < line_nadir:
            line_nadir = burden
            counts_at_line_nadir[:] = counts
        reference = baseline if from_baseline else line_nadir
        progression_now = (burden >= progression_factor * reference
                           and burden >= detection_cells)
        _mechanism_milestones(counts, established_cells, burden, day, mech_days)
        sampled_now = day >= next_sample - TIME_TOLERANCE_DAYS
        if sampled_now:
            _ctdna_sample(counts, burden, num_alterations, ctdna_vaf, day, mech_days,
                          detected_now)
            next_sample += ctdna_every_days
        if status == STATUS_ALIVE:
            for _ in range(num_phases):
                if not _trigger_fires(trigger_kind[phase], trigger_value[phase], phase_start, day,
                                      burden, baseline, progression_now, sampled_now,
                                      detected_now):
                    break
                reason = trigger_kind[phase]
                if reason == TRIGGER_PROGRESSION:  # a change of line, not the schedule's failure
                    progression_now = False
                    line_nadir = burden
                    counts_at_line_nadir[:] = counts
                previous = phase
                phase = _next_phase(phase, first, num_phases)
                phase_start = day
                _continue_or_restart_doses(doses, every_days, on_days, off_days, previous, phase,
                                           day, dose_origin)
                phase_rows = _log_phase(phase_rows, day, phase - first, reason, phase_day,
                                        phase_index, phase_reason)
        if progression_now and not progressed:
            progressed = True
            ttp = day
            # The mechanism that made most of the regrowth since the line's nadir.
            best = np.int64(0)
            for m in range(counts.shape[0]):
                grown = counts[m] - counts_at_line_nadir[m]
                if grown > best:
                    best = grown
                    mechanism_at_progression = m
            if mechanism_at_progression >= 0:
                mechanism_share = counts[mechanism_at_progression] / burden

        last = day >= horizon_days - TIME_TOLERANCE_DAYS
        if status != STATUS_ALIVE or last or (on_grid and grid_index % record_every_steps == 0):
            rows = _record(day, geno, pheno, cells, written, num_active, rows, traj_day,
                           traj_geno, traj_pheno, traj_cells)
        if status != STATUS_ALIVE:
            stop_day = day
            break
        num_active = _compact(geno, pheno, cells, written, num_active)

    if nadir < detection_cells:
        response = RESPONSE_CR
    elif nadir <= model.response_burden_factor * baseline:
        response = RESPONSE_PR
    elif progressed and ttp < model.stable_disease_min_days:
        response = RESPONSE_PD
    else:
        response = RESPONSE_SD
    int_out[OUT_STATUS] = status
    int_out[OUT_FINAL_CELLS] = burden if num_active >= 0 else 0
    int_out[OUT_NADIR_CELLS] = nadir
    int_out[OUT_TRAJECTORY_ROWS] = rows
    int_out[OUT_COMPARTMENT_STEPS] = compartment_steps
    int_out[OUT_PROGRESSED] = 1 if progressed else 0
    int_out[OUT_BEST_RESPONSE] = response
    int_out[OUT_MECHANISM_AT_PROGRESSION] = mechanism_at_progression
    int_out[OUT_PHASE_CHANGES] = phase_rows
    float_out[OUT_STOP_DAY] = stop_day
    float_out[OUT_TTP_DAYS] = ttp
    float_out[OUT_NADIR_DAY] = nadir_day
    float_out[OUT_MECHANISM_SHARE] = mechanism_share


@njit(cache=True)
def simulate_replicate(day_zero_rng, therapy_generators, first_row, model, schedules,
                       schedule_ids, initial_cells, phenotype_fraction, alteration_fraction,
                       grow_to_cells, dt_days, horizon_days, record_every_steps, max_compartments,
                       int_out, float_out, drug_days, mech_cells_at_start, mech_days, traj_day,
                       traj_geno, traj_pheno, traj_cells, phase_day, phase_index, phase_reason):
    """One replicate: build its day-0 tumour once, then fork it into every schedule.

    Schedule j runs from a copy of the day-0 tumour and draws from
    ``therapy_generators[first_row + j]``; its outputs go to row first_row + j.
    """
    ws = make_workspace(model, max_compartments)
    num_mechanisms = mech_days.shape[1]
    arise_day = np.empty(num_mechanisms)
    num_active, days_to_diagnosis, status = build_day_zero(
        day_zero_rng, initial_cells, phenotype_fraction, alteration_fraction,
        grow_to_cells, dt_days, ws, arise_day,
    )
    num_schedules = schedule_ids.shape[0]
    if status != STATUS_ALIVE:
        for j in range(num_schedules):
            int_out[first_row + j, OUT_STATUS] = status
            float_out[first_row + j, OUT_DAYS_TO_DIAGNOSIS] = days_to_diagnosis
        return
    start_geno = ws.geno[:num_active].copy()
    start_pheno = ws.pheno[:num_active].copy()
    start_cells = ws.cells[:num_active].copy()
    start_arise = arise_day.copy()
    _count_mechanisms(ws.geno, ws.pheno, ws.cells, num_active, alteration_fraction.shape[0],
                      ws.mechanism_cells)
    at_start = ws.mechanism_cells.copy()
    for j in range(num_schedules):
        row = first_row + j
        ws.geno[:num_active] = start_geno
        ws.pheno[:num_active] = start_pheno
        ws.cells[:num_active] = start_cells
        ws.written[:num_active] = 0
        arise_day[:] = start_arise
        mech_cells_at_start[row] = at_start
        float_out[row, OUT_DAYS_TO_DIAGNOSIS] = days_to_diagnosis
        run_schedule(
            therapy_generators[row], model, schedules, schedule_ids[j], ws, num_active, dt_days,
            horizon_days, record_every_steps, arise_day, int_out[row], float_out[row],
            drug_days[row], mech_days[row], traj_day[row], traj_geno[row], traj_pheno[row],
            traj_cells[row], phase_day[row], phase_index[row], phase_reason[row],
        )


@njit(cache=True)
def append_generators(generators, into):
    """Append every Generator of a (reflected) Python list to a typed List, in order."""
    for generator in generators:
        into.append(generator)


@njit(cache=True, parallel=True)
def simulate_block(day_zero_generators, therapy_generators, model, schedules, schedule_ids,
                   initial_cells, phenotype_fraction, alteration_fraction, grow_to_cells, dt_days,
                   horizon_days, record_every_steps, max_compartments, int_out, float_out,
                   drug_days, mech_cells_at_start, mech_days, traj_day, traj_geno, traj_pheno,
                   traj_cells, phase_day, phase_index, phase_reason):
    """Run replicates in parallel, each through every schedule in ``schedule_ids``.

    Replicate i builds its day-0 tumour from ``day_zero_generators[i]`` once and
    forks it into each schedule j, which draws from
    ``therapy_generators[i * S + j]`` (S = len(schedule_ids)); output row
    i * S + j holds (replicate i, schedule j). Nothing depends on the thread
    count or on the other replicates in the block. (The per-replicate work is a
    separate function so that numba's parallel transforms leave it alone.)
    """
    num_schedules = schedule_ids.shape[0]
    for i in prange(len(day_zero_generators)):
        simulate_replicate(
            day_zero_generators[np.int64(i)], therapy_generators, i * num_schedules, model,
            schedules, schedule_ids, initial_cells, phenotype_fraction, alteration_fraction,
            grow_to_cells, dt_days, horizon_days, record_every_steps, max_compartments, int_out,
            float_out, drug_days, mech_cells_at_start, mech_days, traj_day, traj_geno,
            traj_pheno, traj_cells, phase_day, phase_index, phase_reason,
        )
