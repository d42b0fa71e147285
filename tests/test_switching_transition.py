"""The kernel's switching transition matrix against SciPy's expm (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from clonesim.engine.kernel import switching_transition
from clonesim.model import compile_model

from conftest import make_config


@pytest.mark.parametrize("days", [1e-4, 0.5, 3.0, 200.0])
def test_switching_transition_equals_expm(days):
    config = make_config(
        phenotypes={name: {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.1}
                    for name in ("a", "b", "c")},
        switching=[{"from": "a", "to": "b", "rate_per_day": 0.3},
                   {"from": "b", "to": "a", "rate_per_day": 0.05},
                   {"from": "b", "to": "c", "rate_per_day": 0.7},
                   {"from": "c", "to": "a", "rate_per_day": 2.0}],
    )
    model = compile_model(config)
    rates = model.kernel.switch_rate_per_day
    generator = rates - np.diag(rates.sum(axis=1))
    out = np.empty((3, 3))
    switching_transition(model.kernel, 1.0, days, out)
    np.testing.assert_allclose(out, expm(generator * days), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-14)


def test_multinomial_split_law():
    """Conditional binomials give Multinomial(n, w / sum w): means, variances, zero weights."""
    from numba import njit

    from clonesim.engine.kernel import multinomial_split

    @njit
    def draw(rng, total, weights, count):
        out = np.empty((count, weights.shape[0]), np.int64)
        counts = np.empty(weights.shape[0], np.int64)
        for i in range(count):
            multinomial_split(rng, total, weights, counts)
            out[i] = counts
        return out

    weights = np.array([0.2, 0.0, 1e-9, 0.5, 0.3])
    total, count = 1000, 20_000
    draws = draw(np.random.default_rng(3), total, weights, count)
    assert np.all(draws.sum(axis=1) == total)  # nothing lost or invented
    assert np.all(draws[:, 1] == 0)  # zero weight gets nothing
    p = weights / weights.sum()
    se = np.sqrt(total * p * (1 - p) / count)
    z = (draws.mean(axis=0) - total * p) / np.where(se > 0, se, 1)
    assert np.all(np.abs(z) <= 4.0), z
    var = draws[:, [0, 3, 4]].var(axis=0, ddof=1)
    expected = total * p[[0, 3, 4]] * (1 - p[[0, 3, 4]])
    assert np.all(np.abs(var / expected - 1) <= 4.0 * np.sqrt(2 / (count - 1)) + 0.01)
