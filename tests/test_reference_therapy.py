"""The exact Gillespie reference engine under therapy, against hand-computed results.

The rules are those of the docstring of :mod:`clonesim.therapy`. Expected values
come from the pharmacodynamic formulas worked out by hand in each test and from
the closed-form laws of the linear birth-death process with piecewise-constant
rates b(t), d(t) (Kendall 1948). From one cell, with m(t) = exp(int_0^t (b - d)),

    E N(t) = m(t),   E N(t)(N(t) - 1) = 2 m(t)^2 int_0^t b(u) / m(u) du,
    P(N(t) = 0) = d (e^{rt} - 1) / (b e^{rt} - d)   (constant rates, r = b - d),

and N0 cells are N0 independent such lineages. Statistical checks use fixed
seeds and a tolerance of Z_TOLERANCE = 4 standard errors (exact standard errors
where the variance is known, else the sample's); distributions use a KS test at
P_THRESHOLD = 1e-4. Triggers that fire on the step grid are allowed one step
(dt) of discretisation on top of the statistical tolerance.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from clonesim.config import config_from_mapping
from clonesim.engine.reference import simulate_reference, simulate_reference_many
from clonesim.model import compile_model
from therapy_cases import OFF as _OFF
from therapy_cases import ON as _ON
from therapy_cases import SHUT_IC50, SHUT_SIGNAL
from therapy_cases import ctdna_model as _ctdna_model
from therapy_cases import declining_model as _declining_model
from therapy_cases import piecewise_moments as _piecewise_moments
from therapy_cases import switch_model as _switch_model

from conftest import P_THRESHOLD, Z_TOLERANCE, assert_z


def _model(**sections):
    data = {"name": "therapy-test"}
    data.update(sections)
    return compile_model(config_from_mapping(data))


# ------------------------------------------------------------------ (a) rates under drug


def test_constant_exposure_growth_follows_hand_computed_rates():
    """Two drugs at constant exposure: a targeted one and a direct killer.

    tki: Imax 0.8, IC50 1, Hill 1, exposure 1 -> h = 0.8 x 1/2 = 0.4, s = 0.6.
    killer: extra death 0.2 at exposure 1, Hill H(c) = c^2 / (0.5^2 + c^2), given 3.0
    every 2 days without half-life -> exposure 1.5, H(1.5)/H(1) = 0.9 / 0.8 = 1.125.
    b = 1.0 (1 - 0.5 x 0.4) = 0.8;  d = 0.3 + 0.5 x 0.4 + 0.2 x 1.125 = 0.725.
    Wrong readings sit far off: no H ratio (r = 0.1), no cytostatic share (r = 0.275),
    h without Imax (r = -0.025).
    """
    n0, n, horizon = 20, 2000, 10.0
    model = _model(
        time={"horizon_days": horizon},
        tumor={"initial_cells": n0, "detection_cells": 1},
        phenotypes={"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.3,
                          "drug_kill_rate_per_day": 0.5, "cytostatic_share": 0.5}},
        drugs={"tki": {"targets": {"driver": {"ic50": 1.0, "hill": 1.0, "max_inhibition": 0.8}}},
               "killer": {"extra_death_per_day": {"s": 0.2}, "extra_death_ic50": 0.5,
                          "extra_death_hill": 2.0}},
        schedules={"both": [{"drugs": ["tki", {"name": "killer", "dose": 3.0,
                                                "every_days": 2}]}]},
    )
    b, d = 0.8, 0.725
    results = simulate_reference_many(model, seed=21, replicates=n, record_days=[0, 5, 10])
    # Doses stop with the replicate (extinct in ~3 % of replicates).
    assert all(r.drug_days == {"tki": 10.0, "killer": 15.0} for r in results
               if r.status == "alive")
    assert all(r.phase_changes == [(0.0, 0, "start")] for r in results)
    for i, t in ((1, 5.0), (2, 10.0)):
        cells = np.array([sum(r.snapshots[i].values()) for r in results])
        mean, var = _piecewise_moments(n0, [b], [d], [t])
        assert_z(cells.mean(), mean, math.sqrt(var / n), f"E N({t:g}) under both drugs")


def _pk_exposures(half_life: float, dose_days: int, days: int) -> list[float]:
    """Mean exposure per day of a daily standard dose for ``dose_days`` days, then washout.

    One compartment, k = ln 2 / half-life: a dose at the start of a day adds k to the
    concentration c; over the day the mean is c (1 - e^{-k}) / k and c ends at c e^{-k}.
    """
    k = math.log(2.0) / half_life
    c, means = 0.0, []
    for day in range(days):
        if day < dose_days:
            c += k
        means.append(c * (1.0 - math.exp(-k)) / k)
        c *= math.exp(-k)
    return means


def test_half_life_exposure_ramp_and_washout_drive_the_rates():
    """Daily dosing with a 2-day half-life for 5 days (a ``day: 5`` trigger), then none.

    The exposure ramps up from 0.29 and washes out after day 5 (concentration carries
    over between phases); each day has its own mean exposure c_k, signal
    s_k = 1 - x/(1 + x), x = c_k / 0.5, and rates b = 0.6 s_k... see the code:
    phi = 1 so b = b_p s_k, k_p = 0.6 so d = 0.1 + 0.6 (1 - s_k).
    With constant exposure 1 from day 0 instead (no PK) E N(10) would be ~40 % lower.
    """
    n0, n, horizon = 30, 2000, 10
    model = _model(
        time={"horizon_days": horizon},
        tumor={"initial_cells": n0, "detection_cells": 1},
        phenotypes={"s": {"birth_rate_per_day": 0.4, "death_rate_per_day": 0.1,
                          "drug_kill_rate_per_day": 0.6, "cytostatic_share": 1.0}},
        drugs={"tki": {"targets": {"driver": {"ic50": 0.5}}, "half_life_days": 2.0}},
        schedules={"stop_at_5": [{"drugs": ["tki"], "until": {"day": 5}}, {"drugs": []}]},
    )
    exposures = _pk_exposures(2.0, 5, horizon)
    signal = [1.0 - (c / 0.5) / (1.0 + c / 0.5) for c in exposures]
    births = [0.4 * s for s in signal]
    deaths = [0.1 + 0.6 * (1.0 - s) for s in signal]
    results = simulate_reference_many(model, seed=22, replicates=n, record_days=[5, 10])
    assert all(r.phase_changes == [(0.0, 0, "start"), (5.0, 1, "day")] for r in results)
    assert all(r.drug_days == {"tki": 5.0} for r in results)
    for i, t in ((0, 5), (1, 10)):
        cells = np.array([sum(r.snapshots[i].values()) for r in results])
        mean, var = _piecewise_moments(n0, births[:t], deaths[:t], [1.0] * t)
        assert_z(cells.mean(), mean, math.sqrt(var / n), f"E N({t}) with PK")


def test_switching_under_drug_follows_the_signal():
    """No growth; sensitive -> persister at sigma_drug (1 - s) = 0.3 x 0.5 and persister ->
    sensitive at rho s = 0.1 x 0.5 (scaled by the signal: reversion off drug), with
    s = 1 - 1/2 (Imax 1, IC50 1, exposure 1). Each cell is a two-state chain, so the
    persisters among 200 cells x 200 replicates are Binomial with
    p1(t) = 0.15 / 0.2 (1 - e^{-0.2 t}). Off drug (s = 1) no cell would ever switch.
    """
    cells, n, days = 200, 200, [1.0, 3.0, 10.0]
    model = _model(
        time={"horizon_days": 10},
        tumor={"initial_cells": cells, "detection_cells": 1},
        phenotypes={"sensitive": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0},
                    "persister": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0}},
        switching=[{"from": "sensitive", "to": "persister", "rate_per_day": 0.0,
                    "drug_induced_rate_per_day": 0.3},
                   {"from": "persister", "to": "sensitive", "rate_per_day": 0.1}],
        drugs={"tki": {"targets": {"driver": {"ic50": 1.0}}}},
        schedules={"on": [{"drugs": ["tki"]}]},
    )
    results = simulate_reference_many(model, seed=34, replicates=n, record_days=days)
    for i, t in enumerate(days):
        persisters = sum(r.snapshots[i].get((0, 1), 0) for r in results)
        p1 = 0.15 / 0.2 * (1.0 - math.exp(-0.2 * t))
        assert_z(persisters / (cells * n), p1, math.sqrt(p1 * (1 - p1) / (cells * n)),
                 f"persister share at day {t:g}")


# ------------------------------------------------------------ (b) day trigger, step points


def test_day_trigger_switches_drugs_on_that_day():
    """``day: 7.5`` with dt = 1: 7.5 is a step point, so A runs [0, 7.5) and B [7.5, 12).

    Doses: A at 0..7 (8), B at 7.5, 8.5, .., 11.5 (5). E N(12) = 200 e^{-0.4 x 7.5 + 0.4 x 4.5};
    switching at the grid point 8 instead would give 200 e^{-1.6}, 30 % lower (~40 se).
    """
    n = 500
    model = _switch_model(12.0)
    results = simulate_reference_many(model, seed=23, replicates=n, schedule="switch")
    assert all(r.phase_changes == [(0.0, 0, "start"), (7.5, 1, "day")] for r in results)
    assert all(r.drug_days == {"A": 8.0, "B": 5.0} for r in results)
    final = np.array([r.final_cells for r in results])
    mean, var = _piecewise_moments(200, [_ON[0], _OFF[0]], [_ON[1], _OFF[1]], [7.5, 4.5])
    assert_z(final.mean(), mean, math.sqrt(var / n), "E N(12) with a switch on day 7.5")


def test_after_days_cycles_and_holiday_patterns_are_step_points():
    """A repeating schedule (A for 2.5 days, nothing for 1.5) and the same as a dosing
    pattern with holidays (on 2.5, off 1.5) inside one phase: both give A on
    [0, 2.5), [4, 6.5), [8, 10.5) (9 daily doses) and nothing else until day 11.

    The two run on the same step grid with the same exposures, so on the same stream
    (same seed and replicate) they are the same path, cell for cell.
    """
    n = 500
    model = _switch_model(11.0)
    cycle = simulate_reference_many(model, seed=24, replicates=n, schedule="cycle")
    pulsed = simulate_reference_many(model, seed=24, replicates=n, schedule="pulsed")
    expected = [(0.0, 0, "start"), (2.5, 1, "after_days"), (4.0, 0, "after_days"),
                (6.5, 1, "after_days"), (8.0, 0, "after_days"), (10.5, 1, "after_days")]
    assert all(r.phase_changes == expected for r in cycle)
    assert all(r.phase_changes == [(0.0, 0, "start")] for r in pulsed)
    assert all(r.drug_days["A"] == 9.0 for r in cycle + pulsed)
    assert [r.snapshots for r in cycle] == [r.snapshots for r in pulsed]
    final = np.array([r.final_cells for r in pulsed])
    on, off = [0.0, 2.5, 4.0, 6.5, 8.0, 10.5], [2.5, 4.0, 6.5, 8.0, 10.5, 11.0]
    rates = [_ON, _OFF] * 3
    mean, var = _piecewise_moments(200, [b for b, _ in rates], [d for _, d in rates],
                                   [e - s for s, e in zip(on, off, strict=True)])
    assert_z(final.mean(), mean, math.sqrt(var / n), "E N(11) with holidays")


# ------------------------------------------------------------------- (c) adaptive cycling


def test_adaptive_cycling_follows_the_deterministic_solution():
    """Adaptive therapy on 10^4 cells: drug until N < 0.5 N0, pause until N > N0, repeat.

    On drug b = 0.3, d = 0.4 (r = -0.1); off b = 0.3, d = 0.2 (r = +0.1). The deterministic
    path N0 e^{int r} with the same rule on the same grid (dt = 0.05) switches at
    ~6.95, ~13.9, ~20.85 days. The k-th switch day of the stochastic runs (sd ~0.3-0.5 days:
    relative fluctuations sqrt((b + d) / (|r| N)) ~ 3 % at these sizes) must match within
    4 standard errors of the mean plus one step.
    """
    n0, n, dt, horizon = 10_000, 40, 0.05, 26.0
    model = _model(
        time={"horizon_days": horizon, "dt_days": dt},
        tumor={"initial_cells": n0, "detection_cells": 1},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                          "drug_kill_rate_per_day": 0.2}},
        drugs={"A": {"targets": {"driver": {"ic50": SHUT_IC50}}}},
        schedules={"adaptive": {"repeat": True, "phases": [
            {"drugs": ["A"], "until": {"burden_below": 0.5}},
            {"drugs": [], "until": {"burden_above": 1.0}}]}},
    )
    rate = {0: 0.3 - (0.2 + 0.2 * (1.0 - SHUT_SIGNAL)), 1: 0.1}
    # Deterministic solution on the grid, with the trigger rules.
    log_n, phase, det = math.log(n0), 0, []
    for step in range(1, round(horizon / dt) + 1):
        log_n += rate[phase] * dt
        if phase == 0 and log_n < math.log(0.5 * n0) or phase == 1 and log_n > math.log(n0):
            phase = 1 - phase
            det.append(step * dt)
    assert len(det) == 3

    results = simulate_reference_many(model, seed=25, replicates=n)
    for r in results:
        changes = r.phase_changes[1:]
        assert [p for _, p, _ in changes] == [1, 0, 1, 0][: len(changes)]
        assert [why for _, _, why in changes] == [
            "burden_below", "burden_above", "burden_below", "burden_above"][: len(changes)]
        assert len(changes) >= len(det) - 1
    for k, expected in enumerate(det):
        days = np.array([r.phase_changes[k + 1][0] for r in results
                         if len(r.phase_changes) > k + 1])
        assert len(days) >= n - 2  # the third switch may fall after the horizon, rarely
        se = days.std(ddof=1) / math.sqrt(len(days))
        assert abs(days.mean() - expected) <= Z_TOLERANCE * se + dt, (
            f"switch {k + 1}: mean day {days.mean():.3f} vs deterministic {expected:.3f} "
            f"(se {se:.3f})"
        )


# -------------------------------------------------------------------------- (d) extinction


def test_extinction_by_t_matches_linear_birth_death():
    """5 cells, b = 0.3, d ~ 0.5 under drug, horizon 5 days.

    P(extinct by t) = p0(t)^5, p0(t) = d (e^{rt} - 1) / (b e^{rt} - d) (0.351 at t = 5);
    the exact extinction days, given extinction by day 5, have the CDF
    (p0(s) / p0(5))^5 (KS test). A step engine would report the end of the step
    (``stop_step_day`` = ceil(stop_day) with dt = 1), and that is when the nadir 0 is seen.
    """
    n0, n, horizon = 5, 3000, 5.0
    b, d = 0.3, 0.1 + 0.4 * (1.0 - SHUT_SIGNAL)
    r = b - d

    def p0(t):
        e = np.exp(r * np.asarray(t))
        return d * (e - 1.0) / (b * e - d)

    results = simulate_reference_many(_declining_model(horizon, n0), seed=26, replicates=n)
    extinct = np.array([x.status == "extinct" for x in results])
    assert all(x.status in ("extinct", "alive") for x in results)
    p = float(p0(horizon)) ** n0
    assert_z(extinct.mean(), p, math.sqrt(p * (1 - p) / n), "P(extinct by day 5)")
    stop = np.array([x.stop_day for x in results])[extinct]
    cdf = lambda s: (p0(s) / p0(horizon)) ** n0  # noqa: E731
    assert stats.kstest(stop, cdf).pvalue > P_THRESHOLD
    step_end = np.array([x.stop_step_day for x in results])[extinct]
    assert np.array_equal(step_end, np.ceil(stop))
    assert all(x.nadir_cells == 0 and x.nadir_day == x.stop_step_day and x.final_cells == 0
               for x in np.array(results)[extinct])
    assert all(x.best_response == "CR" and not x.progressed for x in results)


def test_subcritical_population_goes_extinct():
    """The same population over 150 days: P(survive) = 1 - p0(150)^20 < 1e-10."""
    results = simulate_reference_many(_declining_model(150.0, 20), seed=27, replicates=300)
    assert all(x.status == "extinct" and x.final_cells == 0 for x in results)
    assert all(math.isnan(x.ttp_days) for x in results)


# -------------------------------------------------------- (e) progression, sequential lines


def _resistance_model(horizon: float):
    """10^5 cells, 10 % pre-existing ``res`` (adds the ``bypass`` pathway).

    phi = 1, k_p = 0.8: sensitive cells under tki have b ~ 0, d ~ 1.0 (r ~ -1);
    res cells keep s = 1 (bypass open): b = 0.3, d = 0.2 (r = +0.1). met shuts bypass.
    """
    return _model(
        time={"horizon_days": horizon, "dt_days": 0.1},
        tumor={"initial_cells": 100_000, "detection_cells": 1000,
               "initial_fractions": {"res": 0.1}},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 0.0, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                          "drug_kill_rate_per_day": 0.8, "cytostatic_share": 1.0}},
        drugs={"tki": {"targets": {"driver": {"ic50": SHUT_IC50}}},
               "met": {"targets": {"bypass": {"ic50": SHUT_IC50}}}},
        schedules={"mono": [{"drugs": ["tki"]}],
                   "baseline": {"phases": [{"drugs": ["tki"]}],
                                "progression_reference": "baseline"},
                   "sequential": [{"drugs": ["tki"], "until": "progression"},
                                  {"drugs": ["tki", "met"]}]},
    )


def test_progression_with_a_resistant_clone_matches_two_type_solution():
    """N(t) = S0 e^{-t} + R0 e^{0.1 t} (S0 = 9 x 10^4, R0 = 10^4), RECIST on the grid:
    nadir ~1.66 x 10^4 near day 4.1, progression at N >= 1.2^3 x nadir, near day 10.6.

    The progression day fluctuates by ~0.15 days (res grows from ~1.5 x 10^4 cells:
    relative sd ~ sqrt((b + d)(1 - e^{-r dt'}) / (r R)) ~ 1.2 %); the mean must match
    within 4 standard errors plus one step (dt = 0.1). The nadir is 17 % of N0 (PR) and
    the mechanism at progression is res.
    """
    n, horizon, dt = 30, 12.0, 0.1
    model = _resistance_model(horizon)
    s0, r0 = 90_000, 10_000
    rs = 0.3 * SHUT_SIGNAL - (0.2 + 0.8 * (1.0 - SHUT_SIGNAL))
    grid = np.arange(0, round(horizon / dt) + 1) * dt
    burden = s0 * np.exp(rs * grid) + r0 * np.exp(0.1 * grid)
    nadir = np.minimum.accumulate(burden)
    progression = np.flatnonzero(burden >= 1.2**3 * nadir)
    assert progression.size
    det_ttp = grid[progression[0]]
    det_nadir = nadir[progression[0]]

    results = simulate_reference_many(model, seed=28, replicates=n, schedule="mono")
    assert all(r.progressed and r.mechanism_at_progression == "res" for r in results)
    assert all(r.best_response == "PR" for r in results)
    ttp = np.array([r.ttp_days for r in results])
    se = ttp.std(ddof=1) / math.sqrt(n)
    assert abs(ttp.mean() - det_ttp) <= Z_TOLERANCE * se + dt, (ttp.mean(), det_ttp, se)
    # The nadir fluctuates with res's early growth (~1.3 %); the least of noisy step-end
    # burdens sits a few per-step fluctuations (~30 cells) below the smooth minimum.
    nadirs = np.array([r.nadir_cells for r in results])
    assert_z(nadirs.mean(), det_nadir, nadirs.std(ddof=1) / math.sqrt(n), "mean nadir")
    # res is dominant from ~day 2.3 (S0 e^{-t} < R0 e^{0.1 t}), established from day 0.
    assert all(r.established_day[0] == 0.0 and 1.5 < r.dominant_day[0] < 3.0 for r in results)


def test_progression_against_baseline():
    """``progression_reference: baseline``: progression at N >= 1.2^3 N0 = 172800 cells,
    reached by res (R0 e^{0.1 t}) near day 28.5 whatever the nadir. ttp sd ~0.13 days."""
    n, dt = 8, 0.1
    model = _resistance_model(32.0)
    grid = np.arange(0, 321) * dt
    rs = 0.3 * SHUT_SIGNAL - (0.2 + 0.8 * (1.0 - SHUT_SIGNAL))
    burden = 90_000 * np.exp(rs * grid) + 10_000 * np.exp(0.1 * grid)
    det_ttp = grid[np.flatnonzero(burden >= 1.2**3 * 100_000)[0]]
    results = simulate_reference_many(model, seed=32, replicates=n, schedule="baseline")
    assert all(r.progressed and r.best_response == "PR" for r in results)
    ttp = np.array([r.ttp_days for r in results])
    se = ttp.std(ddof=1) / math.sqrt(n)
    assert abs(ttp.mean() - det_ttp) <= Z_TOLERANCE * se + dt, (ttp.mean(), det_ttp, se)


def test_best_response_categories_and_untreated_defaults():
    """Without schedules a config runs "untreated": no drugs, one phase.

    b = 0.3, d = 0 from 1000 cells: N >= 1.728 x nadir (~1000) near day 1.8 < 42 days: PD,
    with no mechanism in any cell ("none"). Frozen cells (b = d = 0): never progress, SD.
    """
    growing = _model(time={"horizon_days": 5},
                     tumor={"initial_cells": 1000, "detection_cells": 1},
                     phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.0}})
    for r in simulate_reference_many(growing, seed=33, replicates=5):
        assert r.schedule == "untreated" and r.drug_days == {}
        assert r.phase_changes == [(0.0, 0, "start")]
        assert r.progressed and 1.0 <= r.ttp_days <= 3.0 and r.best_response == "PD"
        assert r.mechanism_at_progression == "none"
        assert r.nadir_cells == 1000 and r.nadir_day == 0.0
    frozen = _model(time={"horizon_days": 5},
                    tumor={"initial_cells": 1000, "detection_cells": 1},
                    phenotypes={"s": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0}})
    r = simulate_reference(frozen, seed=33, replicate=0)
    assert not r.progressed and math.isnan(r.ttp_days) and r.best_response == "SD"
    assert r.mechanism_at_progression is None and r.status == "alive"


def test_sequential_line_change_at_the_mono_progression_day():
    """Same replicate, two schedules: tki alone, and tki until progression then tki + met.

    Both start from the same day-0 tumour and the same stream, with the same rates
    and step grid until the progression step end, so the sequential schedule changes
    line exactly on the day tki alone progresses, on the very same path. That
    progression is a change of line, not the schedule's; afterwards tki + met shuts
    both pathways (every cell has r ~ -1), so the sequential schedule never progresses.
    """
    model = _resistance_model(16.0)
    for replicate in range(3):
        days = list(np.arange(0.0, 16.5, 0.5))
        mono = simulate_reference(model, 29, replicate, days, schedule="mono")
        seq = simulate_reference(model, 29, replicate, days, schedule="sequential")
        assert mono.progressed and not seq.progressed
        assert seq.phase_changes == [(0.0, 0, "start"), (mono.ttp_days, 1, "progression")]
        before = [i for i, day in enumerate(days) if day <= mono.ttp_days]
        assert [mono.snapshots[i] for i in before] == [seq.snapshots[i] for i in before]
        assert seq.final_cells < 0.02 * mono.final_cells
        # met daily from the change of line: ttp, ttp + 1, ... < 16.
        assert seq.drug_days["met"] == math.ceil(16.0 - mono.ttp_days - 1e-9)


# -------------------------------------------------------------------------------- (f) ctDNA


def test_ctdna_detection_day_and_trigger():
    """Limit 1 %: detected when N <= 5000, i.e. sensitive cells S <= 4900.

    S(t) ~ Binomial(19900, e^{-0.1 t}): at the day-10 sample S ~ 7320 +- 60 (not
    detected, 40 sd away), at day 20 S ~ 2690 +- 45 (detected), so every replicate
    detects on day 20 and the guided schedule adds met then.
    """
    results = simulate_reference_many(_ctdna_model(0.01), seed=30, replicates=40)
    for r in results:
        assert r.ctdna_detect_day[0] == 20.0
        assert r.phase_changes == [(0.0, 0, "start"), (20.0, 1, "ctdna_detects")]
        assert r.drug_days == {"tki": 30.0, "met": 10.0}
        assert r.cells_at_start[0] == 100 and r.established_day[0] == 0.0
        assert r.arise_day[0] == 0.0 and math.isnan(r.dominant_day[0])


def test_ctdna_detection_at_day_zero_switches_at_once():
    """Limit 0.2 % < VAF(0) = 100 / 40000 = 0.25 %: the day-0 sample detects res and the
    ctdna_detects trigger fires at the instant its phase starts."""
    results = simulate_reference_many(_ctdna_model(0.002), seed=31, replicates=5)
    for r in results:
        assert r.ctdna_detect_day[0] == 0.0
        assert r.phase_changes == [(0.0, 0, "start"), (0.0, 1, "ctdna_detects")]
        assert r.drug_days == {"tki": 30.0, "met": 30.0}
