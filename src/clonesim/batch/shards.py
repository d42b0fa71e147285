"""Sharded, resumable sweeps (DESIGN §6): cut a sweep into shards, run any subset, resume.

A shard is a run of consecutive blocks of replicates x every schedule, of one
parameter point or of several small ones packed together (at most
``engine.shard_replicates`` replicate-schedule pairs): a pure function of (config,
shard id), since replicate k of a point draws only from streams keyed by
(point stream, k). Each shard writes its own Parquet
files (``TABLE/schedule=NAME/part-SHARD.parquet``, each atomically) and then a
manifest entry (``manifest/SHARD.json``: every file with its size, rows and
SHA-256). A shard is complete when its entry exists and every file matches
it; anything else (a killed shard, a truncated or altered file) is removed and
redone. ``sweep.json`` (written first) records what the directory holds: a
re-run with another config, seed or replicate count is refused. ``run.json``
is written once every shard is complete, so a directory is a complete run
exactly when it has ``run.json`` — the same rule as ``clonesim run``'s.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from clonesim import api
from clonesim.config.errors import ClonesimError
from clonesim.engine import runner
from clonesim.io import run_dir as rundir

SWEEP_JSON = "sweep.json"
MANIFEST = "manifest"


@dataclass(frozen=True)
class Segment:
    """Replicates ``first .. stop - 1`` of sweep point ``point`` (an index), every schedule."""

    point: int
    point_id: str
    first: int
    stop: int


@dataclass(frozen=True)
class Shard:
    """One unit of work: one block of a point's replicates, or several small points' blocks
    packed together (so small points do not each pay a shard's fixed cost of files)."""

    index: int
    segments: tuple[Segment, ...]

    @property
    def id(self) -> str:
        """Stable name (also the files' part name): where the shard starts, and how many
        segments it packs when more than one."""
        head = self.segments[0]
        name = f"{head.point_id}-{head.first:09d}"
        return name if len(self.segments) == 1 else f"{name}-x{len(self.segments)}"

    @property
    def replicates(self) -> int:
        return sum(seg.stop - seg.first for seg in self.segments)


def plan_shards(point_ids: list[str], replicates: int, block_replicates: int,
                shard_replicates: int) -> list[Shard]:
    """Every shard of a sweep, in point order: each point's replicates cut into segments of
    at most ``block_replicates`` (one kernel call each), and consecutive segments, of one
    point or several small ones, packed into shards of at most ``shard_replicates``."""
    size = max(1, min(block_replicates, shard_replicates))
    shards: list[Shard] = []
    pending: list[Segment] = []

    def close() -> None:
        if pending:
            shards.append(Shard(len(shards), tuple(pending)))
            pending.clear()

    for p, identifier in enumerate(point_ids):
        for first in range(0, replicates, size):
            segment = Segment(p, identifier, first, min(first + size, replicates))
            held = sum(s.stop - s.first for s in pending)
            if held + segment.stop - segment.first > shard_replicates:
                close()
            pending.append(segment)
    close()
    return shards


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_path(out: Path, shard: Shard) -> Path:
    return out / MANIFEST / f"{shard.id}.json"


def _shard_files(out: Path, shard: Shard) -> list[Path]:
    return sorted(out.glob(f"*/schedule=*/part-{shard.id}.parquet"))


def shard_is_complete(out: Path, shard: Shard) -> bool:
    """The shard's manifest entry exists and every file it lists has its size, rows and hash."""
    entry = _manifest_path(out, shard)
    if not entry.exists():
        return False
    try:
        files = json.loads(entry.read_text())["files"]
        for relative, expected in files.items():
            path = out / relative
            if not path.exists() or path.stat().st_size != expected["bytes"]:
                return False
            if pq.ParquetFile(path).metadata.num_rows != expected["rows"]:
                return False
            if _sha256(path) != expected["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _discard(out: Path, shard: Shard) -> None:
    """Remove a shard's manifest entry, files and the temporaries a killed writer left.

    Only this shard's: other jobs may be writing other shards into the same directory.
    """
    _manifest_path(out, shard).unlink(missing_ok=True)
    for path in _shard_files(out, shard):
        path.unlink()
    for stray in out.glob(f"*/schedule=*/.part-{shard.id}.parquet.*.tmp"):
        stray.unlink(missing_ok=True)
    for stray in (out / MANIFEST).glob(f".{shard.id}.json.*.tmp"):
        stray.unlink(missing_ok=True)


def _fingerprint(info: dict[str, Any]) -> dict[str, Any]:
    """What must match for a directory's shards to belong to the same sweep (with the
    replicates per block and per shard, added by open_sweep)."""
    return {key: info[key] for key in ("clonesim_version", "config", "seed", "replicates", "points")}


@dataclass
class SweepReport:
    """What one ``run_sweep`` call did."""

    out: Path
    shards: int  # in the whole sweep
    ran: int  # by this call
    skipped: int  # already complete
    redone: int  # found incomplete or corrupt and run again
    complete: bool  # every shard of the sweep is complete (run.json written)
    seconds: float
    replicates: int = 0  # replicate-schedule rows simulated by this call
    bytes_on_disk: int = 0  # all Parquet files of the sweep directory


@dataclass
class OpenSweep:
    """A sweep directory made ready: its points, seed, run info and shards."""

    out: Path
    points: list
    seed: int
    info: dict[str, Any]
    shards: list[Shard]
    block_replicates: int  # replicates per kernel call


def open_sweep(config_or_path: api.ConfigLike, out: str | Path, replicates: int | None = None,
               seed: int | None = None, overwrite: bool = False) -> OpenSweep:
    """Validate the sweep, then create ``out`` with its ``sweep.json``, or check that the
    directory holds this very sweep (same config, seed, replicates, version)."""
    out = Path(out)
    config, points, num_replicates, run_seed = api._resolve(config_or_path, replicates, seed)
    recorded = _open_directory(out, overwrite, seed)
    if recorded is not None and seed is None and config.seed is None:
        run_seed = recorded["seed"]  # resuming a sweep that drew its own seed
    info = api._run_info(config, points, run_seed, num_replicates)
    model = points[0].model
    schedules = len(model.schedule_names)
    fingerprint = {**_fingerprint(info),
                   "block_replicates": max(1, model.block_replicates // schedules),
                   "shard_replicates": max(1, model.shard_replicates // schedules)}
    if recorded is not None and recorded != fingerprint:
        raise ClonesimError(
            f"--out: {out} holds a different sweep (config, seed, replicates or version); "
            "choose another directory or pass --overwrite"
        )
    if recorded is None:
        rundir.atomic_write_bytes(out / SWEEP_JSON, (json.dumps(fingerprint, indent=2) + "\n").encode())
    shards = plan_shards([p.id for p in points], num_replicates,
                         fingerprint["block_replicates"], fingerprint["shard_replicates"])
    return OpenSweep(out, points, run_seed, info, shards, fingerprint["block_replicates"])


def run_sweep(config_or_path: api.ConfigLike, out: str | Path, replicates: int | None = None,
              seed: int | None = None, threads: int | None = None, overwrite: bool = False,
              shard_index: int | None = None, num_shards: int | None = None,
              on_shard: Callable[[Shard], None] | None = None,
              on_start: Callable[[list[Shard]], None] | None = None,
              on_replicates: Callable[[int], None] | None = None,
              executor: Callable[[OpenSweep, list[Shard], Callable | None], int] | None = None,
              ) -> SweepReport:
    """Run the missing shards of a sweep (all, or those with index % num_shards == shard_index).

    Re-running into the same directory resumes: complete shards are skipped,
    incomplete or corrupt ones redone. ``on_start`` gets the shards this call
    will run; ``on_shard`` is called after each, and ``on_replicates`` with the
    number of replicates (each through every schedule) done: after each block when
    shards run here, after each shard elsewhere. ``executor`` runs the
    shards elsewhere (clonesim.batch.dask_backend); by default they run here, in
    order, on numba threads. Returns once they are done.
    """
    if (shard_index is None) != (num_shards is None):
        raise ClonesimError("--shard-index and --num-shards go together")
    if num_shards is not None and not (num_shards >= 1 and 0 <= shard_index < num_shards):
        raise ClonesimError(f"--shard-index: {shard_index} is outside 0..{num_shards - 1}")
    opened = open_sweep(config_or_path, out, replicates, seed, overwrite)
    out, points, run_seed, info, shards = (opened.out, opened.points, opened.seed, opened.info,
                                           opened.shards)
    runner.set_threads(api._threads_or_all(threads))
    mine = [s for s in shards if num_shards is None or s.index % num_shards == shard_index]
    todo, skipped, redone = [], 0, 0
    for shard in mine:
        if shard_is_complete(out, shard):
            skipped += 1
            continue
        if _manifest_path(out, shard).exists() or _shard_files(out, shard):
            redone += 1
        _discard(out, shard)
        todo.append(shard)
    if on_start is not None:
        on_start(todo)
    started = time.perf_counter()
    if executor is None:
        work = 0
        for shard in todo:
            work += execute_shard(out, points, shard, run_seed, info, opened.block_replicates,
                                  on_replicates)
            if on_shard is not None:
                on_shard(shard)
    else:
        def shard_done(shard: Shard) -> None:
            if on_replicates is not None:
                on_replicates(shard.replicates)
            if on_shard is not None:
                on_shard(shard)

        work = executor(opened, todo, shard_done)
    seconds = time.perf_counter() - started
    complete = all(_manifest_path(out, s).exists() for s in shards)
    if complete and (todo or not (out / rundir.RUN_JSON).exists()):
        info["timings"] = api._timings("simulate_and_write_seconds", started, work)
        info["shards"] = len(shards)
        rundir.write_run_json(out, info)
    rows = sum(s.replicates for s in todo) * len(points[0].model.schedule_names)
    size = sum(path.stat().st_size for path in out.rglob("*.parquet"))
    return SweepReport(out, len(shards), len(todo), skipped, redone, complete, seconds, rows, size)


def shard_tables(points: list, shard: Shard, seed: int, block_replicates: int,
                 on_replicates: Callable[[int], None] | None = None
                 ) -> tuple[dict[str, pl.DataFrame], int]:
    """Simulate a shard: its tables, and its compartment-steps.

    Each segment is one kernel call; consecutive segments are tabulated together in
    groups of at most ``block_replicates`` replicates (small points at once: per-block
    table building was a large part of a small-point sweep's cost), so at most one
    block's kernel buffers are held at a time. ``on_replicates`` is called with the
    replicates of each segment simulated.
    """
    groups: list[list[Segment]] = [[]]
    for segment in shard.segments:
        held = sum(s.stop - s.first for s in groups[-1])
        if groups[-1] and held + segment.stop - segment.first > block_replicates:
            groups.append([])
        groups[-1].append(segment)
    parts: dict[str, list[pl.DataFrame]] = {}
    work = 0
    for group in groups:
        simulated = []
        for seg in group:
            point = points[seg.point]
            simulated.append((point, runner.run_block(point.model, seed, range(seg.first, seg.stop),
                                                      point=point.stream)))
            if on_replicates is not None:
                on_replicates(seg.stop - seg.first)
        work += sum(int(block.compartment_steps.sum()) for _, block in simulated)
        for name, frame in api._segment_tables(simulated, seed).items():
            parts.setdefault(name, []).append(frame)
        del simulated
    tables = {name: frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)
              for name, frames in parts.items()}
    return tables, work


def execute_shard(out: Path, points: list, shard: Shard, seed: int, info: dict[str, Any],
                  block_replicates: int, on_replicates: Callable[[int], None] | None = None) -> int:
    """Simulate one shard, write its files, then its manifest entry; returns its
    compartment-steps. Pure in (config, seed, shard): any process may run it."""
    tables, work = shard_tables(points, shard, seed, block_replicates, on_replicates)
    provenance = api._provenance_for_parquet(info, [seg.point_id for seg in shard.segments])
    files = {}
    for name, frame in tables.items():
        for path, rows in api._write_partitioned(out, name, frame, shard.id, provenance):
            files[path.relative_to(out).as_posix()] = {
                "bytes": path.stat().st_size, "rows": rows, "sha256": _sha256(path)}
    entry = {"shard": shard.id,
             "segments": [[seg.point_id, seg.first, seg.stop] for seg in shard.segments],
             "files": files}
    rundir.atomic_write_bytes(_manifest_path(out, shard), (json.dumps(entry) + "\n").encode())
    return work


def _open_directory(out: Path, overwrite: bool, seed: int | None) -> dict[str, Any] | None:
    """The fingerprint a directory already holds (None for a new one); clears it on overwrite."""
    if out.exists() and not out.is_dir():
        raise ClonesimError(f"--out: {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        marker = out / SWEEP_JSON
        if not marker.exists():
            raise ClonesimError(
                f"--out: {out} holds files but no {SWEEP_JSON}; it is not a sweep directory"
            )
        if overwrite:
            shutil.rmtree(out)
        else:
            return json.loads(marker.read_text())
    out.mkdir(parents=True, exist_ok=True)
    return None



@dataclass
class SweepStatus:
    """The state of a sweep directory, every shard checked against its manifest entry."""

    out: Path
    shards: int
    complete: int
    missing: list[str]  # ids of shards not run (or not finished)
    corrupt: list[str]  # ids of shards whose files do not match their manifest entry
    has_run_json: bool

    @property
    def done(self) -> bool:
        return self.complete == self.shards and self.has_run_json


def sweep_status(out: str | Path) -> SweepStatus:
    """Check every shard of the sweep in ``out`` (sizes, rows and SHA-256 of its files)."""
    out = Path(out)
    marker = out / SWEEP_JSON
    if not marker.exists():
        raise ClonesimError(f"{out}: no {SWEEP_JSON}; not a sweep directory")
    recorded = json.loads(marker.read_text())
    points = [p["point"] for p in recorded["points"]]
    shards = plan_shards(points, int(recorded["replicates"]), int(recorded["block_replicates"]),
                         int(recorded["shard_replicates"]))
    missing, corrupt, complete = [], [], 0
    for shard in shards:
        if shard_is_complete(out, shard):
            complete += 1
        elif _manifest_path(out, shard).exists():
            corrupt.append(shard.id)
        else:
            missing.append(shard.id)
    return SweepStatus(out, len(shards), complete, missing, corrupt, (out / rundir.RUN_JSON).exists())
