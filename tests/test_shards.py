"""Sharded, resumable sweeps: any cut gives the same tables; a killed sweep resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

import clonesim
from clonesim.batch.shards import MANIFEST, SWEEP_JSON, plan_shards, run_sweep
from clonesim.config import ClonesimError

CONFIG = {
    "name": "shards-test",
    "seed": 17,
    "time": {"horizon_days": 30, "record_every_days": 5},
    "tumor": {"initial_cells": 500, "initial_fractions": {"R": 0.01}},
    "phenotypes": {"s": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                         "drug_kill_rate_per_day": 0.3}},
    "alterations": {"R": {"mutation_rate_per_division": 1e-3, "adds_pathway": "bypass"}},
    "pathways": ["driver", "bypass"],
    "drugs": {"tki": {"targets": {"driver": {"ic50": 0.01}}}},
    "schedules": {"tki": [{"drugs": ["tki"]}],
                  "holiday": [{"drugs": ["tki"], "until": {"day": 10}}, {"drugs": []}]},
    # Kernel calls of 2 replicates x 2 schedules; shards of at most 4 replicates: a point's
    # 10 replicates make 2 full shards and a tail packed with the next point's first block.
    "engine": {"block_replicates": 4, "shard_replicates": 8},
    "sweep": {"grid": {"phenotypes.s.death_rate_per_day": [0.15, 0.25]}},
}
REPLICATES = 10
KEYS = ("point", "schedule", "replicate", "mechanism", "day", "genotype", "phenotype")


def canonical(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Labels as text, columns in one order, rows sorted: for content comparison."""
    frame = frame.select(columns).with_columns(pl.col(pl.Enum, pl.Categorical).cast(pl.String))
    keys = [c for c in KEYS if c in columns]
    return frame.sort(keys + [c for c in columns if c not in keys])


def read(out: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(out / table / "**" / "*.parquet", hive_partitioning=True)


def assert_same_tables(out: Path, reference) -> None:
    for table in ("patients", "emergence", "trajectories", "phase_changes"):
        expected = getattr(reference, table)
        got = read(out, table)
        assert got.height == expected.height, table
        assert canonical(got, expected.columns).equals(canonical(expected, expected.columns)), table


@pytest.fixture(scope="module")
def in_memory():
    return clonesim.simulate(CONFIG, replicates=REPLICATES, threads=1)


def segments(shards):
    return [[(seg.point_id, seg.first, seg.stop) for seg in shard.segments] for shard in shards]


def test_plan_covers_every_replicate_of_every_point_once():
    shards = plan_shards(["a", "b"], 10, 4, 4)
    # Full blocks are shards of their own, in order; a tail is packed only with the small
    # blocks right after it (here there are none: each tail is followed by a full block).
    assert segments(shards) == [[("a", 0, 4)], [("a", 4, 8)], [("a", 8, 10)],
                                [("b", 0, 4)], [("b", 4, 8)], [("b", 8, 10)]]
    assert [s.index for s in shards] == list(range(len(shards)))
    assert len({s.id for s in shards}) == len(shards)
    covered = sorted((seg.point_id, r) for s in shards for seg in s.segments
                     for r in range(seg.first, seg.stop))
    assert covered == sorted((p, r) for p in "ab" for r in range(10))


def test_small_points_are_packed_into_shards_of_about_a_block():
    shards = plan_shards([f"p{i}" for i in range(10)], 3, 8, 8)
    assert [s.replicates for s in shards] == [6, 6, 6, 6, 6]
    assert [len(s.segments) for s in shards] == [2] * 5
    assert shards[0].id == "p0-000000000-x2"


def test_shards_run_in_blocks_and_are_never_larger_than_asked():
    # Blocks (kernel calls) of 2 inside shards of up to 6 replicates.
    assert segments(plan_shards(["a"], 10, 2, 6)) == [
        [("a", 0, 2), ("a", 2, 4), ("a", 4, 6)], [("a", 6, 8), ("a", 8, 10)]]
    # A shard smaller than a block: the blocks shrink to the shard.
    assert segments(plan_shards(["a"], 10, 8, 3)) == [
        [("a", 0, 3)], [("a", 3, 6)], [("a", 6, 9)], [("a", 9, 10)]]


@pytest.mark.parametrize("num_shards", [1, 2, 3])
def test_any_cut_gives_the_tables_of_one_in_memory_run(tmp_path, in_memory, num_shards):
    out = tmp_path / "sweep"
    reports = [run_sweep(CONFIG, out, replicates=REPLICATES, threads=1,
                         shard_index=i, num_shards=num_shards) for i in range(num_shards)]
    assert [r.complete for r in reports] == [False] * (num_shards - 1) + [True]
    assert sum(r.ran for r in reports) == reports[0].shards == 5
    assert (out / "run.json").exists()
    assert_same_tables(out, in_memory)
    again = run_sweep(CONFIG, out, replicates=REPLICATES, threads=1)
    assert (again.ran, again.skipped) == (0, 5)


def test_progress_counts_every_shard_and_every_replicate_block_by_block(tmp_path):
    started, shards, blocks = [], [], []
    run_sweep(CONFIG, tmp_path / "sweep", replicates=REPLICATES, threads=1,
              on_start=started.append, on_shard=shards.append, on_replicates=blocks.append)
    assert started[0] == shards and len(shards) == 5
    # One call per kernel block (2 replicates each), the replicates of both points in all.
    assert blocks == [2] * REPLICATES


def test_run_json_only_when_every_shard_is_complete(tmp_path):
    out = tmp_path / "sweep"
    run_sweep(CONFIG, out, replicates=REPLICATES, threads=1, shard_index=0, num_shards=2)
    assert (out / SWEEP_JSON).exists() and not (out / "run.json").exists()
    with pytest.raises(ClonesimError, match="the run is missing or incomplete"):
        clonesim.api.read_run_info(out)


def test_a_corrupt_or_missing_shard_file_is_detected_and_redone(tmp_path, in_memory):
    out = tmp_path / "sweep"
    run_sweep(CONFIG, out, replicates=REPLICATES, threads=1)
    files = sorted(out.glob("trajectories/schedule=tki/part-*.parquet"))
    data = bytearray(files[1].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, size unchanged
    files[1].write_bytes(bytes(data))
    sorted(out.glob("patients/schedule=holiday/part-*.parquet"))[-1].unlink()
    report = run_sweep(CONFIG, out, replicates=REPLICATES, threads=1)
    assert (report.ran, report.redone, report.skipped) == (2, 2, 3)
    assert_same_tables(out, in_memory)


def test_a_different_sweep_in_the_directory_is_refused(tmp_path):
    out = tmp_path / "sweep"
    run_sweep(CONFIG, out, replicates=REPLICATES, threads=1, shard_index=0, num_shards=3)
    for change in ({"replicates": REPLICATES + 1}, {"seed": 18}):
        with pytest.raises(ClonesimError, match="holds a different sweep"):
            run_sweep(CONFIG, out, **{"replicates": REPLICATES, "threads": 1, **change})
    other = {**CONFIG, "time": {"horizon_days": 31, "record_every_days": 5}}
    with pytest.raises(ClonesimError, match="holds a different sweep"):
        run_sweep(other, out, replicates=REPLICATES, threads=1)
    report = run_sweep(other, out, replicates=REPLICATES, threads=1, overwrite=True)
    assert report.complete and report.ran == 5
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(ClonesimError, match="not a sweep directory"):
        run_sweep(CONFIG, tmp_path / "notes", replicates=REPLICATES, overwrite=True)
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_shard_options_are_checked(tmp_path):
    with pytest.raises(ClonesimError, match="go together"):
        run_sweep(CONFIG, tmp_path / "a", replicates=2, shard_index=0)
    with pytest.raises(ClonesimError, match="outside 0..1"):
        run_sweep(CONFIG, tmp_path / "b", replicates=2, shard_index=2, num_shards=2)


def test_a_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path, in_memory):
    """SIGKILL a real `clonesim sweep` process mid-way, re-run it, compare."""
    config = dict(CONFIG, engine={"block_replicates": 2, "shard_replicates": 2})  # 20 shards
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "clonesim.cli", "sweep", str(path), "--out", str(out),
               "--replicates", str(REPLICATES), "--threads", "1", "--quiet"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        done = list((out / MANIFEST).glob("*.json")) if (out / MANIFEST).exists() else []
        if len(done) >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    finished = len(list((out / MANIFEST).glob("*.json")))
    assert 3 <= finished < 20 and not (out / "run.json").exists()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} already complete" in resumed.stdout + resumed.stderr
    reference = clonesim.simulate(config, replicates=REPLICATES, threads=1)
    assert_same_tables(out, reference)
    assert not list(out.rglob("*.tmp"))
    assert json.loads((out / "run.json").read_text())["shards"] == 20
