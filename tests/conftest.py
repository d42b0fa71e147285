"""Shared helpers: configs built from dicts, kernel runs, and statistical tolerances.

Statistical tests use fixed seeds and a tolerance of Z_TOLERANCE standard errors
derived from theory: a correct engine fails one such check with probability
about 6e-5, so the suite is deterministic and not tuned to its seeds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clonesim.config import ConfigError, config_from_mapping
from clonesim.engine import runner
from clonesim.model import compile_model

#: Two-sided tolerance in standard errors for z-tests (P(|Z| > 4) ~ 6.3e-5).
Z_TOLERANCE = 4.0
#: Significance threshold for KS / chi-square tests.
P_THRESHOLD = 1e-4

MINIMAL = {
    "name": "minimal",
    "time": {"horizon_days": 5},
    "tumor": {"initial_cells": 1},
    "phenotypes": {"sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5}},
}


def make_config(base: dict[str, Any] | None = None, **sections: Any):
    """A validated Config from MINIMAL (or ``base``) with top-level sections replaced."""
    data = copy.deepcopy(base if base is not None else MINIMAL)
    data.update(sections)
    return config_from_mapping(data)


def run_model(config, replicates: int, seed: int = 1, point: int = 0):
    """Compile ``config`` and run ``replicates`` replicates through the kernel."""
    model = compile_model(config)
    return model, runner.run_block(model, seed, range(replicates), point)


def cells_at(block, day: float, phenotype: int | None = None, genotype: int | None = None
             ) -> np.ndarray:
    """Per-replicate cells recorded at ``day`` (0 where nothing was recorded)."""
    out = np.zeros(len(block.replicates), np.int64)
    for i in range(len(block.replicates)):
        rows = block.trajectory_rows[i]
        keep = np.isclose(block.traj_day[i, :rows], day)
        if phenotype is not None:
            keep &= block.traj_phenotype[i, :rows] == phenotype
        if genotype is not None:
            keep &= block.traj_genotype[i, :rows] == genotype
        out[i] = block.traj_cells[i, :rows][keep].sum()
    return out


def assert_z(observed: float, expected: float, standard_error: float, what: str) -> None:
    """|observed - expected| <= Z_TOLERANCE standard errors."""
    z = (observed - expected) / standard_error
    assert abs(z) <= Z_TOLERANCE, (
        f"{what}: observed {observed:.6g}, expected {expected:.6g}, z = {z:.2f}"
    )


@pytest.fixture
def minimal() -> dict[str, Any]:
    return copy.deepcopy(MINIMAL)


# --------------------------------------------------------------- config validation


def fails(data: Any, key: str, match: str) -> ConfigError:
    """Validate ``data``; expect a one-line ConfigError for ``key`` whose text matches ``match``."""
    with pytest.raises(ConfigError, match=match) as info:
        config_from_mapping(data)
    return check_line(info.value, key)


def check_line(error: ConfigError, key: str) -> ConfigError:
    text = str(error)
    assert "\n" not in text and "\r" not in text, text
    assert error.key == key, text
    if key:
        assert text.startswith(f"{key}: "), text
    assert text.strip() == text and len(text) < 300, text
    return error


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
