"""The Dask backend: shards on a LocalCluster give byte-identical files to in-process shards."""

from __future__ import annotations

import hashlib
import os
import signal
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
    done, replicates, started = [], [], []
    report = run_sweep(CONFIG, out, replicates=REPLICATES, executor=dask_executor(client),
                       on_shard=done.append, on_replicates=replicates.append,
                       on_start=started.append)
    assert (report.ran, report.skipped) == (3, 3) and len(done) == 3
    # Progress: the shards to run, announced first, then each one's replicates as it ends.
    assert [s.index for s in started[0]] == sorted(s.index for s in done)
    assert sum(replicates) == sum(s.replicates for s in done) == 3 * 3  # 3 shards of 3
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


#: Slow enough shards (about 0.3 s each) that a worker killed mid-sweep is mid-shard.
SLOW_CONFIG = {**CONFIG, "time": {"horizon_days": 150, "record_every_days": 5},
               "tumor": {"initial_cells": 200_000, "initial_fractions": {"R": 0.02}},
               "engine": {"block_replicates": 4, "shard_replicates": 4}}


def test_a_worker_killed_mid_shard_takes_only_its_shard_with_it(tmp_path):
    """SIGKILL a LocalCluster worker process while it runs a shard: the scheduler reruns
    that shard elsewhere (from scratch), the other shards are untouched, and the
    files are byte-identical to an in-process sweep's."""
    reference = run_sweep(SLOW_CONFIG, tmp_path / "here", replicates=REPLICATES, threads=1)
    killed: list[tuple[int, list[str]]] = []
    with open_client(DaskSettings(workers=2)) as dask_client:
        def kill_a_busy_worker(_shard) -> None:
            if killed:
                return
            for address, keys in dask_client.processing().items():
                shards = [key for key in keys if str(key).startswith("clonesim-shard-")]
                if shards:
                    pid = dask_client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, shards))
                    return

        report = run_sweep(SLOW_CONFIG, tmp_path / "there", replicates=REPLICATES,
                           executor=dask_executor(dask_client), on_shard=kill_a_busy_worker)
    assert killed, "no worker was busy with a shard when the first shard finished"
    assert report.complete and report.ran == reference.ran == reference.shards
    assert digests(tmp_path / "there") == digests(tmp_path / "here")
    assert not list((tmp_path / "there").rglob("*.tmp"))
