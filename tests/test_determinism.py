"""Reproducibility: threads, blocks, replicate k alone or in a batch, same seed same bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np
import pytest

import clonesim
from clonesim.engine import runner
from clonesim.model import compile_model

from conftest import make_config

RICH = {
    "name": "determinism",
    "time": {"horizon_days": 60, "dt_days": 1.0, "record_every_days": 5},
    "tumor": {"initial_cells": 20000, "initial_fractions": {"persister": 0.01, "A": 0.001}},
    "phenotypes": {
        "sensitive": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.45},
        "persister": {"birth_rate_per_day": 0.05, "death_rate_per_day": 0.01,
                      "mutation_rate_multiplier": 10},
    },
    "switching": [
        {"from": "sensitive", "to": "persister", "rate_per_day": 0.01},
        {"from": "persister", "to": "sensitive", "rate_per_day": 0.1},
    ],
    "alterations": {"A": {"mutation_rate_per_division": 1e-4},
                    "B": {"mutation_rate_per_division": 5e-5}},
}


def _arrays(block: runner.BlockResult) -> dict[str, np.ndarray]:
    rows = block.trajectory_rows
    out = {name: getattr(block, name) for name in (
        "status", "stop_day", "final_cells", "days_to_diagnosis", "trajectory_rows",
        "mechanism_cells_at_start", "mechanism_arise_day")}
    for name in ("traj_day", "traj_genotype", "traj_phenotype", "traj_cells"):
        full = getattr(block, name)
        out[name] = np.concatenate([full[i, : rows[i]] for i in range(len(rows))])
    return out


def _assert_same(a: runner.BlockResult, b: runner.BlockResult) -> None:
    left, right = _arrays(a), _arrays(b)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


@pytest.fixture(scope="module")
def model():
    return compile_model(make_config(RICH))


def test_thread_count_does_not_change_results(model):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = runner.run_block(model, 3, range(64))
        numba.set_num_threads(2)
        two = runner.run_block(model, 3, range(64))
    finally:
        numba.set_num_threads(before)
    _assert_same(one, two)


def test_replicate_alone_equals_replicate_in_batch(model):
    batch = runner.run_block(model, 9, range(200))
    for k in (0, 57, 199):
        alone = runner.run_block(model, 9, [k])
        left, right = _arrays(alone), _arrays(batch)
        rows = batch.trajectory_rows
        start = int(rows[:k].sum())
        np.testing.assert_array_equal(right["traj_cells"][start : start + rows[k]], left["traj_cells"])
        np.testing.assert_array_equal(batch.mechanism_arise_day[k], alone.mechanism_arise_day[0])
        assert batch.final_cells[k] == alone.final_cells[0]


def test_block_size_does_not_change_results(model):
    blocks = list(runner.iterate_blocks(model, 4, range(50), block_size=7))
    whole = runner.run_block(model, 4, range(50))
    np.testing.assert_array_equal(np.concatenate([b.final_cells for b in blocks]), whole.final_cells)
    np.testing.assert_array_equal(
        np.concatenate([b.mechanism_arise_day for b in blocks]), whole.mechanism_arise_day
    )


def test_overflowing_trajectory_buffer_is_rerun_identically(model, monkeypatch):
    reference = runner.run_block(model, 5, range(30))
    monkeypatch.setattr(runner, "INITIAL_ROWS_PER_RECORD", 1)
    small = runner.run_block(model, 5, range(30))
    assert (reference.trajectory_rows > runner._num_records(model)).any()
    _assert_same(reference, small)


def test_different_seeds_and_replicates_differ(model):
    a = runner.run_block(model, 1, range(20))
    b = runner.run_block(model, 2, range(20))
    assert not np.array_equal(a.final_cells, b.final_cells)
    assert len(np.unique(a.final_cells)) == 20  # every replicate has its own stream


def _digest(run_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.rglob("*.parquet"))
    }


def test_same_seed_same_parquet_bytes(tmp_path):
    config = make_config(RICH)
    first = clonesim.run_to_directory(config, tmp_path / "a", replicates=40, seed=123)
    second = clonesim.run_to_directory(config, tmp_path / "b", replicates=40, seed=123, threads=1)
    third = clonesim.run_to_directory(config, tmp_path / "c", replicates=40, seed=124)
    assert _digest(first) == _digest(second)
    assert _digest(first) != _digest(third)


def test_replicate_alone_equals_replicate_among_ten_thousand():
    """The issue's literal case, on a model cheap enough for 10,000 replicates."""
    config = make_config(
        time={"horizon_days": 4, "dt_days": 0.5, "record_every_days": 1},
        tumor={"initial_cells": 50},
        alterations={"A": {"mutation_rate_per_division": 0.01}},
    )
    model = compile_model(config)
    batch = runner.run_block(model, 77, range(10_000))
    for k in (0, 4321, 9999):
        alone = runner.run_block(model, 77, [k])
        rows = int(batch.trajectory_rows[k])
        assert rows == alone.trajectory_rows[0]
        np.testing.assert_array_equal(batch.traj_cells[k, :rows], alone.traj_cells[0, :rows])
        np.testing.assert_array_equal(batch.traj_genotype[k, :rows], alone.traj_genotype[0, :rows])
        assert batch.final_cells[k] == alone.final_cells[0]
