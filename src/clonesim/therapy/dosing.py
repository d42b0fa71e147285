"""Dosing patterns and the exposure they give over one step (DESIGN §1.5), as numba functions.

A pattern gives ``dose`` standard doses at phase-relative times 0, every, 2 every, ...
that fall in the first ``on_days`` of each cycle of ``on_days + off_days``
(``on_days = inf``: no holidays). Times are in days.
"""

from __future__ import annotations

import math

from numba import njit

from clonesim.model.pharmacokinetics import decay_integral

#: Two times closer than this (days) are the same time: doses and step points are
#: sums of configured day counts, and this absorbs their rounding.
TIME_TOLERANCE_DAYS = 1e-9


@njit(cache=True)
def pattern_is_on(since_start, on_days, off_days):
    """Whether a pattern with holidays is in its on-part ``since_start`` days into the phase."""
    if on_days == math.inf or off_days <= 0.0:
        return True
    cycle = on_days + off_days
    position = since_start - math.floor(since_start / cycle + TIME_TOLERANCE_DAYS) * cycle
    return position < on_days - TIME_TOLERANCE_DAYS


@njit(cache=True)
def next_pattern_boundary(since_start, on_days, off_days):
    """Phase-relative time of the next on/off switch after ``since_start`` (inf: none)."""
    if on_days == math.inf or off_days <= 0.0:
        return math.inf
    cycle = on_days + off_days
    base = math.floor(since_start / cycle + TIME_TOLERANCE_DAYS) * cycle
    for boundary in (base + on_days, base + cycle, base + cycle + on_days):
        if boundary > since_start + TIME_TOLERANCE_DAYS:
            return boundary
    return base + 2.0 * cycle


@njit(cache=True)
def drug_exposure_over_step(concentration_start, elimination_per_day, step_start, step_end,
                            phase_start, dose, every_days, on_days, off_days):
    """One drug over the step [step_start, step_end) of a phase that started at ``phase_start``.

    Returns (mean exposure over the step, concentration at its end, standard
    doses given in the step). With elimination k > 0 (one compartment, a dose D
    adding k D) the mean is exact:
        mean = [c0 I(T) + sum_i k D I(T - t_i)] / T,  I(x) = (1 - e^{-k x}) / k,
    with T the step length and t_i the doses' offsets in the step. With k = 0
    (no half-life) the exposure is dose / every_days while the pattern is on
    (step points fall on its on/off boundaries) and the concentration is unused.
    """
    length = step_end - step_start
    k = elimination_per_day
    given = 0.0
    total = 0.0
    end = 0.0
    if k > 0.0:
        total = concentration_start * decay_integral(k, length)
        end = concentration_start * math.exp(-k * length)
    if dose > 0.0:
        first = math.ceil((step_start - phase_start) / every_days - TIME_TOLERANCE_DAYS)
        m = max(0.0, first)
        while True:
            since_start = m * every_days
            offset = phase_start + since_start - step_start
            if offset >= length - TIME_TOLERANCE_DAYS:
                break
            if pattern_is_on(since_start, on_days, off_days):
                given += dose
                if k > 0.0:
                    remaining = length - max(offset, 0.0)
                    total += k * dose * decay_integral(k, remaining)
                    end += k * dose * math.exp(-k * remaining)
            m += 1.0
    if k > 0.0:
        return total / length, end, given
    mean = 0.0
    if dose > 0.0 and pattern_is_on(0.5 * (step_start + step_end) - phase_start, on_days,
                                    off_days):
        mean = dose / every_days
    return mean, 0.0, given
