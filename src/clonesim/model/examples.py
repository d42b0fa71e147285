"""Small example models shared by the statistical tests and ``scripts/verify.py``.

Each is a plain config mapping (pass it to ``config_from_mapping`` or ``simulate``);
copy it before changing it.
"""

from __future__ import annotations

from typing import Any

#: Growth, death, two alterations, a persister state with 5x mutability and
#: switching both ways, from 40 cells over 6 days: small enough for the exact
#: reference engine, rich enough to exercise every part of a step.
MIXED_SMALL_TUMOUR: dict[str, Any] = {
    "name": "mixed",
    "time": {"horizon_days": 6.0, "dt_days": 0.25, "record_every_days": 3.0},
    "tumor": {"initial_cells": 40, "initial_fractions": {"persister": 0.25}},
    "phenotypes": {
        "sensitive": {"birth_rate_per_day": 0.8, "death_rate_per_day": 0.4},
        "persister": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.05,
                      "mutation_rate_multiplier": 5},
    },
    "switching": [
        {"from": "sensitive", "to": "persister", "rate_per_day": 0.1},
        {"from": "persister", "to": "sensitive", "rate_per_day": 0.3},
    ],
    "alterations": {"A": {"mutation_rate_per_division": 4e-3},
                    "B": {"mutation_rate_per_division": 2e-3}},
}
