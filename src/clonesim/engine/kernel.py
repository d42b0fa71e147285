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

Kernels take arrays and a Generator only: no config, no I/O.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from clonesim.engine.birth_death import birth_death_step, integrated_cells

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


@njit(cache=True)
def compartment_rates(model, genotype, phenotype, signal, logistic_factor):
    """Per-cell rates of one compartment under signal s (DESIGN §1.2-1.4), per day.

    Returns (b, d, U) with
    b = b_p (1 - phi_p (1 - s)) * max(0, 1 - N/K),  d = d_p + k_p (1 - s),
    U = m_p * sum_{a not in g} u_a (mutation probability per division).
    Switching has its own sub-step (see switching_transition).
    """
    lack_signal = 1.0 - signal
    birth = (
        model.phenotype_birth_rate_per_day[phenotype]
        * (1.0 - model.phenotype_cytostatic_share[phenotype] * lack_signal)
        * logistic_factor
    )
    death = (
        model.phenotype_death_rate_per_day[phenotype]
        + model.phenotype_drug_kill_rate_per_day[phenotype] * lack_signal
    )
    mutation = 0.0
    rates = model.alteration_mutation_rate_per_division
    for a in range(rates.shape[0]):
        if not (genotype >> a) & 1:
            mutation += rates[a]
    mutation *= model.phenotype_mutation_rate_multiplier[phenotype]
    return birth, death, mutation


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
def _grow_new_cells(rng, model, genotype, phenotype, signal, logistic, born, parent_start,
                    parent_end, dt_days):
    """Advance ``born`` cells created inside a step to the step's end.

    Their birth times follow the parent's size, taken as exponential between its
    two ends; each new cell then follows the exact birth-death law of its own
    compartment for the rest of the step (a batch of more than
    MAX_INDIVIDUAL_ARRIVALS starts together at the mean birth time).
    Returns (cells at the step's end, earliest birth time within the step).
    """
    growth = 0.0
    if parent_start > 0 and parent_end > 0:
        growth = math.log(parent_end / parent_start) / dt_days
    birth, death, mutation = compartment_rates(model, genotype, phenotype, signal, logistic)
    birth *= 1.0 - mutation
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
        c, num_active = _find_or_add(
            arrivals_geno[i], arrivals_pheno[i], geno, pheno, cells, written, num_active
        )
        if c < 0:
            return -1
        cells[c] += arrivals_cells[i]
        if arrivals_cells[i] > 0:
            _mark_arisal(geno[c], pheno[c], num_alterations, day, arise_day)
    return num_active


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
def switching_transition(model, signal, duration_days, out):
    """P = expm(Q h): one cell's phenotype transition probabilities under switching alone.

    Q[p, q] = sigma_pq(s) for q != p and Q[p, p] = -sum_q sigma_pq(s) (per day);
    ``out[p, q]`` = P(a cell in p is in q after h days). Scaling and squaring
    with a 16-term Taylor series: accurate to rounding for these small matrices.
    """
    size = out.shape[0]
    generator = np.zeros((size, size))
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
    term = np.eye(size)
    scratch = np.empty((size, size))
    out[:, :] = np.eye(size)
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
def _switch(rng, geno, pheno, cells, written, num_active, transition, num_alterations, day,
            arrivals_geno, arrivals_pheno, arrivals_cells, arise_day):
    """Phenotype switching alone over a sub-step: whole cells move, none are made or lost.

    The n cells of (g, p) are spread over phenotypes by Multinomial(n, P[p, :]),
    P = ``transition`` (see switching_transition), drawn as conditional
    binomials (written out here rather than with multinomial_split: this is the
    hottest loop, and the inline form measured 20 % faster). Exact for pure
    switching. Returns the new number of compartments.
    """
    num_phenotypes = transition.shape[0]
    num_arrivals = 0
    for c in range(num_active):
        n = cells[c]
        if n == 0:
            continue
        p = pheno[c]
        leave_probability = 1.0 - transition[p, p]
        if leave_probability <= 0.0:
            continue
        leaving = rng.binomial(n, min(1.0, leave_probability))
        cells[c] = n - leaving
        last_target = -1
        for q in range(num_phenotypes):
            if q != p and transition[p, q] > 0.0:
                last_target = q
        remaining = leave_probability
        q = 0
        while leaving > 0 and q <= last_target:
            share = transition[p, q] if q != p else 0.0
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
def _advance(rng, model, geno, pheno, cells, written, num_active, dt_days, day_end,
             signal, transition, arrivals_geno, arrivals_pheno, arrivals_cells, arise_day,
             scratch_weights, scratch_counts):
    """Advance every compartment by one step; returns (num_active, total_cells) or (-1, 0).

    Strang splitting: switching for dt/2, then the exact birth-death step with
    mutation for dt, then switching for dt/2 (second order in dt for the mean).
    Rates, including the logistic factor, are taken at the start of the step;
    ``transition`` is switching_transition(model, signal, dt/2) (kept by the
    caller, so it is computed only when dt or the signal changes).
    """
    day_start = day_end - dt_days
    num_alterations = model.alteration_mutation_rate_per_division.shape[0]
    logistic = 1.0
    if model.carrying_capacity_cells < math.inf:
        logistic = max(0.0, 1.0 - _total(cells, num_active) / model.carrying_capacity_cells)
    if model.has_switching:
        num_active = _switch(rng, geno, pheno, cells, written, num_active, transition,
                             num_alterations, day_start, arrivals_geno, arrivals_pheno,
                             arrivals_cells, arise_day)
        if num_active < 0:
            return -1, np.int64(0)

    weights = scratch_weights[:num_alterations]
    counts = scratch_counts[:num_alterations]
    num_arrivals = 0
    for c in range(num_active):
        start = cells[c]
        if start == 0:
            continue
        g = geno[c]
        p = pheno[c]
        birth, death, mutation = compartment_rates(model, g, p, signal, logistic)
        end = birth_death_step(rng, start, birth * (1.0 - mutation), death, dt_days)
        if mutation > 0.0 and birth > 0.0:
            cell_days = integrated_cells(start, end, dt_days)
            mutants = rng.poisson(birth * mutation * cell_days)
            # Split over the alterations g lacks, in proportion to u_a.
            for a in range(num_alterations):
                lacks = not (g >> a) & 1
                weights[a] = model.alteration_mutation_rate_per_division[a] if lacks else 0.0
            multinomial_split(rng, mutants, weights, counts)
            for a in range(num_alterations):
                if counts[a] > 0:
                    mutant = g | (np.int64(1) << a)
                    grown, first_birth = _grow_new_cells(
                        rng, model, mutant, p, signal, logistic, counts[a], start, end, dt_days
                    )
                    _mark_arisal(mutant, p, num_alterations, day_end - dt_days + first_birth,
                                 arise_day)
                    arrivals_geno[num_arrivals] = mutant
                    arrivals_pheno[num_arrivals] = p
                    arrivals_cells[num_arrivals] = grown
                    num_arrivals += 1
        cells[c] = end

    num_active = _apply_arrivals(geno, pheno, cells, written, num_active, num_arrivals,
                                 arrivals_geno, arrivals_pheno, arrivals_cells, num_alterations,
                                 day_end, arise_day)
    if num_active >= 0 and model.has_switching:
        num_active = _switch(rng, geno, pheno, cells, written, num_active, transition,
                             num_alterations, day_end, arrivals_geno, arrivals_pheno,
                             arrivals_cells, arise_day)
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
def _record(day, geno, pheno, cells, written, num_active, rows, traj_day, traj_geno,
            traj_pheno, traj_cells):
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
def _seed_initial_tumour(rng, initial_cells, phenotype_fraction, alteration_fraction,
                         geno, pheno, cells, written):
    """Split ``initial_cells`` into compartments by the configured fractions.

    Phenotype q gets round(N f_q) cells (stochastic rounding), the founder the
    rest; within each phenotype, alteration a gets round(n_p f_a) single-mutant
    cells. Returns the number of compartments.
    """
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
def _grow_from_one_cell(rng, model, target_cells, dt_days, geno, pheno, cells, written,
                        arrivals_geno, arrivals_pheno, arrivals_cells, arise_day, scratch_weights,
                        scratch_counts):
    """Grow untreated from one founder cell until the burden reaches ``target_cells``.

    Conditioned on reaching it: a lineage that dies out is restarted from one
    cell on the same stream. Pre-growth ends at the first step end with the
    burden at or above the target; the final steps shrink geometrically (to at
    least MIN_PREGROWTH_STEP_FRACTION * dt) so that the overshoot is small.
    Returns (num_active, days taken, status); arise days are relative to the start.
    """
    num_alterations = model.alteration_mutation_rate_per_division.shape[0]
    num_phenotypes = model.phenotype_birth_rate_per_day.shape[0]
    transition = np.empty((num_phenotypes, num_phenotypes))
    transition_days = -1.0
    for _attempt in range(MAX_PREGROWTH_ATTEMPTS):
        arise_day[:] = np.nan
        geno[0] = 0
        pheno[0] = 0
        cells[0] = 1
        written[0] = 0
        num_active = 1
        total = np.int64(1)
        day = 0.0
        while 0 < total < target_cells:
            # Mean net growth rate of the tumour, to aim the last steps at the target.
            growth = 0.0
            logistic = 1.0
            if model.carrying_capacity_cells < math.inf:
                logistic = max(0.0, 1.0 - total / model.carrying_capacity_cells)
            for c in range(num_active):
                if cells[c] > 0:
                    b, d, _ = compartment_rates(model, geno[c], pheno[c], 1.0, logistic)
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
            if model.has_switching and step != transition_days:
                switching_transition(model, 1.0, 0.5 * step, transition)
                transition_days = step
            num_active, total = _advance(
                rng, model, geno, pheno, cells, written, num_active, step, day, 1.0, transition,
                arrivals_geno, arrivals_pheno, arrivals_cells, arise_day, scratch_weights,
                scratch_counts,
            )
            if num_active < 0:
                return 0, day, STATUS_TOO_MANY_COMPARTMENTS
            num_active = _compact(geno, pheno, cells, written, num_active)
        if total >= target_cells:
            _mark_arisal(np.int64(0), 0, num_alterations, 0.0, arise_day)
            return num_active, day, STATUS_ALIVE
    return 0, 0.0, STATUS_PREGROWTH_FAILED


@njit(cache=True)
def simulate_replicate(rng, model, initial_cells, phenotype_fraction, alteration_fraction,
                       grow_to_cells, dt_days, horizon_days, num_steps, record_every_steps,
                       max_compartments, traj_day, traj_geno, traj_pheno, traj_cells,
                       mech_cells_at_start, mech_arise_day):
    """Simulate one replicate from day 0 (after optional pre-growth) to the horizon.

    Writes the trajectory into the ``traj_*`` buffers and the per-mechanism
    results into ``mech_*``. Returns (status, stop_day, final_cells,
    days_to_diagnosis, trajectory_rows, compartment_steps), the last being the
    number of live compartments summed over the steps after day 0.
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
    # Scratch for multinomial splits over alterations or phenotypes.
    scratch_weights = np.zeros(max(num_alterations, num_phenotypes))
    scratch_counts = np.zeros(max(num_alterations, num_phenotypes), np.int64)
    mech_arise_day[:] = np.nan
    mech_cells_at_start[:] = 0

    days_to_diagnosis = np.nan
    if grow_to_cells > 0:
        num_active, days_to_diagnosis, status = _grow_from_one_cell(
            rng, model, grow_to_cells, dt_days, geno, pheno, cells, written,
            arrivals_geno, arrivals_pheno, arrivals_cells, mech_arise_day, scratch_weights,
            scratch_counts,
        )
        if status != STATUS_ALIVE:
            return status, np.nan, np.int64(0), days_to_diagnosis, 0, np.int64(0)
        for m in range(mech_arise_day.shape[0]):
            mech_arise_day[m] -= days_to_diagnosis
    else:
        num_active = _seed_initial_tumour(
            rng, initial_cells, phenotype_fraction, alteration_fraction,
            geno, pheno, cells, written,
        )
        for c in range(num_active):
            _mark_arisal(geno[c], pheno[c], num_alterations, 0.0, mech_arise_day)

    total = np.int64(0)
    for c in range(num_active):
        total += cells[c]
        for a in range(num_alterations):
            if (geno[c] >> a) & 1:
                mech_cells_at_start[a] += cells[c]
        if pheno[c] > 0:
            mech_cells_at_start[num_alterations + pheno[c] - 1] += cells[c]

    rows = _record(0.0, geno, pheno, cells, written, num_active, 0,
                   traj_day, traj_geno, traj_pheno, traj_cells)
    status = STATUS_ALIVE
    stop_day = np.nan
    day = 0.0
    signal = 1.0  # no drugs: every pathway signals fully
    compartment_steps = np.int64(0)  # live compartments summed over steps: the work done
    transition = np.empty((num_phenotypes, num_phenotypes))
    transition_days = -1.0
    for step in range(num_steps):
        day_end = min((step + 1) * dt_days, horizon_days)
        if step == num_steps - 1:
            day_end = horizon_days
        if model.has_switching and day_end - day != transition_days:
            transition_days = day_end - day
            switching_transition(model, signal, 0.5 * transition_days, transition)
        for c in range(num_active):
            if cells[c] > 0:
                compartment_steps += 1
        num_active, total = _advance(
            rng, model, geno, pheno, cells, written, num_active, day_end - day, day_end, signal,
            transition, arrivals_geno, arrivals_pheno, arrivals_cells, mech_arise_day,
            scratch_weights, scratch_counts,
        )
        day = day_end
        if num_active < 0:
            return (STATUS_TOO_MANY_COMPARTMENTS, day, np.int64(0), days_to_diagnosis, rows,
                    compartment_steps)
        if total == 0:
            status = STATUS_EXTINCT
        elif total >= model.lethal_cells:
            status = STATUS_DIED
        if status != STATUS_ALIVE or step == num_steps - 1 or (step + 1) % record_every_steps == 0:
            rows = _record(day, geno, pheno, cells, written, num_active, rows,
                           traj_day, traj_geno, traj_pheno, traj_cells)
        if status != STATUS_ALIVE:
            stop_day = day
            break
        num_active = _compact(geno, pheno, cells, written, num_active)
    return status, stop_day, total, days_to_diagnosis, rows, compartment_steps


@njit(cache=True, parallel=True)
def simulate_block(generators, model, initial_cells, phenotype_fraction, alteration_fraction,
                   grow_to_cells, dt_days, horizon_days, num_steps, record_every_steps,
                   max_compartments, status, stop_day, final_cells, days_to_diagnosis,
                   trajectory_rows, compartment_steps, traj_day, traj_geno, traj_pheno, traj_cells,
                   mech_cells_at_start, mech_arise_day):
    """Run ``len(generators)`` replicates in parallel; row i of every output is replicate i.

    Replicate i draws only from ``generators[i]``, so its result does not depend
    on the thread count or on the other replicates in the block.
    """
    for i in prange(len(generators)):
        rng = generators[np.int64(i)]
        s, stop, final, diagnosis, rows, work = simulate_replicate(
            rng, model, initial_cells, phenotype_fraction, alteration_fraction,
            grow_to_cells, dt_days, horizon_days, num_steps, record_every_steps,
            max_compartments, traj_day[i], traj_geno[i], traj_pheno[i], traj_cells[i],
            mech_cells_at_start[i], mech_arise_day[i],
        )
        status[i] = s
        stop_day[i] = stop
        final_cells[i] = final
        days_to_diagnosis[i] = diagnosis
        trajectory_rows[i] = rows
        compartment_steps[i] = work
