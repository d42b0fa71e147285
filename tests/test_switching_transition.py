"""The kernel's switching transition matrix against SciPy's expm (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_config
from scipy.linalg import expm

from clonesim.engine.kernel import switching_transition
from clonesim.model import compile_model


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
