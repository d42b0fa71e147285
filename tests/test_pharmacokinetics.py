"""One-compartment pharmacokinetics against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clonesim.model.pharmacokinetics import elimination_rate_per_day, exposure_over_step

NO_DOSE = (np.zeros(1), np.zeros(1), 0)


def dose_at(offset: float, amount: float):
    return np.array([offset]), np.array([amount]), 1


def steady_state(half_life: float, dose: float, every_days: int, days: int = 400):
    """Simulate daily steps; return the mean exposure over the last dosing cycle and its minimum."""
    k = elimination_rate_per_day(half_life)
    c = 0.0
    means = []
    for day in range(days):
        doses = dose_at(0.0, dose) if day % every_days == 0 else NO_DOSE
        mean, c = exposure_over_step(c, k, 1.0, *doses)
        means.append(mean)
    cycle = means[-every_days:]
    return float(np.mean(cycle)), float(min(cycle))


@pytest.mark.parametrize("half_life", [0.25, 2.0, 48.0])
def test_standard_regimen_averages_one(half_life):
    """Dose 1.0 daily: the steady-state average is 1.0 whatever the half-life."""
    mean, _ = steady_state(half_life, 1.0, 1, days=int(40 * half_life) + 50)
    assert mean == pytest.approx(1.0, rel=1e-9)


def test_pulsed_dose_averages_dose_over_interval_with_troughs():
    """3.0 every 7 days: average 3/7, and with a 2-day half-life a deep trough late in the week."""
    mean, trough = steady_state(2.0, 3.0, 7)
    assert mean == pytest.approx(3.0 / 7.0, rel=1e-9)
    k = math.log(2) / 2.0
    # Trough day: the last day of the cycle, closed form of the steady-state curve.
    peak = k * 3.0 / -math.expm1(-7 * k)
    expected_trough = peak * math.exp(-6 * k) * -math.expm1(-k) / k
    assert trough == pytest.approx(expected_trough, rel=1e-9)


def test_single_dose_washes_out_exponentially():
    k = elimination_rate_per_day(1.0)
    mean, c = exposure_over_step(0.0, k, 1.0, *dose_at(0.0, 1.0))
    assert c == pytest.approx(k * 0.5)  # one half-life later
    assert mean == pytest.approx((1 - 0.5) / 1.0)  # k * (1 - e^{-k}) / k
    mean2, c2 = exposure_over_step(c, k, 2.0, *NO_DOSE)
    assert c2 == pytest.approx(c * 0.25)
    assert mean2 == pytest.approx(c * (1 - 0.25) / k / 2.0)


def test_dose_inside_a_step_and_splitting_invariance():
    """A dose at 0.3 day into a 1-day step equals the same curve cut into two steps."""
    k = elimination_rate_per_day(0.7)
    whole_mean, whole_end = exposure_over_step(0.4, k, 1.0, *dose_at(0.3, 2.0))
    first_mean, middle = exposure_over_step(0.4, k, 0.3, *NO_DOSE)
    second_mean, end = exposure_over_step(middle, k, 0.7, *dose_at(0.0, 2.0))
    assert end == pytest.approx(whole_end, rel=1e-12)
    assert 0.3 * first_mean + 0.7 * second_mean == pytest.approx(whole_mean, rel=1e-12)


def test_very_long_half_life_keeps_concentration():
    """k -> 0 (half-life 1e9 days): the concentration neither decays nor loses accuracy."""
    tiny = elimination_rate_per_day(1e9)
    mean, end = exposure_over_step(1.0, tiny, 1.0, *NO_DOSE)
    assert mean == pytest.approx(1.0) and end == pytest.approx(1.0)
