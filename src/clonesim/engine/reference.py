"""The exact reference engine: event-by-event Gillespie simulation (DESIGN §2).

This engine exists to verify the step-based clone engine
(:mod:`clonesim.engine.kernel`). It shares no code with it: it reads the same
:class:`~clonesim.model.compiled.CompiledModel` and simulates the continuous-time
Markov chain of the model one event at a time with Gillespie's direct method,
so it is exact but costs time proportional to the number of events. Use it on
small populations (up to ~1e4-1e5 cells).

The model (no drugs in this version, so the signal is s = 1 for every genotype).
A replicate is a list of compartments (genotype bit mask g, phenotype p, cells n).
With N the total burden and K the carrying capacity (infinite when none), each
compartment has these events, with rates per day:

* normal division, ``b (1 - U) n``: one more cell in (g, p);
* mutant division for each alteration a not in g, ``b u_a m_p n``: one more
  cell in (g | 1 << a, p), (g, p) unchanged;
* death, ``d n``: one cell fewer in (g, p);
* switch to phenotype q, ``sigma_pq n``: one cell moves from (g, p) to (g, q);

where ``b = b_p (1 - phi_p (1 - s)) max(0, 1 - N / K)``, ``d = d_p + k_p (1 - s)``,
``U = m_p sum_{a not in g} u_a`` and
``sigma_pq = sigma0_pq (s if scaled_by_signal else 1) + sigma_drug_pq (1 - s)``.

The direct method: with R the sum of all event rates, wait an exponential time
of rate R, then pick one event with probability (its rate) / R. All rates are
recomputed from the model before every event (N, and so b, changes with every
event). A replicate stops when its burden is 0 (``extinct``), reaches the
lethal size (``died``) or at the horizon (``alive``).

Each replicate draws from its own stream, ``PCG64(SeedSequence(seed,
spawn_key=(1_000_000, replicate)))``: independent of the main engine's streams
(spawn keys ``(point, replicate)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from clonesim.model.compiled import CompiledModel

#: First element of the spawn key of the reference engine's streams (the main engine uses
#: the sweep point, a small integer, there).
REFERENCE_STREAM_KEY = 1_000_000

#: Attempts at growing a tumour from one cell before giving up.
MAX_PREGROWTH_ATTEMPTS = 1_000_000

#: The signal s_g of every genotype: there are no drugs in this version.
SIGNAL = 1.0

# Outcomes of ``_run_events``.
_REACHED_DAY = 0  # the clock passed ``until_day`` (state unchanged since the last event)
_EXTINCT = 1  # the burden hit 0 (at the returned day)
_REACHED_CELLS = 2  # the burden reached ``stop_at_cells`` (at the returned day)
_STALLED = 3  # every event rate is 0: the state is frozen for ever

# Event kinds, in the order of the columns of the per-compartment rate table.
_NORMAL_DIVISION = 0
_DEATH = 1
_FIRST_MUTANT = 2  # columns 2 .. 2 + A - 1: mutant division for alteration a
# columns 2 + A .. 2 + A + P - 1: switch to phenotype q


@dataclass
class ReferenceResult:
    """One replicate simulated by the reference engine.

    Attributes
    ----------
    status : str
        ``"alive"`` at the horizon, ``"extinct"`` (burden hit 0) or ``"died"``
        (burden reached ``lethal_cells``).
    stop_day : float
        Day of extinction or death (days after day 0); NaN when alive at the horizon.
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
        non-founder phenotypes): the first day any cell carried it. 0.0 if in
        the initial tumour, <= 0 if it arose during pre-growth (relative to
        diagnosis), NaN if never.
    cells_at_start : numpy.ndarray
        (M,) int64, cells carrying each mechanism at day 0.
    """

    status: str
    stop_day: float
    final_cells: int
    days_to_diagnosis: float
    snapshot_days: np.ndarray
    snapshots: list[dict[tuple[int, int], int]]
    arise_day: np.ndarray
    cells_at_start: np.ndarray


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
def _add_cell(genotype, phenotype, geno, pheno, cells, count):
    """Add one cell to compartment (genotype, phenotype), creating it when absent.

    Returns (count, geno, pheno, cells); the arrays are reallocated (doubled) when full.
    """
    for c in range(count):
        if geno[c] == genotype and pheno[c] == phenotype:
            cells[c] += 1
            return count, geno, pheno, cells
    if count == geno.shape[0]:
        size = 2 * count
        bigger_geno = np.zeros(size, np.int64)
        bigger_pheno = np.zeros(size, np.int64)
        bigger_cells = np.zeros(size, np.int64)
        bigger_geno[:count] = geno[:count]
        bigger_pheno[:count] = pheno[:count]
        bigger_cells[:count] = cells[:count]
        geno, pheno, cells = bigger_geno, bigger_pheno, bigger_cells
    geno[count] = genotype
    pheno[count] = phenotype
    cells[count] = 1
    return count + 1, geno, pheno, cells


@njit(cache=True)
def _remove_cell(c, geno, pheno, cells, count):
    """Remove one cell from compartment c; an emptied compartment is dropped. Returns count."""
    cells[c] -= 1
    if cells[c] == 0:
        last = count - 1
        geno[c] = geno[last]
        pheno[c] = pheno[last]
        cells[c] = cells[last]
        cells[last] = 0
        return last
    return count


@njit(cache=True)
def _run_events(rng, birth, death, mutation, switching, carrying_capacity,
                geno, pheno, cells, count, day, until_day, stop_at_cells, arise_day):
    """Gillespie direct method from ``day`` until ``until_day`` or a stop.

    Parameters
    ----------
    rng : numpy.random.Generator
        The replicate's stream.
    birth, death : numpy.ndarray
        (P,) per-cell birth and death rates per phenotype, per day, before
        logistic competition.
    mutation : numpy.ndarray
        (P, A) probability per division that it is a mutant division for
        alteration a (u_a m_p).
    switching : numpy.ndarray
        (P, P) per-cell switch rate [from, to], per day (zero diagonal).
    carrying_capacity : float
        K in cells (``inf`` for none); birth is multiplied by max(0, 1 - N/K).
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
    num_phenotypes = birth.shape[0]
    num_alterations = mutation.shape[1]
    num_kinds = _FIRST_MUTANT + num_alterations + num_phenotypes
    first_switch = _FIRST_MUTANT + num_alterations
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
            b = birth[p] * logistic
            mutant_share = 0.0  # U = m_p * sum of u_a over alterations g lacks
            for a in range(num_alterations):
                if (g >> a) & 1:
                    rates[c, _FIRST_MUTANT + a] = 0.0
                else:
                    rates[c, _FIRST_MUTANT + a] = b * mutation[p, a] * n
                    mutant_share += mutation[p, a]
            rates[c, _NORMAL_DIVISION] = b * (1.0 - mutant_share) * n
            rates[c, _DEATH] = death[p] * n
            for q in range(num_phenotypes):
                rates[c, first_switch + q] = switching[p, q] * n
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
            count = _remove_cell(chosen_c, geno, pheno, cells, count)
            total -= 1
        elif chosen_k < first_switch:
            new_genotype = g | (np.int64(1) << (chosen_k - _FIRST_MUTANT))
            count, geno, pheno, cells = _add_cell(new_genotype, p, geno, pheno, cells, count)
            _mark_arising(new_genotype, p, num_alterations, day, arise_day)
            total += 1
        else:
            q = chosen_k - first_switch
            # Add first, then remove: removal may move the last compartment into chosen_c.
            count, geno, pheno, cells = _add_cell(g, q, geno, pheno, cells, count)
            count = _remove_cell(chosen_c, geno, pheno, cells, count)
            _mark_arising(g, q, num_alterations, day, arise_day)


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
    """Per-phenotype rate tables of a model under signal ``SIGNAL`` (see module docstring)."""

    def __init__(self, model: CompiledModel):
        k = model.kernel
        lack = 1.0 - SIGNAL
        self.birth = np.ascontiguousarray(
            k.phenotype_birth_rate_per_day * (1.0 - k.phenotype_cytostatic_share * lack),
            dtype=np.float64,
        )
        self.death = np.ascontiguousarray(
            k.phenotype_death_rate_per_day + k.phenotype_drug_kill_rate_per_day * lack,
            dtype=np.float64,
        )
        self.mutation = np.ascontiguousarray(
            np.outer(k.phenotype_mutation_rate_multiplier, k.alteration_mutation_rate_per_division),
            dtype=np.float64,
        ).reshape(len(model.phenotype_names), len(model.alteration_names))
        scale = np.where(np.asarray(k.switch_scaled_by_signal) != 0.0, SIGNAL, 1.0)
        switching = (
            np.asarray(k.switch_rate_per_day, dtype=np.float64) * scale
            + np.asarray(k.switch_drug_induced_rate_per_day, dtype=np.float64) * lack
        )
        np.fill_diagonal(switching, 0.0)  # a switch p -> p changes nothing
        self.switching = np.ascontiguousarray(switching)
        self.carrying_capacity = float(k.carrying_capacity_cells)
        self.lethal_cells = int(k.lethal_cells)

    def run(self, rng, state: _State, day: float, until_day: float, stop_at_cells: int,
            arise_day: np.ndarray) -> tuple[int, float]:
        """Advance ``state`` in place; returns (outcome, day reached)."""
        outcome, day, state.count, state.geno, state.pheno, state.cells = _run_events(
            rng, self.birth, self.death, self.mutation, self.switching, self.carrying_capacity,
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


def simulate_reference(model: CompiledModel, seed: int, replicate: int,
                       record_days=None) -> ReferenceResult:
    """Simulate one replicate exactly, event by event (Gillespie direct method).

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

    Returns
    -------
    ReferenceResult
        Status, stop day (days), final cells, days to diagnosis, snapshots and
        per-mechanism arising days and day-0 cells.

    Raises
    ------
    ValueError
        If ``record_days`` is not sorted within [0, horizon_days].
    RuntimeError
        If pre-growth cannot reach ``grow_from_single_cell_to`` (all rates 0,
        or ``MAX_PREGROWTH_ATTEMPTS`` lineages died out).

    Notes
    -----
    With ``model.grow_from_single_cell_to > 0`` the tumour first grows from one
    founder cell (genotype 0, phenotype 0) until its burden first reaches the
    target; a lineage that dies out is restarted from one cell on the same
    stream (conditioning on reaching the target), with the clock and arising
    days reset. Day 0 is the moment the target is reached; arising days from
    pre-growth are shifted to be <= 0. Pre-growth does not stop at
    ``lethal_cells`` (the config keeps the target below it).
    """
    days = _check_record_days(model, record_days)
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(REFERENCE_STREAM_KEY, replicate)))
    )
    tables = _Tables(model)
    num_alterations = model.num_alterations
    num_mechanisms = len(model.mechanism_names)
    arise_day = np.full(num_mechanisms, np.nan)
    days_to_diagnosis = math.nan

    if model.grow_from_single_cell_to > 0:
        target = model.grow_from_single_cell_to
        for _attempt in range(MAX_PREGROWTH_ATTEMPTS):
            arise_day[:] = np.nan
            state = _State({(0, 0): 1})
            outcome, pregrowth_day = tables.run(rng, state, 0.0, math.inf, target, arise_day)
            if outcome == _REACHED_CELLS:
                break
            if outcome == _STALLED:
                raise RuntimeError("pre-growth stalled: every event rate is 0")
        else:
            raise RuntimeError(
                f"pre-growth did not reach {target} cells in {MAX_PREGROWTH_ATTEMPTS} attempts"
            )
        days_to_diagnosis = pregrowth_day
        arise_day -= days_to_diagnosis
    else:
        state = _State(_initial_tumour(model, rng))
        for c in range(state.count):
            for a in range(num_alterations):
                if (state.geno[c] >> a) & 1:
                    arise_day[a] = 0.0
            if state.pheno[c] > 0:
                arise_day[num_alterations + state.pheno[c] - 1] = 0.0

    cells_at_start = np.zeros(num_mechanisms, np.int64)
    for (g, p), n in state.snapshot().items():
        for a in range(num_alterations):
            if (g >> a) & 1:
                cells_at_start[a] += n
        if p > 0:
            cells_at_start[num_alterations + p - 1] += n

    status = "alive"
    stop_day = math.nan
    day = 0.0
    snapshots: list[dict[tuple[int, int], int]] = []
    for until in [*days.tolist(), model.horizon_days]:
        if status == "alive":
            outcome, day = tables.run(rng, state, day, until, tables.lethal_cells, arise_day)
            if outcome == _EXTINCT:
                status, stop_day = "extinct", day
            elif outcome == _REACHED_CELLS:
                status, stop_day = "died", day
        if len(snapshots) < days.size:
            snapshots.append(state.snapshot())

    return ReferenceResult(
        status=status,
        stop_day=stop_day,
        final_cells=state.total(),
        days_to_diagnosis=days_to_diagnosis,
        snapshot_days=days,
        snapshots=snapshots,
        arise_day=arise_day,
        cells_at_start=cells_at_start,
    )


def simulate_reference_many(model: CompiledModel, seed: int, replicates: int,
                            record_days=None) -> list[ReferenceResult]:
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

    Returns
    -------
    list of ReferenceResult
        Result i is replicate i; each is independent of how many are run.
    """
    return [simulate_reference(model, seed, k, record_days) for k in range(replicates)]
