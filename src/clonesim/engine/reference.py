"""The exact reference engine: event-by-event Gillespie simulation (DESIGN §2-4).

This engine exists to verify the step-based clone engine
(:mod:`clonesim.engine.kernel`). It shares no code with it: it reads the same
:class:`~clonesim.model.compiled.CompiledModel` and simulates the continuous-time
Markov chain of the model one event at a time with Gillespie's direct method,
so it is exact but costs time proportional to the number of events. Use it on
small populations (up to ~1e4-1e5 cells). The only model-definition functions it
borrows are the dosing/exposure and pharmacodynamic formulas
(:mod:`clonesim.therapy.dosing`, :mod:`clonesim.model.pharmacodynamics`).

The model. A replicate is a list of compartments (genotype bit mask g, phenotype
p, cells n). Time runs on the step grid of :mod:`clonesim.therapy` (grid points
k dt, the current phase's ``day``/``after_days`` trigger, on/off boundaries of
dosing patterns, the horizon). Within a step every drug has a constant exposure
c_d (its exact mean over the step), so the signal s_g of each genotype is
constant, and with N the total burden and K the carrying capacity (infinite when
none) each compartment has these events, with rates per day:

* normal division, ``b (1 - U) n``: one more cell in (g, p);
* mutant division for each alteration a not in g, ``b u_a m_p n``: one more
  cell in (g | 1 << a, p), (g, p) unchanged;
* death, ``d n``: one cell fewer in (g, p);
* switch to phenotype q, ``sigma_pq n``: one cell moves from (g, p) to (g, q);

where ``b = b_p (1 - phi_p (1 - s_g)) max(0, 1 - N / K)``,
``d = d_p + k_p (1 - s_g) + sum_d extra_{d,p} H_d(c_d) / H_d(1)``,
``U = m_p sum_{a not in g} u_a`` and
``sigma_pq = sigma0_pq (s_g if scaled_by_signal else 1) + sigma_drug_pq (1 - s_g)``.
Untreated (no drug given, no drug left in the body) s_g = 1.

The direct method: with R the sum of all event rates, wait an exponential time
of rate R, then pick one event with probability (its rate) / R. All rates are
recomputed from the state before every event (N, and so b, changes with every
event). At a step end the clock stops (memorylessness makes that exact), the
step-end events and the current phase's trigger are evaluated, and the next
step starts with the new exposures. A replicate stops at the exact moment its
burden hits 0 (``extinct``) or reaches the lethal size (``died``), or at the
horizon (``alive``).

Events and triggers follow :mod:`clonesim.therapy` to the letter; every event
except arising is dated at the step end where it is evaluated. When a
replicate stops inside a step, the events of that stop are evaluated on the
frozen state at the end of that step (``stop_step_day``), like a step engine
would see them, while ``stop_day`` is the exact moment.

Each replicate draws from its own stream, ``PCG64(SeedSequence(seed,
spawn_key=(1_000_000, replicate)))``: independent of the main engine's streams
(spawn keys ``(point, replicate)``) and of the schedule, so every schedule
starts from the same day-0 tumour and runs on common random numbers until its
rates first differ from another schedule's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from clonesim.model.compiled import (
    PHASE_CHANGE_REASONS,
    TRIGGER_AFTER_DAYS,
    TRIGGER_BURDEN_ABOVE,
    TRIGGER_BURDEN_BELOW,
    TRIGGER_CTDNA,
    TRIGGER_DAY,
    TRIGGER_NONE,
    TRIGGER_PROGRESSION,
    CompiledModel,
)
from clonesim.model.pharmacodynamics import genotype_signal, hill_inhibition
from clonesim.therapy.dosing import (
    TIME_TOLERANCE_DAYS,
    drug_exposure_over_step,
    next_pattern_boundary,
)

#: First element of the spawn key of the reference engine's streams (the main engine uses
#: the sweep point, a small integer, there).
REFERENCE_STREAM_KEY = 1_000_000

#: Attempts at growing a tumour from one cell before giving up.
MAX_PREGROWTH_ATTEMPTS = 1_000_000

#: Times closer than this (days) are the same time (grid points, step points, samples).
TOL = TIME_TOLERANCE_DAYS

# Outcomes of ``_run_events``.
_REACHED_DAY = 0  # the clock passed ``until_day`` (state unchanged since the last event)
_EXTINCT = 1  # the burden hit 0 (at the returned day)
_REACHED_CELLS = 2  # the burden reached ``stop_at_cells`` (at the returned day)
_STALLED = 3  # every event rate is 0: the state is frozen until ``until_day``

# Event kinds, in the order of the columns of the per-compartment rate table.
_NORMAL_DIVISION = 0
_DEATH = 1
_FIRST_MUTANT = 2  # columns 2 .. 2 + A - 1: mutant division for alteration a
# columns 2 + A .. 2 + A + P - 1: switch to phenotype q

# Rows of the per-phenotype table handed to the event loop.
_ROW_BIRTH, _ROW_DEATH, _ROW_KILL, _ROW_CYTOSTATIC, _ROW_EXTRA_DEATH = range(5)


@dataclass
class ReferenceResult:
    """One replicate of one schedule simulated by the reference engine.

    Attributes
    ----------
    status : str
        ``"alive"`` at the horizon, ``"extinct"`` (burden hit 0) or ``"died"``
        (burden reached ``lethal_cells``).
    stop_day : float
        Exact day of extinction or death (days after day 0); NaN when alive.
    final_cells : int
        Burden (cells) at the stop, or at the horizon when alive.
    days_to_diagnosis : float
        Days of pre-growth from one cell to ``grow_from_single_cell_to`` cells
        (of the successful attempt); NaN without pre-growth.
    snapshot_days : numpy.ndarray
        The requested record days (float64, days).
    snapshots : list of dict
        One dict per record day: ``{(genotype, phenotype): cells}`` for every
        compartment holding cells on that day. A record day after a stop holds
        the state at the stop (empty after extinction).
    arise_day : numpy.ndarray
        (M,) float64, per mechanism (``model.mechanism_names``: alterations, then
        non-founder phenotypes): the exact first day any cell carried it. 0.0 if
        in the initial tumour, <= 0 if it arose during pre-growth (relative to
        diagnosis), NaN if never.
    cells_at_start : numpy.ndarray
        (M,) int64, cells carrying each mechanism at day 0.
    schedule : str
        Name of the schedule simulated (``"untreated"`` without schedules).
    stop_step_day : float
        End of the step in which the replicate stopped (the day a step engine
        reports extinction or death); NaN when alive.
    progressed : bool
        Whether the schedule progressed (a progression that did not end a phase
        through a ``progression`` trigger).
    ttp_days : float
        Day of the schedule's progression; NaN when it did not progress
        (censored at the horizon, or at the stop).
    best_response : str
        ``"CR"``, ``"PR"``, ``"SD"`` or ``"PD"``.
    nadir_cells : int
        Least burden at a step end (day 0 included) up to the schedule's
        progression (over the whole run when it did not progress).
    nadir_day : float
        First step end at which ``nadir_cells`` was seen.
    mechanism_at_progression : str or None
        Mechanism that made most of the regrowth from the line's nadir to the
        schedule's progression (``"none"`` when no mechanism grew); None when it
        did not progress.
    mechanism_share_at_progression : float
        That mechanism's share of the burden at progression; NaN when none.
    drug_days : dict of str to float
        Standard doses given, per drug in ``model.drug_names`` order.
    established_day, dominant_day, ctdna_detect_day : numpy.ndarray
        (M,) float64, per mechanism: first step end with cells >=
        established_cells, with cells > N / 2, and first ctDNA sample with
        VAF = carriers / (2 N) >= detection limit (alterations only; NaN for
        phenotypes). NaN when it never happened.
    phase_changes : list of tuple
        ``(day, phase index entered, reason)``, starting with ``(0.0, 0, "start")``;
        reasons are names from ``PHASE_CHANGE_REASONS``.
    """

    status: str
    stop_day: float
    final_cells: int
    days_to_diagnosis: float
    snapshot_days: np.ndarray
    snapshots: list[dict[tuple[int, int], int]]
    arise_day: np.ndarray
    cells_at_start: np.ndarray
    schedule: str = "untreated"
    stop_step_day: float = math.nan
    progressed: bool = False
    ttp_days: float = math.nan
    best_response: str = "SD"
    nadir_cells: int = 0
    nadir_day: float = 0.0
    mechanism_at_progression: str | None = None
    mechanism_share_at_progression: float = math.nan
    drug_days: dict[str, float] = field(default_factory=dict)
    established_day: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dominant_day: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ctdna_detect_day: np.ndarray = field(default_factory=lambda: np.zeros(0))
    phase_changes: list[tuple[float, int, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- event loop


@njit(cache=True)
def _mark_arising(genotype, phenotype, num_alterations, day, arise_day):
    """Set ``arise_day[m] = day`` for every not-yet-seen mechanism a cell of (g, p) carries."""
    for a in range(num_alterations):
        if (genotype >> a) & 1 and math.isnan(arise_day[a]):
            arise_day[a] = day
    if phenotype > 0 and math.isnan(arise_day[num_alterations + phenotype - 1]):
        arise_day[num_alterations + phenotype - 1] = day


@njit(cache=True)
def _add_cell(genotype, phenotype, genotype_signal_value, geno, pheno, cells, signal, count):
    """Add one cell to compartment (genotype, phenotype), creating it when absent.

    A new compartment gets ``genotype_signal_value`` as its signal s_g.
    Returns (count, geno, pheno, cells, signal); the arrays are reallocated
    (doubled) when full.
    """
    for c in range(count):
        if geno[c] == genotype and pheno[c] == phenotype:
            cells[c] += 1
            return count, geno, pheno, cells, signal
    if count == geno.shape[0]:
        size = 2 * count
        bigger_geno = np.zeros(size, np.int64)
        bigger_pheno = np.zeros(size, np.int64)
        bigger_cells = np.zeros(size, np.int64)
        bigger_signal = np.zeros(size, np.float64)
        bigger_geno[:count] = geno[:count]
        bigger_pheno[:count] = pheno[:count]
        bigger_cells[:count] = cells[:count]
        bigger_signal[:count] = signal[:count]
        geno, pheno, cells, signal = bigger_geno, bigger_pheno, bigger_cells, bigger_signal
    geno[count] = genotype
    pheno[count] = phenotype
    cells[count] = 1
    signal[count] = genotype_signal_value
    return count + 1, geno, pheno, cells, signal


@njit(cache=True)
def _remove_cell(c, geno, pheno, cells, signal, count):
    """Remove one cell from compartment c; an emptied compartment is dropped. Returns count."""
    cells[c] -= 1
    if cells[c] == 0:
        last = count - 1
        geno[c] = geno[last]
        pheno[c] = pheno[last]
        cells[c] = cells[last]
        signal[c] = signal[last]
        cells[last] = 0
        return last
    return count


@njit(cache=True)
def _run_events(rng, phenotype_table, mutation, switching, carrying_capacity,
                exposure, driver_mask, pathway_mask, ic50_fold, target_ic50, target_hill,
                target_max_inhibition, geno, pheno, cells, count, day, until_day, stop_at_cells,
                arise_day):
    """Gillespie direct method from ``day`` until ``until_day`` or a stop, at fixed exposures.

    Parameters
    ----------
    rng : numpy.random.Generator
        The replicate's stream.
    phenotype_table : numpy.ndarray
        (5, P) per phenotype: base birth b_p, base death d_p, drug kill k_p,
        cytostatic share phi_p, and the drugs' extra death over this interval
        (all per day).
    mutation : numpy.ndarray
        (P, A) probability per division that it is a mutant division for
        alteration a (u_a m_p).
    switching : numpy.ndarray
        (3, P, P) per-cell switch rates [from, to]: sigma_0, sigma_drug, and
        1.0 where sigma_0 is scaled by the signal (zero diagonals).
    carrying_capacity : float
        K in cells (``inf`` for none); birth is multiplied by max(0, 1 - N/K).
    exposure : numpy.ndarray
        (D,) drug exposures, constant over the interval.
    driver_mask, pathway_mask, ic50_fold, target_ic50, target_hill, target_max_inhibition
        Pharmacodynamic tables of :func:`clonesim.model.pharmacodynamics.genotype_signal`.
    geno, pheno, cells : numpy.ndarray
        Compartments 0..count-1 (int64 genotype mask, phenotype, cells > 0).
    count : int
        Number of compartments.
    day : float
        Current time (days).
    until_day : float
        Stop when the next event would come after this day (may be ``inf``).
    stop_at_cells : int
        Stop as soon as the burden is >= this many cells.
    arise_day : numpy.ndarray
        (A + P - 1,) first-arising days, updated in place with event days.

    Returns
    -------
    tuple
        (outcome, day, count, geno, pheno, cells): the outcome code, the day
        reached (``until_day`` for ``_REACHED_DAY`` and ``_STALLED``, the event
        day otherwise) and the (possibly reallocated) compartment arrays.
    """
    num_phenotypes = mutation.shape[0]
    num_alterations = mutation.shape[1]
    num_kinds = _FIRST_MUTANT + num_alterations + num_phenotypes
    first_switch = _FIRST_MUTANT + num_alterations
    base_birth = phenotype_table[_ROW_BIRTH]
    base_death = phenotype_table[_ROW_DEATH]
    kill = phenotype_table[_ROW_KILL]
    cytostatic = phenotype_table[_ROW_CYTOSTATIC]
    extra_death = phenotype_table[_ROW_EXTRA_DEATH]

    # The signal of each compartment's genotype under this interval's exposures.
    signal = np.zeros(geno.shape[0], np.float64)
    for c in range(count):
        signal[c] = genotype_signal(geno[c], exposure, driver_mask, pathway_mask, ic50_fold,
                                    target_ic50, target_hill, target_max_inhibition)
    rates = np.zeros((geno.shape[0], num_kinds))
    total = np.int64(0)
    for c in range(count):
        total += cells[c]
    while True:
        if total == 0:
            return _EXTINCT, day, count, geno, pheno, cells
        if total >= stop_at_cells:
            return _REACHED_CELLS, day, count, geno, pheno, cells

        # Event rates of every compartment, from the current state.
        logistic = 1.0
        if carrying_capacity < math.inf:
            logistic = max(0.0, 1.0 - total / carrying_capacity)
        if rates.shape[0] < geno.shape[0]:
            rates = np.zeros((geno.shape[0], num_kinds))
        total_rate = 0.0
        for c in range(count):
            g = geno[c]
            p = pheno[c]
            n = cells[c]
            lack = 1.0 - signal[c]
            b = base_birth[p] * (1.0 - cytostatic[p] * lack) * logistic
            d = base_death[p] + kill[p] * lack + extra_death[p]
            mutant_share = 0.0  # U = m_p * sum of u_a over alterations g lacks
            for a in range(num_alterations):
                if (g >> a) & 1:
                    rates[c, _FIRST_MUTANT + a] = 0.0
                else:
                    rates[c, _FIRST_MUTANT + a] = b * mutation[p, a] * n
                    mutant_share += mutation[p, a]
            rates[c, _NORMAL_DIVISION] = b * (1.0 - mutant_share) * n
            rates[c, _DEATH] = d * n
            for q in range(num_phenotypes):
                sigma = switching[1, p, q] * lack
                if switching[2, p, q] != 0.0:
                    sigma += switching[0, p, q] * signal[c]
                else:
                    sigma += switching[0, p, q]
                rates[c, first_switch + q] = sigma * n
            for k in range(num_kinds):
                total_rate += rates[c, k]

        if not total_rate > 0.0:
            return _STALLED, until_day, count, geno, pheno, cells
        wait = rng.standard_exponential() / total_rate
        if day + wait > until_day:
            # Memoryless: the state holds until until_day; the caller may resume from there.
            return _REACHED_DAY, until_day, count, geno, pheno, cells
        day += wait

        # Pick the event: walk the cumulative rates up to a uniform point in [0, total_rate).
        point = rng.random() * total_rate
        chosen_c = -1
        chosen_k = -1
        cumulative = 0.0
        for c in range(count):
            for k in range(num_kinds):
                if rates[c, k] > 0.0:
                    cumulative += rates[c, k]
                    # The last positive event also takes any rounding remainder.
                    chosen_c = c
                    chosen_k = k
                    if point < cumulative:
                        break
            if point < cumulative:
                break

        g = geno[chosen_c]
        p = pheno[chosen_c]
        if chosen_k == _NORMAL_DIVISION:
            cells[chosen_c] += 1
            total += 1
        elif chosen_k == _DEATH:
            count = _remove_cell(chosen_c, geno, pheno, cells, signal, count)
            total -= 1
        elif chosen_k < first_switch:
            new_genotype = g | (np.int64(1) << (chosen_k - _FIRST_MUTANT))
            new_signal = genotype_signal(new_genotype, exposure, driver_mask, pathway_mask,
                                         ic50_fold, target_ic50, target_hill,
                                         target_max_inhibition)
            count, geno, pheno, cells, signal = _add_cell(new_genotype, p, new_signal, geno,
                                                          pheno, cells, signal, count)
            _mark_arising(new_genotype, p, num_alterations, day, arise_day)
            total += 1
        else:
            q = chosen_k - first_switch
            # Add first, then remove: removal may move the last compartment into chosen_c.
            count, geno, pheno, cells, signal = _add_cell(g, q, signal[chosen_c], geno, pheno,
                                                          cells, signal, count)
            count = _remove_cell(chosen_c, geno, pheno, cells, signal, count)
            _mark_arising(g, q, num_alterations, day, arise_day)


@njit(cache=True)
def _mechanism_cells(geno, pheno, cells, count, num_alterations, num_phenotypes):
    """(burden N, (A + P - 1,) cells carrying each mechanism) of the compartments."""
    carried = np.zeros(num_alterations + num_phenotypes - 1, np.int64)
    total = np.int64(0)
    for c in range(count):
        n = cells[c]
        total += n
        for a in range(num_alterations):
            if (geno[c] >> a) & 1:
                carried[a] += n
        if pheno[c] > 0:
            carried[num_alterations + pheno[c] - 1] += n
    return total, carried


# --------------------------------------------------------------------------- Python driver


class _State:
    """Compartments of one replicate (arrays as the event loop takes them)."""

    def __init__(self, compartments: dict[tuple[int, int], int]):
        items = [(key, n) for key, n in compartments.items() if n > 0]
        size = max(8, 2 * len(items))
        self.geno = np.zeros(size, np.int64)
        self.pheno = np.zeros(size, np.int64)
        self.cells = np.zeros(size, np.int64)
        for c, ((g, p), n) in enumerate(items):
            self.geno[c], self.pheno[c], self.cells[c] = g, p, n
        self.count = len(items)

    def snapshot(self) -> dict[tuple[int, int], int]:
        return {
            (int(self.geno[c]), int(self.pheno[c])): int(self.cells[c])
            for c in range(self.count)
            if self.cells[c] > 0
        }

    def total(self) -> int:
        return int(self.cells[: self.count].sum())


class _Tables:
    """The model's rate tables; ``run`` advances a state at given drug exposures."""

    def __init__(self, model: CompiledModel):
        k = model.kernel
        num_p, num_a = model.num_phenotypes, model.num_alterations
        self.num_drugs = len(k.drug_elimination_per_day)
        self.phenotype_table = np.ascontiguousarray(np.vstack([
            k.phenotype_birth_rate_per_day,
            k.phenotype_death_rate_per_day,
            k.phenotype_drug_kill_rate_per_day,
            k.phenotype_cytostatic_share,
            np.zeros(num_p),  # extra death: filled per step from the exposures
        ]).astype(np.float64))
        self.mutation = np.ascontiguousarray(
            np.outer(k.phenotype_mutation_rate_multiplier, k.alteration_mutation_rate_per_division),
            dtype=np.float64,
        ).reshape(num_p, num_a)
        switching = np.stack([
            np.asarray(k.switch_rate_per_day, dtype=np.float64),
            np.asarray(k.switch_drug_induced_rate_per_day, dtype=np.float64),
            np.asarray(k.switch_scaled_by_signal, dtype=np.float64),
        ]).reshape(3, num_p, num_p)
        for table in switching[:2]:
            np.fill_diagonal(table, 0.0)  # a switch p -> p changes nothing
        self.switching = np.ascontiguousarray(switching)
        self.carrying_capacity = float(k.carrying_capacity_cells)
        self.lethal_cells = int(k.lethal_cells)
        self.driver_mask = np.int64(k.driver_pathway_mask)
        self.pathway_mask = np.ascontiguousarray(k.alteration_pathway_mask, dtype=np.int64)
        self.ic50_fold = np.ascontiguousarray(k.alteration_ic50_fold, dtype=np.float64
                                              ).reshape(num_a, self.num_drugs)
        num_r = len(model.pathway_names)
        self.target_ic50 = np.ascontiguousarray(k.drug_target_ic50, dtype=np.float64
                                                ).reshape(self.num_drugs, num_r)
        self.target_hill = np.ascontiguousarray(k.drug_target_hill, dtype=np.float64
                                                ).reshape(self.num_drugs, num_r)
        self.target_max = np.ascontiguousarray(k.drug_target_max_inhibition, dtype=np.float64
                                               ).reshape(self.num_drugs, num_r)
        extra = np.asarray(k.drug_extra_death_per_day, dtype=np.float64).reshape(self.num_drugs,
                                                                                num_p)
        # Extra death of phenotype p by drug d: extra_{d,p} H_d(c) / H_d(1), H(c) = c^n/(IC50^n+c^n).
        self.extra_death = [
            (d, extra[d], float(k.drug_extra_death_ic50[d]), float(k.drug_extra_death_hill[d]))
            for d in range(self.num_drugs) if np.any(extra[d] > 0.0)
        ]
        self.exposure = np.zeros(self.num_drugs)

    def set_exposure(self, exposure: np.ndarray) -> None:
        """Use these (D,) drug exposures (constant over the coming interval) from now on."""
        self.exposure = np.ascontiguousarray(exposure, dtype=np.float64)
        extra = self.phenotype_table[_ROW_EXTRA_DEATH]
        extra[:] = 0.0
        for d, per_phenotype, ic50, hill in self.extra_death:
            effect = hill_inhibition(float(self.exposure[d]), ic50, hill, 1.0)
            if effect > 0.0:
                extra += per_phenotype * (effect / hill_inhibition(1.0, ic50, hill, 1.0))

    def run(self, rng, state: _State, day: float, until_day: float, stop_at_cells: int,
            arise_day: np.ndarray) -> tuple[int, float]:
        """Advance ``state`` in place; returns (outcome, day reached)."""
        outcome, day, state.count, state.geno, state.pheno, state.cells = _run_events(
            rng, self.phenotype_table, self.mutation, self.switching, self.carrying_capacity,
            self.exposure, self.driver_mask, self.pathway_mask, self.ic50_fold,
            self.target_ic50, self.target_hill, self.target_max,
            state.geno, state.pheno, state.cells, state.count, float(day), float(until_day),
            np.int64(stop_at_cells), arise_day,
        )
        return int(outcome), float(day)


def _stochastic_round(rng: np.random.Generator, x: float) -> int:
    """floor(x) + Bernoulli(x - floor(x)) (no draw when x is whole)."""
    whole = math.floor(x)
    fraction = x - whole
    if fraction > 0.0 and rng.random() < fraction:
        whole += 1
    return int(whole)


def _initial_tumour(model: CompiledModel, rng: np.random.Generator) -> dict[tuple[int, int], int]:
    """Split ``model.initial_cells`` into compartments by the configured fractions.

    Phenotype q > 0 gets round(N f_q) cells, the founder phenotype the rest;
    within a phenotype of n_p cells, alteration a gets round(n_p f_a)
    single-alteration cells (genotype 1 << a), the founder genotype the rest.
    round is stochastic rounding; a share never takes more than what is left.
    """
    total = model.initial_cells
    num_phenotypes = model.num_phenotypes
    per_phenotype = [0] * num_phenotypes
    left = total
    for q in range(1, num_phenotypes):
        share = min(left, _stochastic_round(rng, total * model.initial_phenotype_fraction[q]))
        per_phenotype[q] = share
        left -= share
    per_phenotype[0] = left
    compartments: dict[tuple[int, int], int] = {}
    for p, n_p in enumerate(per_phenotype):
        left = n_p
        for a in range(model.num_alterations):
            share = min(left, _stochastic_round(rng, n_p * model.initial_alteration_fraction[a]))
            if share > 0:
                compartments[(1 << a, p)] = share
                left -= share
        if left > 0:
            compartments[(0, p)] = left
    return compartments


def _check_record_days(model: CompiledModel, record_days) -> np.ndarray:
    if record_days is None:
        return np.array([0.0, model.horizon_days])
    days = np.asarray(record_days, dtype=np.float64).ravel()
    if days.size and (
        not np.all(np.isfinite(days))
        or days[0] < 0.0
        or days[-1] > model.horizon_days
        or np.any(np.diff(days) < 0.0)
    ):
        raise ValueError(
            f"record_days must be sorted and within [0, horizon_days={model.horizon_days:g}]"
        )
    return days


def _day_zero_tumour(model: CompiledModel, tables: _Tables, rng: np.random.Generator,
                     arise_day: np.ndarray) -> tuple[_State, float]:
    """The day-0 tumour (initial fractions, or untreated pre-growth from one cell).

    Returns (state, days to diagnosis or NaN); fills ``arise_day`` for what is
    present at day 0 (pre-growth arising days shifted to be <= 0).
    """
    num_alterations = model.num_alterations
    if model.grow_from_single_cell_to <= 0:
        state = _State(_initial_tumour(model, rng))
        for c in range(state.count):
            for a in range(num_alterations):
                if (state.geno[c] >> a) & 1:
                    arise_day[a] = 0.0
            if state.pheno[c] > 0:
                arise_day[num_alterations + state.pheno[c] - 1] = 0.0
        return state, math.nan
    target = model.grow_from_single_cell_to
    for _attempt in range(MAX_PREGROWTH_ATTEMPTS):
        arise_day[:] = np.nan
        state = _State({(0, 0): 1})
        outcome, pregrowth_day = tables.run(rng, state, 0.0, math.inf, target, arise_day)
        if outcome == _REACHED_CELLS:
            arise_day -= pregrowth_day
            return state, pregrowth_day
        if outcome == _STALLED:
            raise RuntimeError("pre-growth stalled: every event rate is 0")
    raise RuntimeError(
        f"pre-growth did not reach {target} cells in {MAX_PREGROWTH_ATTEMPTS} attempts"
    )


# --------------------------------------------------------------------------- schedules


@dataclass
class _Phase:
    """One phase of a schedule: its trigger and how each drug is given (arrays over D)."""

    trigger: int
    value: float
    dose: np.ndarray
    every_days: np.ndarray
    on_days: np.ndarray
    off_days: np.ndarray
    patterned: list[int]  # drugs given with holidays (their on/off switches are step points)


@dataclass
class _Schedule:
    name: str
    phases: list[_Phase]
    repeat: bool
    from_baseline: bool


def _schedule(model: CompiledModel, schedule: int | str) -> _Schedule:
    """The phases of schedule ``schedule`` (index or name) from ``model.schedules``."""
    names = model.schedule_names
    if isinstance(schedule, str):
        if schedule not in names:
            raise ValueError(f"unknown schedule {schedule!r}; known: {list(names)}")
        index = names.index(schedule)
    else:
        index = int(schedule)
        if not 0 <= index < len(names):
            raise ValueError(f"schedule index {index} out of range (0..{len(names) - 1})")
    tables = model.schedules
    num_drugs = len(model.drug_names)
    if tables is None:  # a model compiled without schedule tables: untreated
        no_drug = np.zeros(num_drugs)
        phase = _Phase(TRIGGER_NONE, 0.0, no_drug, np.ones(num_drugs),
                       np.full(num_drugs, math.inf), no_drug, [])
        return _Schedule(names[index], [phase], False, False)
    phases = []
    first = int(tables.first_phase[index])
    for f in range(first, first + int(tables.num_phases[index])):
        dose = np.asarray(tables.dose[f], dtype=np.float64).reshape(num_drugs)
        on = np.asarray(tables.on_days[f], dtype=np.float64).reshape(num_drugs)
        off = np.asarray(tables.off_days[f], dtype=np.float64).reshape(num_drugs)
        patterned = [d for d in range(num_drugs)
                     if dose[d] > 0.0 and math.isfinite(on[d]) and off[d] > 0.0]
        phases.append(_Phase(int(tables.trigger_kind[f]), float(tables.trigger_value[f]), dose,
                             np.asarray(tables.every_days[f], dtype=np.float64).reshape(num_drugs),
                             on, off, patterned))
    return _Schedule(names[index], phases, bool(tables.repeat[index]),
                     bool(tables.baseline_reference[index]))


class _Therapy:
    """One replicate under one schedule from day 0 to the horizon or a stop.

    Holds the phase, the drug concentrations and the event bookkeeping of
    :mod:`clonesim.therapy`; the cells are advanced by ``_Tables.run``.
    """

    def __init__(self, model: CompiledModel, tables: _Tables, schedule: _Schedule,
                 state: _State):
        k = model.kernel
        self.model = model
        self.k = k
        self.tables = tables
        self.schedule = schedule
        self.state = state
        self.num_alterations = model.num_alterations
        self.num_phenotypes = model.num_phenotypes
        num_mechanisms = len(model.mechanism_names)
        num_drugs = len(model.drug_names)
        self.elimination = np.asarray(k.drug_elimination_per_day, dtype=np.float64
                                      ).reshape(num_drugs)
        self.concentration = np.zeros(num_drugs)
        self.exposure = np.zeros(num_drugs)
        self.drug_days = np.zeros(num_drugs)
        # Day each drug's dosing pattern started: a drug given the same way in the next
        # phase keeps its dosing times; otherwise its pattern restarts at the change.
        self.dose_origin = np.zeros(num_drugs)

        self.phase = 0
        self.phase_start = 0.0
        self.phase_changes: list[tuple[float, int, str]] = [(0.0, 0, PHASE_CHANGE_REASONS[0])]

        self.baseline = state.total()  # N0
        self.nadir = self.baseline
        self.nadir_day = 0.0
        self.line_nadir = self.baseline
        self.progressed = False
        self.ttp = math.nan
        self.mechanism_at_progression: str | None = None
        self.mechanism_share_at_progression = math.nan
        # Cells per mechanism at the current line's nadir (the regrowth is measured from it).
        _, self.carried = _mechanism_cells(state.geno, state.pheno, state.cells, state.count,
                                           self.num_alterations, self.num_phenotypes)
        self.carried_at_line_nadir = self.carried.copy()
        self.established_day = np.full(num_mechanisms, np.nan)
        self.dominant_day = np.full(num_mechanisms, np.nan)
        self.ctdna_detect_day = np.full(num_mechanisms, np.nan)
        # What the last step end saw (the triggers read it).
        self.burden = self.baseline
        self.progression_now = False
        self.ctdna_detected_now = np.zeros(self.num_alterations, dtype=bool)

    # ----------------------------------------------------------------- time grid

    def next_step_end(self, t: float) -> float:
        """The next step point after t: grid point, horizon, or a step point of the phase."""
        model = self.model
        end = min((math.floor((t + TOL) / model.dt_days) + 1) * model.dt_days, model.horizon_days)
        phase = self.schedule.phases[self.phase]
        points = []
        if phase.trigger == TRIGGER_DAY:
            points.append(phase.value)
        elif phase.trigger == TRIGGER_AFTER_DAYS:
            points.append(self.phase_start + phase.value)
        for d in phase.patterned:
            points.append(self.dose_origin[d] + next_pattern_boundary(
                t - self.dose_origin[d], phase.on_days[d], phase.off_days[d]))
        every = self.k.ctdna_every_days  # liquid biopsies are step points too
        points.append((math.floor((t + TOL) / every) + 1) * every)
        for point in points:
            if t + TOL < point < end:
                end = point
        return end

    def set_step_exposure(self, t: float, step_end: float) -> None:
        """Mean exposure of every drug over [t, step_end); carries concentrations, counts doses."""
        phase = self.schedule.phases[self.phase]
        for d in range(self.exposure.shape[0]):
            if phase.dose[d] <= 0.0 and self.elimination[d] <= 0.0:
                self.exposure[d] = 0.0  # not given, no half-life: nothing in the body
                continue
            mean, end, given = drug_exposure_over_step(
                float(self.concentration[d]), float(self.elimination[d]), t, step_end,
                float(self.dose_origin[d]), float(phase.dose[d]), float(phase.every_days[d]),
                float(phase.on_days[d]), float(phase.off_days[d]),
            )
            self.exposure[d] = mean
            self.concentration[d] = end
            self.drug_days[d] += given
        self.tables.set_exposure(self.exposure)

    # ----------------------------------------------------------------- step-end events

    def _is_ctdna_sample_day(self, t: float) -> bool:
        every = self.k.ctdna_every_days
        return abs(t - round(t / every) * every) <= TOL

    def step_end_events(self, t: float) -> None:
        """Nadir, progression, per-mechanism days and ctDNA at the step end t."""
        state = self.state
        burden, carried = _mechanism_cells(state.geno, state.pheno, state.cells, state.count,
                                           self.num_alterations, self.num_phenotypes)
        burden = int(burden)
        self.burden = burden
        self.carried = carried
        k = self.k
        if not self.progressed and burden < self.nadir:
            self.nadir, self.nadir_day = burden, t
        if burden < self.line_nadir:
            self.line_nadir = burden
            self.carried_at_line_nadir = carried.copy()
        reference = self.baseline if self.schedule.from_baseline else self.line_nadir
        self.progression_now = (burden >= k.progression_burden_factor * reference
                                and burden >= k.detection_cells)
        if self.progression_now and not self.progressed:
            phase = self.schedule.phases[self.phase]
            changes_line = (phase.trigger == TRIGGER_PROGRESSION
                            and t > self.phase_start + TOL)
            if not changes_line:
                self.progressed, self.ttp = True, t
                # The mechanism that made most of the regrowth since the line's nadir.
                grown = carried.astype(np.int64) - self.carried_at_line_nadir.astype(np.int64)
                most = int(np.argmax(grown)) if grown.size else 0
                if grown.size and grown[most] > 0:
                    self.mechanism_at_progression = self.model.mechanism_names[most]
                    self.mechanism_share_at_progression = carried[most] / burden
                else:
                    self.mechanism_at_progression = "none"
        for m in range(carried.shape[0]):
            if math.isnan(self.established_day[m]) and carried[m] >= k.established_cells:
                self.established_day[m] = t
            if burden > 0 and math.isnan(self.dominant_day[m]) and 2 * carried[m] > burden:
                self.dominant_day[m] = t
        self.ctdna_detected_now[:] = False
        if burden > 0 and self._is_ctdna_sample_day(t):
            for a in range(self.num_alterations):
                if carried[a] / (2.0 * burden) >= k.ctdna_detection_vaf:
                    self.ctdna_detected_now[a] = True
                    if math.isnan(self.ctdna_detect_day[a]):
                        self.ctdna_detect_day[a] = t

    def triggers(self, t: float) -> None:
        """Fire the current phase's trigger at t, then the next phase's, at most one pass."""
        phases = self.schedule.phases
        for _ in range(len(phases)):
            phase = phases[self.phase]
            kind, value = phase.trigger, phase.value
            just_started = t <= self.phase_start + TOL
            if kind == TRIGGER_DAY:
                fire = not just_started and t >= value - TOL
            elif kind == TRIGGER_AFTER_DAYS:
                fire = not just_started and t >= self.phase_start + value - TOL
            elif kind == TRIGGER_PROGRESSION:
                fire = not just_started and self.progression_now
            elif kind == TRIGGER_CTDNA:
                fire = bool(self.ctdna_detected_now[int(value)])
            elif kind == TRIGGER_BURDEN_BELOW:
                fire = not just_started and self.burden < value * self.baseline
            elif kind == TRIGGER_BURDEN_ABOVE:
                fire = not just_started and self.burden > value * self.baseline
            else:
                fire = False
            if not fire:
                return
            previous = self.phase
            if self.phase + 1 < len(phases):
                self.phase += 1
            elif self.schedule.repeat:
                self.phase = 0
            else:  # the config validation rules this out; the phase then runs on
                return
            if kind == TRIGGER_PROGRESSION:
                self.line_nadir = self.burden  # a new line of therapy
                self.carried_at_line_nadir = self.carried.copy()
            old, new = phases[previous], phases[self.phase]
            for d in range(self.dose_origin.shape[0]):
                same = (old.dose[d] > 0 and old.dose[d] == new.dose[d]
                        and old.every_days[d] == new.every_days[d]
                        and old.on_days[d] == new.on_days[d]
                        and old.off_days[d] == new.off_days[d])
                if not same:
                    self.dose_origin[d] = t
            self.phase_start = t
            self.phase_changes.append((t, self.phase, PHASE_CHANGE_REASONS[kind]))

    def best_response(self) -> str:
        k = self.k
        if self.nadir < k.detection_cells:
            return "CR"
        if self.nadir <= k.response_burden_factor * self.baseline:
            return "PR"
        if self.progressed and self.ttp < k.stable_disease_min_days:
            return "PD"
        return "SD"


# --------------------------------------------------------------------------- entry points


def simulate_reference(model: CompiledModel, seed: int, replicate: int,
                       record_days=None, schedule: int | str = 0) -> ReferenceResult:
    """Simulate one replicate under one schedule exactly, event by event (Gillespie).

    Parameters
    ----------
    model : CompiledModel
        The compiled model (see the module docstring for the rules simulated).
    seed : int
        Run seed; with ``replicate`` it fixes the random stream
        ``PCG64(SeedSequence(seed, spawn_key=(1_000_000, replicate)))``.
    replicate : int
        Replicate index (>= 0).
    record_days : array_like of float, optional
        Sorted days in [0, ``model.horizon_days``] at which to snapshot the
        compartments. Default: ``[0, horizon_days]``.
    schedule : int or str, optional
        Index into (or name in) ``model.schedule_names``; default the first.
        Every schedule starts from the same day-0 tumour (the stream does not
        depend on the schedule).

    Returns
    -------
    ReferenceResult
        Status, stop days, final cells, days to diagnosis, snapshots,
        per-mechanism days, and the schedule's events (see its attributes).

    Raises
    ------
    ValueError
        If ``record_days`` is not sorted within [0, horizon_days], or the
        schedule is unknown.
    RuntimeError
        If pre-growth cannot reach ``grow_from_single_cell_to`` (all rates 0,
        or ``MAX_PREGROWTH_ATTEMPTS`` lineages died out).

    Notes
    -----
    With ``model.grow_from_single_cell_to > 0`` the tumour first grows untreated
    from one founder cell (genotype 0, phenotype 0) until its burden first
    reaches the target; a lineage that dies out is restarted from one cell on
    the same stream (conditioning on reaching the target), with the clock and
    arising days reset. Day 0 is the moment the target is reached; arising days
    from pre-growth are shifted to be <= 0. Pre-growth does not stop at
    ``lethal_cells`` (the config keeps the target below it).
    """
    days = _check_record_days(model, record_days)
    plan = _schedule(model, schedule)
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(REFERENCE_STREAM_KEY, replicate)))
    )
    tables = _Tables(model)
    num_mechanisms = len(model.mechanism_names)
    arise_day = np.full(num_mechanisms, np.nan)
    state, days_to_diagnosis = _day_zero_tumour(model, tables, rng, arise_day)
    _, cells_at_start = _mechanism_cells(state.geno, state.pheno, state.cells, state.count,
                                         model.num_alterations, model.num_phenotypes)

    therapy = _Therapy(model, tables, plan, state)
    snapshots: list[dict[tuple[int, int], int]] = []

    def snapshot_until(day: float) -> None:
        while len(snapshots) < days.size and days[len(snapshots)] <= day + TOL:
            snapshots.append(state.snapshot())

    status, stop_day, stop_step_day = "alive", math.nan, math.nan
    t = 0.0
    snapshot_until(t)
    therapy.step_end_events(t)
    therapy.triggers(t)
    while t < model.horizon_days - TOL:
        step_end = therapy.next_step_end(t)
        therapy.set_step_exposure(t, step_end)
        now = t
        while status == "alive" and now < step_end:
            until = step_end
            if len(snapshots) < days.size and days[len(snapshots)] < step_end - TOL:
                until = max(now, float(days[len(snapshots)]))
            outcome, now = tables.run(rng, state, now, until, tables.lethal_cells, arise_day)
            if outcome == _EXTINCT:
                status, stop_day = "extinct", now
            elif outcome == _REACHED_CELLS:
                status, stop_day = "died", now
            else:
                now = until
                snapshot_until(now)
        t = step_end
        therapy.step_end_events(t)  # on the state frozen at the stop, if any
        if status != "alive":
            stop_step_day = t
            break
        therapy.triggers(t)
    snapshot_until(math.inf)  # record days after a stop hold the stop state

    return ReferenceResult(
        status=status,
        stop_day=stop_day,
        final_cells=state.total(),
        days_to_diagnosis=days_to_diagnosis,
        snapshot_days=days,
        snapshots=snapshots,
        arise_day=arise_day,
        cells_at_start=cells_at_start,
        schedule=plan.name,
        stop_step_day=stop_step_day,
        progressed=therapy.progressed,
        ttp_days=therapy.ttp,
        best_response=therapy.best_response(),
        nadir_cells=int(therapy.nadir),
        nadir_day=float(therapy.nadir_day),
        mechanism_at_progression=therapy.mechanism_at_progression,
        mechanism_share_at_progression=float(therapy.mechanism_share_at_progression),
        drug_days={name: float(therapy.drug_days[d]) for d, name in enumerate(model.drug_names)},
        established_day=therapy.established_day,
        dominant_day=therapy.dominant_day,
        ctdna_detect_day=therapy.ctdna_detect_day,
        phase_changes=therapy.phase_changes,
    )


def simulate_reference_many(model: CompiledModel, seed: int, replicates: int,
                            record_days=None, schedule: int | str = 0) -> list[ReferenceResult]:
    """Simulate replicates 0 .. ``replicates`` - 1 with :func:`simulate_reference`.

    Parameters
    ----------
    model : CompiledModel
        The compiled model.
    seed : int
        Run seed.
    replicates : int
        Number of replicates.
    record_days : array_like of float, optional
        Snapshot days (days), as in :func:`simulate_reference`.
    schedule : int or str, optional
        Schedule index or name, as in :func:`simulate_reference`.

    Returns
    -------
    list of ReferenceResult
        Result i is replicate i; each is independent of how many are run.
    """
    return [simulate_reference(model, seed, k, record_days, schedule) for k in range(replicates)]
