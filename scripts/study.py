#!/usr/bin/env python
"""Run a study in one command: its sweep (resumable, any backend), then its report.

    python scripts/study.py configs/study_upfront_vs_sequential.yaml
    python scripts/study.py configs/study_persister_preemption.yaml --replicates 200

Equivalent to ``clonesim sweep CONFIG --out runs/NAME [options]`` followed by
``clonesim report runs/NAME --reference osimertinib``; options after the config are
passed to ``clonesim sweep`` (``--backend dask --workers 2``, ``--replicates N``, ...).
Re-running resumes the sweep and redraws the report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clonesim.config import load_config
from clonesim.config.errors import ClonesimError

REFERENCE = "osimertinib"


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    config, options = Path(argv[0]), argv[1:]
    try:
        name = load_config(config).name
    except ClonesimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    out = Path("runs") / name
    clonesim = [sys.executable, "-m", "clonesim.cli"]
    swept = subprocess.run([*clonesim, "sweep", str(config), "--out", str(out), *options])
    if swept.returncode != 0:
        return swept.returncode
    return subprocess.run([*clonesim, "report", str(out), "--reference", REFERENCE]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
