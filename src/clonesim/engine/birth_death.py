"""The exact linear birth-death transition law over one step (DESIGN §2).

For a linear birth-death process with per-cell birth rate b and death rate d
(per day), started from one cell, the size after dt days is 0 with
probability alpha and otherwise geometric on {1, 2, ...} with parameter
1 - beta (Kendall 1948):

    r = b - d,  E = exp(r dt),
    alpha = d (E - 1) / (b E - d),  beta = b (E - 1) / (b E - d),
    (alpha = beta = b dt / (1 + b dt) when b = d).

n independent lineages therefore give K ~ Binomial(n, 1 - alpha) survivors and
n' = K + NegativeBinomial(K, 1 - beta) cells (Mather, Hasty & Tsimring 2012).
It is exact for any n and dt; only rates held constant over the step matter.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True)
def transition_coefficients(birth_rate_per_day: float, death_rate_per_day: float, dt_days: float):
    """Return (alpha, beta) of the one-cell transition law over ``dt_days``.

    Written with expm1 so that it stays accurate as b - d -> 0 and dt -> 0.
    """
    b = birth_rate_per_day
    d = death_rate_per_day
    r = b - d
    if r == 0.0:
        alpha = b * dt_days / (1.0 + b * dt_days)
        return alpha, alpha
    em1 = math.expm1(r * dt_days)  # E - 1
    denominator = b * em1 + r  # b E - d
    alpha = d * em1 / denominator
    beta = b * em1 / denominator
    # Rounding can push the coefficients a hair outside [0, 1).
    alpha = min(max(alpha, 0.0), 1.0)
    beta = min(max(beta, 0.0), 1.0 - 1e-16)
    return alpha, beta


@njit(cache=True)
def birth_death_step(rng, cells: int, birth_rate_per_day: float, death_rate_per_day: float,
                     dt_days: float) -> int:
    """Draw the exact size after ``dt_days`` of ``cells`` independent linear birth-death lineages."""
    if cells <= 0:
        return 0
    alpha, beta = transition_coefficients(birth_rate_per_day, death_rate_per_day, dt_days)
    survivors = rng.binomial(cells, 1.0 - alpha) if alpha > 0.0 else cells
    if survivors == 0 or beta == 0.0:
        return survivors
    return survivors + rng.negative_binomial(survivors, 1.0 - beta)


@njit(cache=True)
def integrated_cells(start_cells: int, end_cells: int, dt_days: float) -> float:
    """Estimate of the integral of n(t) over the step (cell-days) from its two ends.

    Exponential interpolation (logarithmic mean) when both ends are positive,
    which is exact for deterministic exponential growth; the trapezoid otherwise.
    """
    if start_cells == end_cells:
        return start_cells * dt_days
    if start_cells > 0 and end_cells > 0:
        n0 = float(start_cells)
        n1 = float(end_cells)
        return (n1 - n0) / math.log(n1 / n0) * dt_days
    return 0.5 * (start_cells + end_cells) * dt_days
