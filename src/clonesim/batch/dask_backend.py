"""Run a sweep's shards on Dask (DESIGN §6): a LocalCluster, a running scheduler, or a
Slurm/PBS/SGE/LSF cluster through dask-jobqueue. Same shards, same files, same results
as in-process: each task is ``execute_shard`` on a worker, which writes its shard's
files and manifest entry itself (the sweep directory must be on a filesystem every
worker sees). A task whose worker dies is retried elsewhere; it first removes what
the dead attempt left of its shard.

Needs the ``cluster`` extra: ``pip install 'clonesim[cluster]'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from clonesim import api
from clonesim.batch.shards import OpenSweep, Shard, _discard, execute_shard
from clonesim.config.errors import ClonesimError
from clonesim.engine import runner

#: Retries of a shard whose worker died (each retry starts the shard afresh).
SHARD_RETRIES = 3
JOBQUEUE_KINDS = ("slurm", "pbs", "sge", "lsf")


@lru_cache(maxsize=4)
def _worker_points(config_json: str, replicates: int, seed: int) -> list:
    """The sweep's compiled points, built once per worker process and config."""
    _config, points, _replicates, _seed = api._resolve(json.loads(config_json), replicates, seed)
    return points


def _shard_task(out: str, config_json: str, replicates: int, seed: int, shard: Shard,
                info: dict[str, Any], block_replicates: int, threads: int) -> tuple[int, int]:
    """One shard on a worker: (shard index, compartment-steps)."""
    runner.set_threads(threads)
    points = _worker_points(config_json, replicates, seed)
    _discard(Path(out), shard)  # a retry after a worker died starts clean
    return shard.index, execute_shard(Path(out), points, shard, seed, info, block_replicates)


def dask_executor(client, threads_per_task: int = 1
                  ) -> Callable[[OpenSweep, list[Shard], Callable | None], int]:
    """An executor for ``run_sweep`` that submits every shard to ``client``'s cluster."""
    from distributed import as_completed

    def execute(opened: OpenSweep, todo: list[Shard], on_shard: Callable | None) -> int:
        config_json = json.dumps(opened.info["config"])
        replicates = opened.info["replicates"]
        by_index = {shard.index: shard for shard in todo}
        futures = [
            client.submit(_shard_task, str(opened.out), config_json, replicates, opened.seed,
                          shard, opened.info, opened.block_replicates, threads_per_task,
                          key=f"clonesim-shard-{shard.id}",
                          retries=SHARD_RETRIES, pure=False)
            for shard in todo
        ]
        work = 0
        for future in as_completed(futures):
            index, steps = future.result()
            work += steps
            if on_shard is not None:
                on_shard(by_index[index])
        return work

    return execute


@dataclass
class DaskSettings:
    """Where to run: a scheduler address, a jobqueue cluster, or a LocalCluster."""

    scheduler: str | None = None  # e.g. tcp://10.0.0.1:8786
    workers: int | None = None  # LocalCluster workers, or jobqueue jobs (default: cores / 1)
    jobqueue: str | None = None  # slurm, pbs, sge or lsf
    queue: str | None = None
    cores: int | None = None  # per job
    memory: str | None = None  # per job, e.g. 8GB
    walltime: str | None = None  # per job, e.g. 02:00:00
    threads_per_task: int = 1


def open_client(settings: DaskSettings):
    """A distributed Client for the settings (its cluster closes with it)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClonesimError(
            "--backend dask needs Dask: pip install 'clonesim[cluster]'") from None
    if settings.scheduler is not None:
        return Client(settings.scheduler)
    if settings.jobqueue is not None:
        if settings.jobqueue not in JOBQUEUE_KINDS:
            raise ClonesimError(
                f"--jobqueue: unknown {settings.jobqueue!r}; known: {', '.join(JOBQUEUE_KINDS)}")
        try:
            import dask_jobqueue
        except ImportError:
            raise ClonesimError(
                "--jobqueue needs dask-jobqueue: pip install 'clonesim[cluster]'") from None
        cluster_class = getattr(dask_jobqueue, f"{settings.jobqueue.upper()}Cluster")
        options = {k: v for k, v in (("queue", settings.queue), ("cores", settings.cores),
                                     ("memory", settings.memory), ("walltime", settings.walltime))
                   if v is not None}
        cluster = cluster_class(**options)  # unset options come from dask's jobqueue config file
        cluster.scale(jobs=settings.workers or 1)
        return Client(cluster)
    cluster = LocalCluster(n_workers=settings.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster)
