"""The exact Gillespie reference engine against closed-form results.

Statistical tests use fixed seeds and tolerances derived from theory: a
statistic whose exact mean mu and standard error se (from the exact variance
and the number of replicates) are known must satisfy |x - mu| <= Z * se with
Z = 4.5 (a correct engine fails a given check with probability ~7e-6); whole
distributions are checked with a chi-square or Kolmogorov-Smirnov test at
P_MIN = 1e-5 (the same false-alarm rate). The alternatives each test guards
against (stated per test) sit many standard errors away.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from clonesim.config import config_from_mapping
from clonesim.engine.reference import (
    ReferenceResult,
    simulate_reference,
    simulate_reference_many,
)
from clonesim.model import compile_model

Z = 4.5  # standard errors allowed between an estimate and its exact value
P_MIN = 1e-5  # smallest acceptable goodness-of-fit p-value


def _model(tumor: dict, phenotypes: dict, horizon_days: float, **extra):
    return compile_model(
        config_from_mapping(
            {
                "name": "reference-test",
                "time": {"horizon_days": horizon_days},
                "tumor": tumor,
                "phenotypes": phenotypes,
                **extra,
            }
        )
    )


def _assert_close(estimate: float, exact: float, standard_error: float, what: str) -> None:
    z = (estimate - exact) / standard_error
    assert abs(z) <= Z, f"{what}: {estimate:.6g} vs exact {exact:.6g} ({z:+.2f} standard errors)"


def _assert_binomial(successes: int, trials: int, p: float, what: str) -> None:
    """successes ~ Binomial(trials, p): normal approximation, se = sqrt(n p (1-p))."""
    _assert_close(successes / trials, p, math.sqrt(p * (1 - p) / trials), what)


def _chi_square_pvalue(values: np.ndarray, pmf: np.ndarray, min_expected: float = 5.0) -> float:
    """Goodness of fit of integer ``values`` to ``pmf`` over 0..len-1 (tail mass: last bin).

    Adjacent cells are merged left to right until each expects >= ``min_expected``.
    """
    n = len(values)
    tail = max(0.0, 1.0 - pmf.sum())
    expected_cells = np.append(pmf, tail) * n
    observed_cells = np.bincount(np.minimum(values, len(pmf)), minlength=len(pmf) + 1)
    observed, expected = [], []
    o = e = 0.0
    for oc, ec in zip(observed_cells, expected_cells, strict=True):
        o += oc
        e += ec
        if e >= min_expected:
            observed.append(o)
            expected.append(e)
            o = e = 0.0
    observed[-1] += o
    expected[-1] += e
    expected = np.array(expected) * (n / np.sum(expected))
    return stats.chisquare(observed, expected).pvalue


# ----------------------------------------------------------------- birth-death from one cell


def test_birth_death_from_one_cell_matches_kendall():
    """b = 1, d = 0.5 per day from one cell, t = 3 days (Kendall 1948).

    With r = b - d, E = e^{rt}: alpha = d(E-1)/(bE-d) = P(N(t) = 0),
    beta = b(E-1)/(bE-d), P(N(t) = k) = (1-alpha)(1-beta) beta^{k-1} for k >= 1;
    E N(t) = E, Var N(t) = (b+d)/(b-d) E (E-1). The standard error of the
    sample variance is sqrt((mu4 - sigma^4)/n), mu4 the exact 4th central moment.
    """
    b, d, t, n = 1.0, 0.5, 3.0, 4000
    model = _model({"initial_cells": 1},
                   {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}}, horizon_days=t)
    results = simulate_reference_many(model, seed=11, replicates=n)
    final = np.array([r.final_cells for r in results])
    extinct = np.array([r.status == "extinct" for r in results])
    assert all(r.status in ("alive", "extinct") for r in results)
    assert np.array_equal(extinct, final == 0)
    assert all(r.snapshots[-1] == ({(0, 0): r.final_cells} if r.final_cells else {})
               for r in results)

    E = math.exp((b - d) * t)
    alpha = d * (E - 1) / (b * E - d)
    beta = b * (E - 1) / (b * E - d)
    mean, variance = E, (b + d) / (b - d) * E * (E - 1)
    k = np.arange(1, 2000)
    pmf = np.concatenate([[alpha], (1 - alpha) * (1 - beta) * beta ** (k - 1)])
    support = np.arange(len(pmf))
    assert np.isclose(pmf @ support, mean) and np.isclose(pmf @ (support - mean) ** 2, variance)
    mu4 = pmf @ (support - mean) ** 4

    _assert_binomial(int(extinct.sum()), n, alpha, "P(extinct by t)")
    _assert_close(final.mean(), mean, math.sqrt(variance / n), "E N(t)")
    _assert_close(final.var(ddof=1), variance, math.sqrt((mu4 - variance**2) / n), "Var N(t)")
    assert _chi_square_pvalue(final, pmf) > P_MIN
    # Extinction days are recorded and inside (0, t].
    stop = np.array([r.stop_day for r in results])
    assert np.all((stop[extinct] > 0) & (stop[extinct] <= t)) and np.all(np.isnan(stop[~extinct]))


def test_ultimate_extinction_is_gamblers_ruin():
    """Extinction before reaching L cells, from one cell (gambler's ruin on the jump chain).

    Each event is a birth with probability b/(b+d), a death otherwise, so with
    rho = d/b, P(hit 0 before L) = (rho - rho^L) / (1 - rho^L) (-> d/b as L grows).
    The horizon (300 days) is far beyond the time to absorption (~ln(L)/(b-d)
    days), so every replicate ends extinct or died.
    """
    b, d, lethal, n = 1.0, 0.6, 100, 4000
    model = _model({"initial_cells": 1, "lethal_cells": lethal},
                   {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}}, horizon_days=300)
    results = simulate_reference_many(model, seed=12, replicates=n)
    statuses = [r.status for r in results]
    assert set(statuses) <= {"extinct", "died"}
    assert all(r.final_cells == lethal for r in results if r.status == "died")
    rho = d / b
    ruin = (rho - rho**lethal) / (1 - rho**lethal)
    _assert_binomial(statuses.count("extinct"), n, ruin, "P(ultimate extinction)")


def test_logistic_growth_time_to_capacity():
    """Pure birth b = 1 with carrying capacity K = 100 and lethal_cells = K, from one cell.

    From n cells the only event is a birth at rate lambda_n = n (1 - n/K), so the
    day the burden reaches K is a sum of independent Exp(lambda_n), n = 1..K-1:
    mean sum 1/lambda_n = 2 H_{K-1} ~ 10.35 (5.18 without competition),
    variance sum 1/lambda_n^2.
    """
    K, n = 100, 2000
    model = _model({"initial_cells": 1, "lethal_cells": K, "carrying_capacity_cells": K},
                   {"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.0}},
                   horizon_days=200)
    results = simulate_reference_many(model, seed=13, replicates=n)
    assert all(r.status == "died" and r.final_cells == K for r in results)
    stop = np.array([r.stop_day for r in results])
    rates = np.arange(1, K) * (1 - np.arange(1, K) / K)
    _assert_close(stop.mean(), np.sum(1 / rates), math.sqrt(np.sum(1 / rates**2) / n),
                  "mean day to reach K")


# ----------------------------------------------------------------------------- switching


def test_pure_switching_matches_two_state_chain():
    """b = d = 0, two phenotypes, switching 0 -> 1 at s01 and 1 -> 0 at s10, N cells in 0.

    Cells switch independently, each a two-state Markov chain: P(in 1 at t) =
    s01/(s01+s10) (1 - e^{-(s01+s10) t}), so the persister count summed over R
    replicates is Binomial(N R, p1(t)); at t = 50 days it is the equilibrium
    s01/(s01+s10) to within e^{-20}. The first switch of any of the N cells comes
    after Exp(N s01): the persister's mean arise day is 1/(N s01), standard
    error 1/(N s01 sqrt(R)).
    """
    s01, s10, cells, n = 0.3, 0.1, 200, 200
    days = [0.0, 0.5, 2.0, 50.0]
    model = _model(
        {"initial_cells": cells},
        {"sensitive": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0},
         "persister": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0}},
        horizon_days=50,
        switching=[{"from": "sensitive", "to": "persister", "rate_per_day": s01},
                   {"from": "persister", "to": "sensitive", "rate_per_day": s10}],
    )
    results = simulate_reference_many(model, seed=14, replicates=n, record_days=days)
    assert all(r.status == "alive" and r.final_cells == cells for r in results)
    for i, t in enumerate(days):
        in_one = sum(r.snapshots[i].get((0, 1), 0) for r in results)
        assert all(sum(r.snapshots[i].values()) == cells for r in results)
        p1 = s01 / (s01 + s10) * (1 - math.exp(-(s01 + s10) * t))
        if t == 0.0:
            assert in_one == 0
        else:
            _assert_binomial(in_one, cells * n, p1, f"fraction in phenotype 1 at day {t}")
    arise = np.array([r.arise_day[0] for r in results])
    assert np.all(np.isfinite(arise)) and all(r.cells_at_start[0] == 0 for r in results)
    first = 1 / (cells * s01)
    _assert_close(arise.mean(), first, first / math.sqrt(n), "first switch day")


# ----------------------------------------------------------- pre-growth (Luria-Delbruck)


def _mutant_count_pmf(cells: int, u: float) -> np.ndarray:
    """Exact law of the mutant count when a pure-birth tumour first holds ``cells`` cells.

    All cells divide at the same rate, so at each division (total n -> n+1) the
    dividing cell is wild type with probability w/n. A wild-type division is a
    mutant division with probability u (mutant + 1, wild type unchanged);
    mutants always divide into mutants. So with m mutants among n cells,
    P(m -> m+1) = ((n-m) u + m) / n, P(m -> m) = (n-m)(1-u)/n.
    """
    pmf = np.zeros(cells)
    pmf[0] = 1.0
    for n in range(1, cells):
        m = np.arange(n)
        stay = pmf[:n] * (n - m) * (1 - u) / n
        move = pmf[:n] * ((n - m) * u + m) / n
        pmf[:n] = stay
        pmf[1 : n + 1] += move
    return pmf


def test_pregrowth_luria_delbruck():
    """Pure birth (b = 1, d = 0) from one cell to N = 2000 cells, one alteration.

    u = 5e-4 per division and a founder mutation-rate multiplier of 2, so a
    wild-type division is a mutant division with probability q = 1e-3.
    With d = 0 every division adds exactly one cell, so the burden first equals
    N after exactly N - 1 divisions and never skips it. No mutant at day 0 <=>
    none of those divisions was a mutant division (mutants cannot die); while
    there is no mutant every division is a wild-type one, a mutant division
    independently with probability q, so P(no mutant at day 0) = (1-q)^(N-1).
    The whole mutant-count law comes from the recursion in ``_mutant_count_pmf``.
    The time to diagnosis is that of a Yule process from 1 to N cells (every cell
    divides at rate 1 whatever its genotype): sum_{k=1}^{N-1} Exp(k), mean
    H_{N-1}, variance sum 1/k^2.
    """
    N, u, multiplier, n = 2000, 5e-4, 2.0, 3000
    q = u * multiplier
    model = _model(
        {"grow_from_single_cell_to": N},
        {"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.0,
               "mutation_rate_multiplier": multiplier}},
        horizon_days=1.0,
        alterations={"met": {"mutation_rate_per_division": u}},
    )
    results = simulate_reference_many(model, seed=15, replicates=n, record_days=[0.0])
    assert all(sum(r.snapshots[0].values()) == N for r in results)
    mutants = np.array([r.cells_at_start[0] for r in results])
    assert np.array_equal(mutants, [r.snapshots[0].get((1, 0), 0) for r in results])

    _assert_binomial(int(np.sum(mutants == 0)), n, (1 - q) ** (N - 1), "P(no mutant at day 0)")
    assert _chi_square_pvalue(mutants, _mutant_count_pmf(N, q)) > P_MIN

    diagnosis = np.array([r.days_to_diagnosis for r in results])
    k = np.arange(1, N)
    _assert_close(diagnosis.mean(), np.sum(1 / k), math.sqrt(np.sum(1 / k**2) / n),
                  "mean days to diagnosis")
    # Mutants never die: a mechanism arose in pre-growth (arise day <= 0; the run then
    # goes on to the horizon, where later arisings have days > 0) iff it is present at day 0.
    arise = np.array([r.arise_day[0] for r in results])
    present = mutants > 0
    assert np.array_equal(arise <= 0, present)
    assert np.all(arise[present] >= -diagnosis[present])


def test_pregrowth_restart_resets_the_clock():
    """Grow to 2 cells with b = 1, d = 0.9: a failed lineage restarts from one cell.

    The successful attempt is one birth as the first event; the time to an event
    is Exp(b + d) whatever the event, so days_to_diagnosis ~ Exp(b + d) = Exp(1.9).
    (Counting the failed attempts' time too would give Exp(b), mean 1.9x longer.)
    """
    b, d, n = 1.0, 0.9, 2000
    model = _model({"grow_from_single_cell_to": 2},
                   {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}}, horizon_days=1.0)
    results = simulate_reference_many(model, seed=16, replicates=n, record_days=[0.0])
    assert all(r.snapshots[0] == {(0, 0): 2} for r in results)
    diagnosis = np.array([r.days_to_diagnosis for r in results])
    assert stats.kstest(diagnosis, stats.expon(scale=1 / (b + d)).cdf).pvalue > P_MIN


def _conditioned_pregrowth(target: int, b: float, d: float, u: float) -> tuple[float, float]:
    """Exact (P(a mutation arose), P(mutants at day 0)) given the lineage reaches ``target``.

    First-step analysis on the jump chain of (wild type w, mutants m, arisen flag)
    with 0 < w + m < target, absorbing at 0 (failure) and at target (success).
    Per cell: wild-type normal division b(1-u), mutant division b u (sets the
    flag), mutant division b (mutants carry the only alteration), death d.
    """
    states = [(w, n - w, f) for n in range(1, target) for w in range(n + 1) for f in (0, 1)]
    index = {s: i for i, s in enumerate(states)}
    A = np.eye(len(states))
    success, arisen, present = (np.zeros(len(states)) for _ in range(3))
    for (w, m, f), i in index.items():
        total = (b + d) * (w + m)
        moves = [(b * (1 - u) * w, (w + 1, m, f)), (b * u * w, (w, m + 1, 1)),
                 (b * m, (w, m + 1, f)), (d * w, (w - 1, m, f)), (d * m, (w, m - 1, f))]
        for rate, (w2, m2, f2) in moves:
            p = rate / total
            if p == 0.0 or w2 + m2 == 0:
                continue
            if w2 + m2 == target:
                success[i] += p
                arisen[i] += p * f2
                present[i] += p * (m2 > 0)
            else:
                A[i, index[(w2, m2, f2)]] -= p
    start = index[(1, 0, 0)]
    reach = np.linalg.solve(A, success)[start]
    return (np.linalg.solve(A, arisen)[start] / reach,
            np.linalg.solve(A, present)[start] / reach)


def test_pregrowth_restart_resets_arising():
    """Grow to 4 cells (b = 1, d = 0.9) with a mutant division probability u = 0.2.

    Given the lineage reaches 4 cells, P(a mutation arose in it) = 0.5729 and
    P(mutants at day 0) come from ``_conditioned_pregrowth``. Keeping arisings
    from restarted (failed) lineages would give P(arose) = 0.6636, ~11 standard
    errors away with 3000 replicates.
    """
    b, d, u, target, n = 1.0, 0.9, 0.2, 4, 3000
    model = _model({"grow_from_single_cell_to": target},
                   {"s": {"birth_rate_per_day": b, "death_rate_per_day": d}}, horizon_days=1.0,
                   alterations={"met": {"mutation_rate_per_division": u}})
    results = simulate_reference_many(model, seed=17, replicates=n, record_days=[0.0])
    # Arose in pre-growth: arise day <= 0 (arisings after day 0, before the horizon, are > 0).
    arise = np.array([r.arise_day[0] for r in results])
    arisen = arise <= 0
    present = np.array([r.cells_at_start[0] > 0 for r in results])
    assert np.all(arisen[present])
    diagnosis = np.array([r.days_to_diagnosis for r in results])
    assert np.all(arise[arisen] >= -diagnosis[arisen])
    p_arisen, p_present = _conditioned_pregrowth(target, b, d, u)
    _assert_binomial(int(arisen.sum()), n, p_arisen, "P(mutation arose in pre-growth)")
    _assert_binomial(int(present.sum()), n, p_present, "P(mutants at day 0)")


# ------------------------------------------------------------------------- bookkeeping


def _two_phenotype_model(**tumor):
    return _model(
        {"initial_cells": 1000, **tumor},
        {"sensitive": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.4},
         "persister": {"birth_rate_per_day": 0.05, "death_rate_per_day": 0.01}},
        horizon_days=4,
        switching=[{"from": "sensitive", "to": "persister", "rate_per_day": 0.01}],
        alterations={"met": {"mutation_rate_per_division": 1e-3},
                     "t790m": {"mutation_rate_per_division": 1e-3}},
    )


def test_initial_tumour_split_and_reproducibility():
    model = _two_phenotype_model(initial_fractions={"persister": 0.2, "met": 0.1, "t790m": 0.05})
    result = simulate_reference(model, seed=3, replicate=7, record_days=[0.0, 2.0, 4.0])
    assert isinstance(result, ReferenceResult)
    # 200 persisters, 800 sensitive; in each, 10 % MET-amplified and 5 % T790M.
    assert result.snapshots[0] == {(0, 0): 680, (1, 0): 80, (2, 0): 40,
                                   (0, 1): 170, (1, 1): 20, (2, 1): 10}
    assert model.mechanism_names == ("met", "t790m", "persister")
    assert result.cells_at_start.tolist() == [100, 50, 200]
    assert result.arise_day.tolist() == [0.0, 0.0, 0.0]
    assert result.snapshot_days.tolist() == [0.0, 2.0, 4.0]
    assert result.status == "alive" and math.isnan(result.stop_day)
    assert result.final_cells == sum(result.snapshots[-1].values())
    assert math.isnan(result.days_to_diagnosis)

    again = simulate_reference(model, seed=3, replicate=7, record_days=[0.0, 2.0, 4.0])
    assert again.snapshots == result.snapshots
    other = simulate_reference(model, seed=3, replicate=8, record_days=[0.0, 2.0, 4.0])
    assert other.snapshots[1:] != result.snapshots[1:]
    many = simulate_reference_many(model, seed=3, replicates=9, record_days=[0.0, 2.0, 4.0])
    assert many[7].snapshots == result.snapshots


def test_snapshots_after_a_stop_hold_the_stop_state():
    model = _model({"initial_cells": 3},
                   {"s": {"birth_rate_per_day": 0.0, "death_rate_per_day": 2.0}},
                   horizon_days=50)
    result = simulate_reference(model, seed=1, replicate=0, record_days=[0.0, 25.0, 50.0])
    # Extinction after Exp(6) + Exp(4) + Exp(2) days: by day 25 with probability ~1 - 1e-21.
    assert result.status == "extinct" and 0 < result.stop_day < 25
    assert result.snapshots == [{(0, 0): 3}, {}, {}]
    assert result.final_cells == 0

    default = simulate_reference(model, seed=1, replicate=0)
    assert default.snapshot_days.tolist() == [0.0, 50.0]
    with pytest.raises(ValueError, match="record_days"):
        simulate_reference(model, seed=1, replicate=0, record_days=[0.0, 60.0])
    with pytest.raises(ValueError, match="record_days"):
        simulate_reference(model, seed=1, replicate=0, record_days=[2.0, 1.0])
