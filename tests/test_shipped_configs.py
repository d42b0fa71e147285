"""Every config in configs/ loads, validates, describes itself and smoke-runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from rich.console import Console

import clonesim
from clonesim.batch.sweep import expand_sweep
from clonesim.model import compile_model
from clonesim.model.describe import describe_model

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_there_are_shipped_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_describes_and_runs(path):
    config = clonesim.load_config(path)
    model = compile_model(config)
    console = Console(record=True, width=120)
    console.print(describe_model(model))
    assert config.name in console.export_text()
    result = clonesim.simulate(config, replicates=3, seed=1)
    patients = result.patients
    schedules = len(model.schedule_names)
    points = len(expand_sweep(config))
    assert patients.height == 3 * schedules * points
    assert patients.group_by("schedule").len()["len"].to_list() == [3 * points] * schedules
    assert set(patients["replicate"]) == {0, 1, 2}
    final_day = result.trajectories["day"].max()
    stopped = patients["extinct"] | patients["died"]
    if not stopped.all():
        assert final_day == pytest.approx(config.time.horizon_days)
    assert np.all(patients["final_cells"].to_numpy() >= 0)
    assert result.emergence.height == 3 * schedules * points * len(model.mechanism_names)
    # Every schedule starts from the same day-0 tumour (the fork).
    keys = ["point", "replicate"] if points > 1 else ["replicate"]
    day_zero = result.trajectories.filter(pl.col("day") == 0).group_by(
        "schedule", *keys).agg(pl.col("cells").sum())
    assert day_zero.group_by(keys).agg(pl.col("cells").n_unique())["cells"].max() == 1
