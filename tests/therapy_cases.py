"""Therapy test cases shared by the engine's and the reference engine's tests.

Both engines must meet the same hand-computed expectations on the same configs,
so the configs and the exact moments they are checked against live here once.
"""

from __future__ import annotations

import math

from clonesim.config import config_from_mapping
from clonesim.model import compile_model

#: IC50 of a drug that shuts its pathway: at exposure 1, x = 1e6 and s = 1 / (1 + 1e6).
SHUT_IC50 = 1e-6
SHUT_SIGNAL = 1.0 / (1.0 + 1.0 / SHUT_IC50)


def therapy_model(**sections):
    """A compiled model from config sections (the name is a placeholder)."""
    data = {"name": "therapy-test"}
    data.update(sections)
    return compile_model(config_from_mapping(data))


def piecewise_moments(n0: int, births, deaths, lengths) -> tuple[float, float]:
    """(E N, Var N) of a linear birth-death process after intervals of constant rates.

    With m(t) = exp(int (b - d)), E N = n0 m and
    Var N = n0 (2 m^2 int b(u) / m(u) du + m - m^2).
    """
    log_m = 0.0
    integral = 0.0  # int b(u) / m(u) du
    for b, d, length in zip(births, deaths, lengths, strict=True):
        r = b - d
        part = length if abs(r) < 1e-14 else -math.expm1(-r * length) / r
        integral += b * math.exp(-log_m) * part
        log_m += r * length
    m = math.exp(log_m)
    return n0 * m, n0 * (2.0 * m * m * integral + m - m * m)


def switch_model(horizon: float):
    """b_p 0.5, d_p 0.1, phi 1, k_p 0.3: drug A shuts the driver (b ~ 0, d ~ 0.4, r ~ -0.4);
    drug B only targets a pathway the cells do not use (s = 1, r = +0.4)."""
    return therapy_model(
        time={"horizon_days": horizon},
        tumor={"initial_cells": 200, "detection_cells": 1},
        pathways=["driver", "other"],
        phenotypes={"s": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.1,
                          "drug_kill_rate_per_day": 0.3, "cytostatic_share": 1.0}},
        drugs={"A": {"targets": {"driver": {"ic50": SHUT_IC50}}},
               "B": {"targets": {"other": {"ic50": 1.0}}}},
        schedules={
            "switch": [{"drugs": ["A"], "until": {"day": 7.5}}, {"drugs": ["B"]}],
            "cycle": {"repeat": True, "phases": [
                {"drugs": ["A"], "until": {"after_days": 2.5}},
                {"drugs": [], "until": {"after_days": 1.5}}]},
            "pulsed": [{"drugs": [{"name": "A", "on_days": 2.5, "off_days": 1.5}]}],
        },
    )


ON = (0.5 * SHUT_SIGNAL, 0.1 + 0.3 * (1.0 - SHUT_SIGNAL))  # (b, d) of switch_model under drug A
OFF = (0.5, 0.1)


def declining_model(horizon: float, n0: int):
    """Under drug A: b = 0.3, d = 0.1 + 0.4 (1 - s) with s = 1 / (1 + 10^6), so r ~ -0.2.

    The imaging limit (1000 cells) is out of reach: no progression, every response is CR.
    """
    return therapy_model(
        time={"horizon_days": horizon},
        tumor={"initial_cells": n0, "detection_cells": 1000},
        phenotypes={"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.1,
                          "drug_kill_rate_per_day": 0.4}},
        drugs={"A": {"targets": {"driver": {"ic50": SHUT_IC50}}}},
        schedules={"on": [{"drugs": ["A"]}]},
    )


def ctdna_model(limit: float, dt: float = 1.0, record_every_days: float = 7.0):
    """2 x 10^4 cells, 100 of them res (VAF 100 / (2 N)). No birth: sensitive cells die at
    0.1 per day under tki (k_p = 0.1), res cells (bypass open, s = 1) never change."""
    return therapy_model(
        time={"horizon_days": 30, "dt_days": dt, "record_every_days": record_every_days},
        tumor={"initial_cells": 20_000, "detection_cells": 1,
               "initial_fractions": {"res": 0.005}},
        pathways=["driver", "bypass"],
        alterations={"res": {"mutation_rate_per_division": 0.0, "adds_pathway": "bypass"}},
        phenotypes={"s": {"birth_rate_per_day": 0.0, "death_rate_per_day": 0.0,
                          "drug_kill_rate_per_day": 0.1}},
        drugs={"tki": {"targets": {"driver": {"ic50": SHUT_IC50}}},
               "met": {"targets": {"bypass": {"ic50": SHUT_IC50}}}},
        events={"established_cells": 50, "ctdna": {"every_days": 10,
                                                   "detection_limit_vaf": limit}},
        schedules={"guided": [{"drugs": ["tki"], "until": {"ctdna_detects": "res"}},
                              {"drugs": ["tki", "met"]}]},
    )
