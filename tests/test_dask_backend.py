"""The Dask backend: shards on a LocalCluster give byte-identical files to in-process shards."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clonesim.batch.dask_backend import DaskSettings, dask_executor, open_client
from clonesim.batch.shards import run_sweep
from clonesim.cli import app
from clonesim.config import ClonesimError

distributed = pytest.importorskip("distributed")

CONFIG = {
    "name": "dask-test",
    "seed": 23,
    "time": {"horizon_days": 20, "record_every_days": 5},
    "tumor": {"initial_cells": 400, "initial_fractions": {"R": 0.02}},
    "phenotypes": {"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                         "drug_kill_rate_per_day": 0.3}},
    "alterations": {"R": {"mutation_rate_per_division": 1e-3, "adds_pathway": "bypass"}},
    "pathways": ["driver", "bypass"],
    "drugs": {"tki": {"targets": {"driver": {"ic50": 0.01}}, "half_life_days": 1.0}},
    "schedules": {"tki": [{"drugs": ["tki"]}],
                  "sequential": [{"drugs": ["tki"], "until": "progression"}, {"drugs": []}]},
    "engine": {"block_replicates": 6, "shard_replicates": 6},
    "sweep": {"grid": {"tumor.initial_fractions.R": [0.01, 0.05]}},
}
REPLICATES = 9  # 3 shards per point


def digests(out: Path) -> dict[str, str]:
    """SHA-256 of every Parquet file of a sweep directory, by relative path."""
    return {path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def client():
    with open_client(DaskSettings(workers=2)) as dask_client:
        yield dask_client


def test_local_cluster_writes_the_same_bytes_as_in_process(tmp_path, client):
    here = run_sweep(CONFIG, tmp_path / "here", replicates=REPLICATES, threads=1)
    there = run_sweep(CONFIG, tmp_path / "there", replicates=REPLICATES,
                      executor=dask_executor(client))
    assert here.complete and there.complete and there.ran == 6
    assert len(digests(tmp_path / "here")) == 6 * 4 * 2  # shards x tables x schedules
    assert digests(tmp_path / "here") == digests(tmp_path / "there")


def test_a_sweep_started_in_process_can_be_finished_on_dask(tmp_path, client):
    out = tmp_path / "mixed"
    run_sweep(CONFIG, out, replicates=REPLICATES, threads=1, shard_index=0, num_shards=2)
    done = []
    report = run_sweep(CONFIG, out, replicates=REPLICATES, executor=dask_executor(client),
                       on_shard=done.append)
    assert (report.ran, report.skipped) == (3, 3) and len(done) == 3
    run_sweep(CONFIG, tmp_path / "reference", replicates=REPLICATES, threads=1)
    assert digests(out) == digests(tmp_path / "reference")


def test_unknown_jobqueue_and_dask_options_without_dask_are_refused(tmp_path):
    with pytest.raises(ClonesimError, match="unknown 'torque'"):
        open_client(DaskSettings(jobqueue="torque"))
    result = CliRunner().invoke(app, ["sweep", "x.yaml", "--out", str(tmp_path / "o"),
                                      "--workers", "2"])
    assert result.exit_code == 2 and "need --backend dask" in result.output
    result = CliRunner().invoke(app, ["sweep", "x.yaml", "--out", str(tmp_path / "o"),
                                      "--backend", "spark"])
    assert result.exit_code == 2 and "unknown 'spark'" in result.output
