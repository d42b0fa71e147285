"""A run killed mid-way leaves nothing that looks complete (real processes, real signals)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CONFIG = ROOT / "configs" / "untreated_growth.yaml"


def _clonesim() -> list[str]:
    script = Path(sys.executable).parent / "clonesim"
    return [str(script)] if script.exists() else [shutil.which("clonesim") or "clonesim"]


def _start(out: Path, config_dir: Path) -> subprocess.Popen:
    # Small blocks: parts appear on disk quickly, so the kill lands mid-run.
    config = config_dir / "small_blocks.yaml"
    config.write_text(CONFIG.read_text() + "\nengine: {block_replicates: 64}\n")
    return subprocess.Popen(
        [*_clonesim(), "run", str(config), "--replicates", "100000", "--out", str(out),
         "--quiet", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def _wait_for_parts(root: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(root.glob(".run.partial-*/patients/**/*.parquet")):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    pytest.fail("no part was written in time")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_run_leaves_no_complete_looking_output(tmp_path, how):
    out = tmp_path / "run"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    process = _start(out, config_dir)
    _wait_for_parts(tmp_path, process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=120)
    assert not out.exists()  # the target only ever appears complete
    leftovers = [p for p in tmp_path.iterdir() if p != config_dir]
    if how == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
        assert leftovers == []  # the staging directory was removed
    else:
        # A hard kill cannot clean up: what remains is hidden and has no run.json.
        assert all(p.name.startswith(".run.partial-") for p in leftovers)
        assert not any(p.name == "run.json" for p in tmp_path.rglob("*"))
