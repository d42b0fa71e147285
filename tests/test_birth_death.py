"""The exact birth-death transition: coefficients, one-cell law, large clones, step invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit
from scipy import stats

from clonesim.engine.birth_death import (
    birth_death_step,
    integrated_cells,
    transition_coefficients,
)
from clonesim.model.analytic import one_cell_law

from conftest import P_THRESHOLD, assert_z


def kendall_naive(b: float, d: float, t: float) -> tuple[float, float]:
    """Kendall's coefficients written as in the textbook (no expm1)."""
    if b == d:
        return b * t / (1 + b * t), b * t / (1 + b * t)
    e = math.exp((b - d) * t)
    return d * (e - 1) / (b * e - d), b * (e - 1) / (b * e - d)


@pytest.mark.parametrize("b", [0.0, 0.01, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("d", [0.0, 0.02, 0.5, 2.0])
@pytest.mark.parametrize("dt", [1e-3, 0.25, 1.0, 1.5])
def test_coefficients_match_textbook_formula(b, d, dt):
    alpha, beta = transition_coefficients(b, d, dt)
    expected_alpha, expected_beta = kendall_naive(b, d, dt)
    assert alpha == pytest.approx(expected_alpha, rel=1e-9, abs=1e-15)
    assert beta == pytest.approx(expected_beta, rel=1e-9, abs=1e-15)
    assert 0.0 <= alpha <= 1.0 and 0.0 <= beta < 1.0


def test_coefficients_continuous_through_critical_case():
    at = transition_coefficients(0.7, 0.7, 2.0)
    for eps in (1e-6, 1e-9, 1e-12):
        near = transition_coefficients(0.7 + eps, 0.7, 2.0)
        assert near[0] == pytest.approx(at[0], rel=1e-5)
        assert near[1] == pytest.approx(at[1], rel=1e-5)


def test_pure_death_and_pure_birth_limits():
    alpha, beta = transition_coefficients(0.0, 0.3, 2.0)
    assert alpha == pytest.approx(1 - math.exp(-0.6)) and beta == 0.0
    alpha, beta = transition_coefficients(0.4, 0.0, 2.0)
    assert alpha == 0.0 and beta == pytest.approx(1 - math.exp(-0.8))


@njit(cache=True)
def _draw_many(seed_rng, cells, b, d, dt, count):
    out = np.empty(count, np.int64)
    for i in range(count):
        out[i] = birth_death_step(seed_rng, cells, b, d, dt)
    return out


@pytest.mark.parametrize("b,d,t", [(1.0, 0.5, 3.0), (0.5, 0.5, 2.0), (0.3, 0.6, 1.5)])
def test_one_cell_transition_law(b, d, t):
    """Extinction by t, mean and variance of N(t) from one cell against Kendall's law."""
    count = 200_000
    draws = _draw_many(np.random.default_rng(11), np.int64(1), b, d, t, count)
    p0, mean, var = one_cell_law(b, d, t)
    assert_z((draws == 0).mean(), p0, math.sqrt(p0 * (1 - p0) / count), "P(extinct by t)")
    assert_z(draws.mean(), mean, math.sqrt(var / count), "E[N(t)]")
    # SE of the sample variance: sqrt((mu4 - var^2) / n); mu4 estimated from the sample.
    centred = draws - draws.mean()
    se_var = math.sqrt((np.mean(centred**4) - var**2) / count)
    assert_z(draws.var(ddof=1), var, se_var, "Var[N(t)]")
    # The law given survival is geometric with parameter 1 - beta.
    alpha, beta = transition_coefficients(b, d, t)
    survivors = draws[draws > 0]
    counts = np.bincount(np.minimum(survivors, 8))[1:]
    probs = (1 - beta) * beta ** np.arange(7)
    probs = np.append(probs, 1 - probs.sum())
    assert stats.chisquare(counts, probs * len(survivors)).pvalue > P_THRESHOLD


def test_large_clone_mean_and_variance():
    """1e11 cells: n lineages are independent, so mean and variance scale by n."""
    cells, b, d, dt, count = np.int64(10**11), 0.05, 0.04, 1.0, 4000
    draws = _draw_many(np.random.default_rng(5), cells, b, d, dt, count).astype(np.float64)
    _, mean1, var1 = one_cell_law(b, d, dt)
    assert_z(draws.mean(), cells * mean1, math.sqrt(cells * var1 / count), "E[N] for 1e11 cells")
    se_var = cells * var1 * math.sqrt(2.0 / (count - 1))  # normal limit of the sample variance
    assert_z(draws.var(ddof=1), cells * var1, se_var, "Var[N] for 1e11 cells")


def test_one_step_equals_many_steps_in_law():
    """Chapman-Kolmogorov: one step of 4 days and 40 steps of 0.1 day give the same law."""
    b, d, count = 0.9, 0.4, 40_000
    one = _draw_many(np.random.default_rng(1), np.int64(3), b, d, 4.0, count)

    @njit
    def many(rng, count):
        out = np.empty(count, np.int64)
        for i in range(count):
            n = np.int64(3)
            for _ in range(40):
                n = birth_death_step(rng, n, b, d, 0.1)
            out[i] = n
        return out

    other = many(np.random.default_rng(2), count)
    assert stats.ks_2samp(one, other).pvalue > P_THRESHOLD
    assert stats.mannwhitneyu(one, other).pvalue > P_THRESHOLD


def test_integrated_cells_exact_for_exponential_growth():
    n0, r, dt = 1000.0, 0.3, 2.0
    n1 = n0 * math.exp(r * dt)
    exact = n0 * math.expm1(r * dt) / r
    assert integrated_cells(1000, round(n1), dt) == pytest.approx(exact, rel=1e-3)
    assert integrated_cells(7, 7, 0.5) == 3.5
    assert integrated_cells(4, 0, 1.0) == 2.0
