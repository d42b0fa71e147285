"""The clone engine against analytic results (fixed seeds, tolerances from the statistics).

Every tolerance is Z_TOLERANCE standard errors of the estimator, with the
standard error derived from theory (binomial, or the sample's own variance
for means of many independent replicates).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from clonesim.engine import kernel
from clonesim.model import compile_model
from clonesim.model.analytic import (
    extinction_probability_per_cell,
    long_run_phenotype_fractions,
    one_cell_law,
    pure_birth_mutant_moments,
)

from conftest import Z_TOLERANCE, assert_z, cells_at, make_config, run_model


def _one_type(b, d, horizon, dt=1.0, cells=1, lethal=1e12, **tumor):
    return make_config(
        time={"horizon_days": horizon, "dt_days": dt, "record_every_days": dt},
        tumor={"initial_cells": cells, "lethal_cells": lethal, **tumor},
        phenotypes={"s": {"birth_rate_per_day": b, "death_rate_per_day": d}},
    )


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return values.mean(), values.std(ddof=1) / math.sqrt(len(values))


def test_one_cell_law_over_many_steps():
    """From one cell over 6 steps of 0.5 day: extinction by t, mean, variance (Kendall)."""
    b, d, t, count = 1.0, 0.5, 3.0, 20_000
    _, block = run_model(_one_type(b, d, t, dt=0.5), count, seed=21)
    final = block.final_cells.astype(np.float64)
    p0, mean, var = one_cell_law(b, d, t)
    extinct = (block.status == kernel.STATUS_EXTINCT).mean()
    assert_z(extinct, p0, math.sqrt(p0 * (1 - p0) / count), "P(extinct by t)")
    assert_z(final.mean(), mean, math.sqrt(var / count), "E[N(t)]")
    centred = final - final.mean()
    assert_z(final.var(ddof=1), var, math.sqrt((np.mean(centred**4) - var**2) / count), "Var")
    # Extinction days lie on the step grid and within the horizon.
    days = block.stop_day[block.status == kernel.STATUS_EXTINCT]
    assert np.all((days > 0) & (days <= t)) and np.allclose(days * 2, np.round(days * 2))


@pytest.mark.parametrize("b,d", [(1.0, 0.4), (0.3, 0.25)])
def test_ultimate_extinction_probability_is_d_over_b(b, d):
    """Lineages that reach lethal_cells (1e4) essentially never die out: P(extinct) = d/b."""
    count = 20_000
    horizon = 40.0 / (b - d)
    _, block = run_model(_one_type(b, d, horizon, lethal=1e4), count, seed=5)
    assert not (block.status == kernel.STATUS_ALIVE).any()
    extinct = (block.status == kernel.STATUS_EXTINCT).mean()
    assert_z(extinct, d / b, math.sqrt(d / b * (1 - d / b) / count), "P(ultimate extinction)")


def test_multitype_extinction_with_switching():
    """One founder cell with switching into a slow state: the branching fixed point."""
    config = make_config(
        time={"horizon_days": 400, "dt_days": 1.0},
        tumor={"initial_cells": 1, "lethal_cells": 2e3},
        phenotypes={"s": {"birth_rate_per_day": 0.6, "death_rate_per_day": 0.3},
                    "p": {"birth_rate_per_day": 0.02, "death_rate_per_day": 0.05}},
        switching=[{"from": "s", "to": "p", "rate_per_day": 0.2},
                   {"from": "p", "to": "s", "rate_per_day": 0.05}],
    )
    count = 20_000
    model, block = run_model(config, count, seed=8)
    expected = extinction_probability_per_cell(model)[0]
    assert 0.3 < expected < 0.9  # the case is not degenerate
    extinct = (block.status == kernel.STATUS_EXTINCT).mean()
    assert_z(extinct, expected, math.sqrt(expected * (1 - expected) / count), "P(extinct)")


def test_luria_delbruck_pure_birth_at_size():
    """Grown from one cell to N: P(no mutant) and mean mutants against the exact Yule law.

    Conditional on the realised size N_i at day 0, P(M = 0) = (1-u)^(N_i - 1) and
    E[M], Var[M] follow the jump-chain recursion (model.analytic). Averaging over
    replicates gives the expected count and its standard error.
    """
    u, target, count = 1e-3, 1000, 4000
    config = make_config(
        time={"horizon_days": 0.25, "dt_days": 0.25, "record_every_days": 0.25},
        tumor={"grow_from_single_cell_to": target},
        phenotypes={"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.0}},
        alterations={"R": {"mutation_rate_per_division": u}},
    )
    _, block = run_model(config, count, seed=13)
    sizes = cells_at(block, 0.0)
    assert sizes.min() >= target and np.median(sizes) < 1.05 * target
    mutants = block.mechanism_cells_at_start[:, 0]
    laws = np.array([pure_birth_mutant_moments(int(n), u) for n in sizes])
    p_none = laws[:, 0]
    assert_z((mutants == 0).sum(), p_none.sum(), math.sqrt((p_none * (1 - p_none)).sum()),
             "replicates without pre-existing mutants")
    assert_z(mutants.sum(), laws[:, 1].sum(), math.sqrt(laws[:, 2].sum()), "pre-existing mutants")
    # Mutants present at day 0 arose before it.
    arise = block.mechanism_arise_day[mutants > 0, 0]
    assert np.all(arise <= 0.0)


def test_mean_mutants_at_fixed_time_converge_in_dt():
    """E[mutant cells at t] = N0 e^{rt} (1 - e^{-b u t}) (neutral mutants, exact).

    The mutation split is the engine's only approximation here: its bias must be
    measurable at dt = 2 days and gone (within 4 SE) at dt = 0.1 day.
    """
    b, d, u, n0, t, count = 0.6, 0.2, 2e-3, 100_000, 8.0, 400
    exact = n0 * math.exp((b - d) * t) * -math.expm1(-b * u * t)
    z_scores = {}
    for dt in (2.0, 0.1):
        config = make_config(
            time={"horizon_days": t, "dt_days": dt, "record_every_days": t},
            tumor={"initial_cells": n0},
            phenotypes={"s": {"birth_rate_per_day": b, "death_rate_per_day": d}},
            alterations={"A": {"mutation_rate_per_division": u}},
        )
        _, block = run_model(config, count, seed=3)
        mean, se = _mean_se(cells_at(block, t, genotype=1))
        z_scores[dt] = (mean - exact) / se
    assert abs(z_scores[2.0]) > Z_TOLERANCE, z_scores  # the split is visible at a coarse step ...
    assert abs(z_scores[0.1]) <= Z_TOLERANCE, z_scores  # ... and vanishes as dt shrinks


def test_switching_split_is_second_order_in_dt():
    """Mean persisters under growth + switching against E[n(t)] = n0 expm(A t).

    Halving dt must divide the bias by about 4 (Strang splitting), and at
    dt = 0.1 the bias must be below 4 SE.
    """
    b0, d0, b1, d1, s01, s10, n0, t, count = 0.6, 0.2, 0.05, 0.0, 0.05, 0.2, 100_000, 8.0, 400
    generator = np.array([[b0 - d0 - s01, s01], [s10, b1 - d1 - s10]])
    exact = (np.array([n0, 0.0]) @ expm(generator * t))[1]
    bias, se = {}, {}
    for dt in (1.0, 0.5, 0.1):
        config = make_config(
            time={"horizon_days": t, "dt_days": dt, "record_every_days": t},
            tumor={"initial_cells": n0},
            phenotypes={"s": {"birth_rate_per_day": b0, "death_rate_per_day": d0},
                        "p": {"birth_rate_per_day": b1, "death_rate_per_day": d1}},
            switching=[{"from": "s", "to": "p", "rate_per_day": s01},
                       {"from": "p", "to": "s", "rate_per_day": s10}],
        )
        _, block = run_model(config, count, seed=3)
        mean, se[dt] = _mean_se(cells_at(block, t, phenotype=1))
        bias[dt] = mean - exact
    assert abs(bias[1.0]) > 10 * se[1.0] and abs(bias[0.5]) > 5 * se[0.5], bias
    ratio = bias[1.0] / bias[0.5]
    ratio_se = abs(ratio) * math.hypot(se[1.0] / bias[1.0], se[0.5] / bias[0.5])
    assert abs(ratio - 4.0) <= Z_TOLERANCE * ratio_se + 0.5, (ratio, ratio_se)
    assert abs(bias[0.1]) <= Z_TOLERANCE * se[0.1], bias


@pytest.mark.parametrize("growth", [0.0, 0.3])
def test_switching_chain_equilibrium_fraction(growth):
    """Equal net growth in both states: the persister share follows the two-state chain,
    pi + (f0 - pi) e^{-(s01 + s10) t}, pi = s01 / (s01 + s10)."""
    s01, s10, n0, count = 0.02, 0.08, 10_000, 300
    t = 60.0 if growth == 0.0 else 25.0
    config = make_config(
        time={"horizon_days": t, "dt_days": 1.0, "record_every_days": t},
        tumor={"initial_cells": n0},
        phenotypes={"s": {"birth_rate_per_day": 0.5 + growth, "death_rate_per_day": 0.5},
                    "p": {"birth_rate_per_day": 0.5 + growth, "death_rate_per_day": 0.5}},
        switching=[{"from": "s", "to": "p", "rate_per_day": s01},
                   {"from": "p", "to": "s", "rate_per_day": s10}],
    )
    model, block = run_model(config, count, seed=17)
    pi = s01 / (s01 + s10)
    expected = pi * -math.expm1(-(s01 + s10) * t)
    persister = cells_at(block, t, phenotype=1)
    total = cells_at(block, t)
    mean, se = _mean_se(persister / total)
    assert_z(mean, expected, se, "persister fraction")
    _, fractions = long_run_phenotype_fractions(model)
    assert fractions[1] == pytest.approx(pi, rel=1e-9)


def test_pure_switching_is_exact_binomial():
    """b = d = 0: each cell's state is an independent two-state chain, so the persister
    count is Binomial(N, p(t)) exactly, whatever dt."""
    s01, s10, n0, t, count = 0.3, 0.1, 500, 3.0, 4000
    config = make_config(
        time={"horizon_days": t, "dt_days": 1.5, "record_every_days": 1.5},
        tumor={"initial_cells": n0},
        phenotypes={"s": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0},
                    "p": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0}},
        switching=[{"from": "s", "to": "p", "rate_per_day": s01},
                   {"from": "p", "to": "s", "rate_per_day": s10}],
    )
    _, block = run_model(config, count, seed=2)
    p = s01 / (s01 + s10) * -math.expm1(-(s01 + s10) * t)
    persister = cells_at(block, t, phenotype=1)
    assert np.all(cells_at(block, t) == n0)  # switching never makes or loses cells
    assert_z(persister.mean(), n0 * p, math.sqrt(n0 * p * (1 - p) / count), "mean")
    se_var = n0 * p * (1 - p) * math.sqrt(2.0 / (count - 1))
    assert_z(persister.var(ddof=1), n0 * p * (1 - p), se_var, "variance")


def test_carrying_capacity_equilibrium():
    """Birth scaled by (1 - N/K): the burden settles at K (1 - d/b)."""
    b, d, capacity = 0.5, 0.2, 1e6
    config = _one_type(b, d, 150.0, cells=1000, carrying_capacity_cells=capacity)
    _, block = run_model(config, 50, seed=4)
    equilibrium = capacity * (1 - d / b)
    mean, se = _mean_se(block.final_cells)
    # Fluctuations around the equilibrium are O(sqrt(N)); 0.5 % covers the lag of
    # rates held over a 1-day step and is still 15x tighter than the growth scale.
    assert abs(mean - equilibrium) < 0.005 * equilibrium + Z_TOLERANCE * se, (mean, equilibrium)


def test_lethal_burden_stops_the_replicate():
    _, block = run_model(_one_type(0.5, 0.0, 100.0, cells=100, lethal=1e6), 20, seed=1)
    assert np.all(block.status == kernel.STATUS_DIED)
    assert np.all(block.final_cells >= 1e6)
    # Deterministic-ish growth: 100 e^{0.5 t} = 1e6 at t = 18.4 days.
    assert np.all(np.abs(block.stop_day - math.log(1e4) / 0.5) < 3.0)


def test_huge_tumour_counts_stay_exact_int64():
    """1e14 cells growing towards lethal_cells 1e15: counts stay exact and positive."""
    config = _one_type(0.05, 0.01, 200.0, cells=int(1e14), lethal=1e15)
    model = compile_model(config)
    _, block = run_model(config, 4, seed=1)
    assert np.all(block.status == kernel.STATUS_DIED)
    assert np.all(block.final_cells >= model.kernel.lethal_cells)
    assert np.all(block.final_cells < 2e15)
