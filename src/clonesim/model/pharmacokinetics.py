"""One-compartment pharmacokinetics (DESIGN §1.5) as kernel-ready functions.

Exposure is in units of the standard regimen: a dose of size D (1.0 = the
standard dose) raises the concentration by k D day, with k = ln 2 / half-life
per day, so that the standard regimen (1.0 every day) has a steady-state
average of exactly 1.0, whatever the half-life. Between doses
c(t) = c(t0) exp(-k (t - t0)). The engine uses the exact average of c over
each step, so rates stay constant within a step.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True)
def decay_integral(k, duration):
    """Integral of exp(-k s) for s in [0, duration] (= duration when k -> 0)."""
    if k * duration < 1e-12:
        return duration
    return -math.expm1(-k * duration) / k


@njit(cache=True)
def exposure_over_step(concentration_start, elimination_per_day, step_days, dose_offsets_days,
                       dose_amounts, num_doses):
    """Exact mean concentration over a step and the concentration at its end.

    Parameters: the concentration at the step's start (standard-regimen units),
    k = ln 2 / half-life (per day), the step length (days), and the first
    ``num_doses`` doses given at offsets in [0, step) with their sizes.
    Returns (mean exposure over the step, concentration at the step's end):

        mean = [c0 I(dt) + sum_i k D_i I(dt - t_i)] / dt,   I(T) = (1 - e^{-kT}) / k,
        c1   = c0 e^{-k dt} + sum_i k D_i e^{-k (dt - t_i)}.
    """
    k = elimination_per_day
    total = concentration_start * decay_integral(k, step_days)
    end = concentration_start * math.exp(-k * step_days)
    for i in range(num_doses):
        remaining = step_days - dose_offsets_days[i]
        jump = k * dose_amounts[i]
        total += jump * decay_integral(k, remaining)
        end += jump * math.exp(-k * remaining)
    return total / step_days, end


@njit(cache=True)
def elimination_rate_per_day(half_life_days):
    """k = ln 2 / t_half (per day)."""
    return math.log(2.0) / half_life_days
