"""Slurm job arrays without Dask: one array task per shard group (DESIGN §6).

``prepare_slurm_array`` fixes the seed, initialises the sweep directory (so the
array tasks, starting at once, resume into it instead of racing to create it)
and writes an ``sbatch`` script whose task i runs
``clonesim sweep CONFIG --out DIR --shard-index i --num-shards N``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from clonesim.batch.shards import open_sweep
from clonesim.config.errors import ClonesimError


@dataclass(frozen=True)
class SlurmSettings:
    """sbatch settings; None leaves the cluster's default."""

    num_shards: int
    cpus_per_task: int = 1
    memory: str | None = "4G"
    time: str | None = "04:00:00"
    partition: str | None = None
    account: str | None = None


def sbatch_script(config: Path, out: Path, seed: int, replicates: int, job_name: str,
                  settings: SlurmSettings, python: str = sys.executable) -> str:
    """The text of the array script (paths absolute, every argument shell-quoted)."""
    logs = out / "slurm"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={shlex.quote(job_name)}",
        f"#SBATCH --array=0-{settings.num_shards - 1}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={settings.cpus_per_task}",
        f"#SBATCH --output={shlex.quote(str(logs / '%A_%a.out'))}",
    ]
    for option, value in (("mem", settings.memory), ("time", settings.time),
                          ("partition", settings.partition), ("account", settings.account)):
        if value is not None:
            lines.append(f"#SBATCH --{option}={shlex.quote(value)}")
    command = [python, "-m", "clonesim.cli", "sweep", str(config), "--out", str(out),
               "--seed", str(seed), "--replicates", str(replicates),
               "--num-shards", str(settings.num_shards)]
    lines += [
        "",
        "# Each task runs the shards i, i + N, i + 2N, ... of the sweep; re-submitting the",
        "# script (or running any task again) resumes: finished shards are skipped.",
        "set -euo pipefail",
        'export NUMBA_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        " ".join(shlex.quote(part) for part in command)
        + ' --shard-index "$SLURM_ARRAY_TASK_ID" --threads "${SLURM_CPUS_PER_TASK:-1}" --quiet',
        "",
    ]
    return "\n".join(lines)


def prepare_slurm_array(config_path: str | Path, out: str | Path, settings: SlurmSettings,
                        script: str | Path | None = None, replicates: int | None = None,
                        seed: int | None = None, overwrite: bool = False) -> Path:
    """Validate the sweep, initialise ``out`` and write the array script; returns its path."""
    if settings.num_shards < 1:
        raise ClonesimError(f"--num-shards: must be at least 1 (got {settings.num_shards})")
    if settings.cpus_per_task < 1:
        raise ClonesimError(f"--cpus-per-task: must be at least 1 (got {settings.cpus_per_task})")
    config_path = Path(config_path).resolve()
    out = Path(out).resolve()
    opened = open_sweep(config_path, out, replicates, seed, overwrite)
    name = opened.info["config"]["name"]
    path = Path(script).resolve() if script is not None else out / "slurm" / "sweep.sbatch"
    path.parent.mkdir(parents=True, exist_ok=True)
    (out / "slurm").mkdir(parents=True, exist_ok=True)
    path.write_text(sbatch_script(config_path, out, opened.seed, opened.info["replicates"],
                                  f"clonesim-{name}", settings))
    path.chmod(0o755)
    return path
