"""The compiled kernel equals the same code run as plain Python (NUMBA_DISABLE_JIT=1).

numba's Generator methods draw exactly what NumPy's do from the same state, so
the interpreted kernel is an obviously-correct slow version of the compiled one
on identical random inputs: any typing, overflow or compilation difference shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import json, sys
import numpy as np
from clonesim.config import config_from_mapping
from clonesim.engine import runner
from clonesim.model import compile_model
config = config_from_mapping(json.loads(sys.argv[1]))
block = runner.run_block(compile_model(config), 17, range(6))
rows = block.trajectory_rows
print(json.dumps({
    "final": block.final_cells.tolist(),
    "status": block.status.tolist(),
    "arise": np.nan_to_num(block.mechanism_arise_day, nan=-1e9).tolist(),
    "start": block.mechanism_cells_at_start.tolist(),
    "diagnosis": np.nan_to_num(block.days_to_diagnosis, nan=-1e9).tolist(),
    "cells": [block.traj_cells[i, :rows[i]].tolist() for i in range(len(rows))],
    "genotype": [block.traj_genotype[i, :rows[i]].tolist() for i in range(len(rows))],
}))
"""

CONFIG = {
    "name": "python-vs-jit",
    "time": {"horizon_days": 12, "dt_days": 0.5, "record_every_days": 2},
    "tumor": {"grow_from_single_cell_to": 300, "carrying_capacity_cells": 5000},
    "phenotypes": {
        "sensitive": {"birth_rate_per_day": 0.9, "death_rate_per_day": 0.3},
        "persister": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.05,
                      "mutation_rate_multiplier": 5},
    },
    "switching": [
        {"from": "sensitive", "to": "persister", "rate_per_day": 0.05},
        {"from": "persister", "to": "sensitive", "rate_per_day": 0.2},
    ],
    "alterations": {"A": {"mutation_rate_per_division": 0.01},
                    "B": {"mutation_rate_per_division": 0.004}},
}


def _run(disable_jit: bool) -> dict:
    env = dict(os.environ, NUMBA_DISABLE_JIT="1" if disable_jit else "0")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(CONFIG)],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )
    return json.loads(done.stdout)


def test_compiled_kernel_equals_interpreted_kernel():
    compiled = _run(disable_jit=False)
    interpreted = _run(disable_jit=True)
    assert compiled == interpreted
    # The case exercises what it claims: mutants, both phenotypes, pre-growth.
    assert max(max(g) for g in compiled["genotype"]) >= 1
    assert all(d > 0 for d in compiled["diagnosis"])
    assert np.array(compiled["start"])[:, 2].sum() > 0
