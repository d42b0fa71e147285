"""Analytic results for the model: used by ``clonesim validate`` and by the statistical tests.

All rates are per day, times in days, sizes in cells.
"""

from __future__ import annotations

import math

import numpy as np

from clonesim.model.compiled import CompiledModel


def one_cell_law(birth_rate_per_day: float, death_rate_per_day: float, days: float
                 ) -> tuple[float, float, float]:
    """Linear birth-death from one cell (Kendall 1948): (P(extinct by t), E[N(t)], Var[N(t)]).

    With r = b - d, E = exp(r t): P0 = d (E - 1) / (b E - d), E[N] = E,
    Var[N] = (b + d)/(b - d) E (E - 1)  (= 2 b t when b = d).
    """
    b, d, t = birth_rate_per_day, death_rate_per_day, days
    r = b - d
    if r == 0.0:
        return b * t / (1.0 + b * t), 1.0, 2.0 * b * t
    growth = math.exp(r * t)
    extinct = d * (growth - 1.0) / (b * growth - d)
    return extinct, growth, (b + d) / r * growth * (growth - 1.0)


def mean_matrix(model: CompiledModel, genotype: int = 0) -> np.ndarray:
    """The (P, P) generator of expected cell numbers per phenotype for one genotype, untreated.

    dE[n]/dt = n A with A[p, p] = b_p - d_p - sum_q sigma_pq and A[p, q] = sigma_pq.
    Mutation is ignored (without drugs a mutant daughter has its parent's rates).
    """
    k = model.kernel
    sigma = k.switch_rate_per_day.copy()
    np.fill_diagonal(sigma, 0.0)
    matrix = sigma.copy()
    net = k.phenotype_birth_rate_per_day - k.phenotype_death_rate_per_day
    np.fill_diagonal(matrix, net - sigma.sum(axis=1))
    return matrix


def long_run_phenotype_fractions(model: CompiledModel) -> tuple[float, np.ndarray]:
    """Malthusian growth rate (per day) and the stable phenotype composition.

    The dominant eigenvalue lambda of the mean matrix A and its left eigenvector
    (normalised to sum 1): the composition that any growing, switching
    population approaches. With equal net growth in every phenotype, this is
    the switching chain's equilibrium (e.g. s01 / (s01 + s10) for two states).
    """
    values, vectors = np.linalg.eig(mean_matrix(model).T)
    lead = int(np.argmax(values.real))
    vector = np.abs(vectors[:, lead].real)
    return float(values[lead].real), vector / vector.sum()


def extinction_probability_per_cell(model: CompiledModel, tolerance: float = 1e-13,
                                    max_iterations: int = 1_000_000) -> np.ndarray:
    """Probability that the lineage of one founder-genotype cell of each phenotype dies out.

    The minimal solution of the multitype branching fixed point
    q_p = (d_p + b_p q_p^2 + sum_q sigma_pq q_q) / (b_p + d_p + sum_q sigma_pq),
    found by iteration from q = 0 (single type: q = min(1, d/b)). Untreated,
    without carrying capacity; mutant daughters count as the parent's type,
    which is exact while alterations do not change rates (no drugs).
    """
    k = model.kernel
    b = k.phenotype_birth_rate_per_day
    d = k.phenotype_death_rate_per_day
    sigma = k.switch_rate_per_day.copy()
    np.fill_diagonal(sigma, 0.0)
    total = b + d + sigma.sum(axis=1)
    q = np.zeros_like(b)
    for _ in range(max_iterations):
        with np.errstate(invalid="ignore", divide="ignore"):
            new = np.where(total > 0, (d + b * q * q + sigma @ q) / np.where(total > 0, total, 1), 1.0)
        if np.max(np.abs(new - q)) < tolerance:
            return new
        q = new
    return q


def expected_preexisting_mutants(birth_rate_per_day: float, death_rate_per_day: float,
                                 mutation_rate_per_division: float, size_cells: float
                                 ) -> tuple[float, float]:
    """Mutants present when a tumour grown from one cell reaches ``size_cells`` (one type).

    Growth is treated as deterministic, n(t) = N exp(-r (T - t)), and mutants
    as neutral independent lineages (Luria-Delbrück with cell death):

    * mean mutant cells  E[M] ~ (u b / r) N ln(N (1 - d/b));
    * P(any mutant cell) ~ 1 - exp(-u N (b/d) ln(b/r))  (-> 1 - exp(-u N) as d -> 0).

    Returns (expected mutant cells, probability that at least one is present).
    """
    b, d, u, size = birth_rate_per_day, death_rate_per_day, mutation_rate_per_division, size_cells
    r = b - d
    if r <= 0.0 or u == 0.0:
        return 0.0, 0.0
    mean = u * b / r * size * math.log(max(size * (1.0 - d / b), 1.0))
    lineages = u * size if d == 0.0 else u * size * (b / d) * math.log(b / r)
    return mean, -math.expm1(-lineages)


def pure_birth_mutant_moments(size_cells: int, mutation_rate_per_division: float
                              ) -> tuple[float, float, float]:
    """Exact law of mutants in a pure-birth (Yule) population at total size N, from one cell.

    Every cell divides at the same rate and a non-mutant division makes a mutant
    daughter with probability u. On the jump chain, with M_k mutants at size k,
    P(M_{k+1} = M_k + 1) = M_k/k + u (k - M_k)/k, so
    E[M_{k+1}] = E[M_k](1 + (1-u)/k) + u and
    E[M_{k+1}^2] = E[M_k^2](1 + 2(1-u)/k) + E[M_k](2u + (1-u)/k) + u.
    Returns (P(M_N = 0) = (1-u)^(N-1), E[M_N], Var[M_N]).
    """
    u = mutation_rate_per_division
    first = 0.0
    second = 0.0
    for k in range(1, int(size_cells)):
        second = second * (1.0 + 2.0 * (1.0 - u) / k) + first * (2.0 * u + (1.0 - u) / k) + u
        first = first * (1.0 + (1.0 - u) / k) + u
    return (1.0 - u) ** (int(size_cells) - 1), first, second - first * first
