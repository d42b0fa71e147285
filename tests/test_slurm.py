"""Slurm job arrays: the generated sbatch script, run task by task (and two at once) without
Slurm, and `clonesim status`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import polars as pl
import yaml
from typer.testing import CliRunner

import clonesim
from clonesim.batch.shards import SWEEP_JSON
from clonesim.cli import app

CONFIG = {
    "name": "slurm test",  # a space: the script must quote what it interpolates
    "seed": 5,
    "time": {"horizon_days": 20, "record_every_days": 5},
    "tumor": {"initial_cells": 300},
    "phenotypes": {"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2}},
    "alterations": {"A": {"mutation_rate_per_division": 1e-3}},
    "engine": {"block_replicates": 3, "shard_replicates": 3},
    "sweep": {"grid": {"phenotypes.s.death_rate_per_day": [0.1, 0.25]}},
}
REPLICATES = 7  # 3 shards per point, 6 in all


def write_config(directory: Path) -> Path:
    path = directory / "my config.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return path


def make_script(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    out = tmp_path / "sweep out"
    result = CliRunner().invoke(app, ["slurm-script", str(write_config(tmp_path)), "--out", str(out),
                                      "--num-shards", "3", "--replicates", str(REPLICATES),
                                      "--partition", "short", "--time", "01:00:00", *extra])
    assert result.exit_code == 0, result.output
    return out, out / "slurm" / "sweep.sbatch"


def run_task(script: Path, index: int) -> subprocess.Popen:
    env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(index), SLURM_CPUS_PER_TASK="1")
    return subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_script_asks_for_what_was_given_and_fixes_the_seed(tmp_path):
    out, script = make_script(tmp_path, "--account", "lab", "--mem", "2G", "--cpus-per-task", "2")
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --array=0-2", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=2G",
                 "#SBATCH --time=01:00:00", "#SBATCH --partition=short", "#SBATCH --account=lab",
                 "#SBATCH --job-name='clonesim-slurm test'", "set -euo pipefail"):
        assert line in text.splitlines(), line
    command = text.splitlines()[-1]
    assert "sweep" in command and "--seed 5" in command and f"--replicates {REPLICATES}" in command
    assert "--num-shards 3" in command and '--shard-index "$SLURM_ARRAY_TASK_ID"' in command
    assert f"'{tmp_path / 'my config.yaml'}'" in command and f"--out '{out}'" in command
    assert (out / SWEEP_JSON).exists()  # the tasks resume into it rather than race to make it
    assert os.access(script, os.X_OK)


def test_array_tasks_two_at_once_then_the_last_complete_the_sweep(tmp_path):
    out, script = make_script(tmp_path)
    status = CliRunner().invoke(app, ["status", str(out)])
    assert status.exit_code == 1 and "0/6 shards complete, 6 missing" in status.output
    first, second = run_task(script, 0), run_task(script, 1)
    for process in (first, second):
        assert process.wait(timeout=300) == 0, process.stderr.read()
    status = CliRunner().invoke(app, ["status", str(out)])
    assert status.exit_code == 1 and "4/6 shards complete, 2 missing" in status.output
    last = run_task(script, 2)
    assert last.wait(timeout=300) == 0, last.stderr.read()
    status = CliRunner().invoke(app, ["status", str(out)])
    assert status.exit_code == 0 and "6/6 shards complete" in status.output
    assert "run.json present" in status.output

    reference = clonesim.simulate(CONFIG, replicates=REPLICATES, threads=1).patients
    got = pl.read_parquet(out / "patients" / "**" / "*.parquet", hive_partitioning=True)

    def canonical(frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.select(reference.columns).with_columns(
            pl.col(pl.Enum, pl.Categorical).cast(pl.String))
        return frame.sort("point", "schedule", "replicate")

    assert canonical(got).equals(canonical(reference))

    # A damaged file shows up as corrupt, and the task that owns it redoes it.
    damaged = sorted(out.glob("patients/schedule=untreated/part-*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-10])
    status = CliRunner().invoke(app, ["status", str(out)])
    assert status.exit_code == 1 and "1 corrupt" in status.output
    owner = [run_task(script, i) for i in range(3)]
    assert [p.wait(timeout=300) for p in owner] == [0, 0, 0]
    assert CliRunner().invoke(app, ["status", str(out)]).exit_code == 0


def test_status_of_a_directory_that_is_not_a_sweep(tmp_path):
    result = CliRunner().invoke(app, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "not a sweep directory" in result.output
