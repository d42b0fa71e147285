"""The ``clonesim`` command line: run directories, one-line user errors, ``validate``.

In-process runs use typer's CliRunner; a few run the installed script in a
subprocess to check real exit codes and stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numba
import pytest
import yaml
from typer.testing import CliRunner

import clonesim
from clonesim.cli import app

TABLES = ("patients", "emergence", "trajectories", "phase_changes")
USER_ERROR = 2
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

MINIMAL: dict[str, Any] = {
    "name": "minimal",
    "time": {"horizon_days": 5},
    "tumor": {"initial_cells": 1},
    "phenotypes": {"sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5}},
}

# Two phenotypes with equal net growth (0.5/day), so the long-run composition is the
# switching chain's equilibrium: sensitive s_ps / (s_sp + s_ps), persister s_sp / (s_sp + s_ps).
S_TO_P, P_TO_S = 0.01, 0.03
RICH: dict[str, Any] = {
    "name": "two-phenotypes",
    "time": {"horizon_days": 3},
    "tumor": {"initial_cells": 1_000_000, "initial_fractions": {"MET_amp": 1e-3}},
    "phenotypes": {
        "sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5},
        "persister": {"birth_rate_per_day": 0.6, "death_rate_per_day": 0.1},
    },
    "switching": [
        {"from": "sensitive", "to": "persister", "rate_per_day": S_TO_P},
        {"from": "persister", "to": "sensitive", "rate_per_day": P_TO_S},
    ],
    "pathways": ["EGFR", "MET"],
    "driver_pathway": "EGFR",
    "alterations": {"MET_amp": {"mutation_rate_per_division": 0.0, "adds_pathway": "MET"}},
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def plain_lines(text: str) -> list[str]:
    return [line for line in ANSI.sub("", text).splitlines() if line.strip()]


def assert_user_error(exit_code: int, stdout: str, stderr: str, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr starting 'error:', nothing else, no traceback."""
    assert "Traceback" not in stdout + stderr
    lines = plain_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert plain_lines(stdout) == []
    assert exit_code == USER_ERROR, (exit_code, stderr)
    return lines[0]


def invoke_error(runner: CliRunner, args: list[str], *fragments: str) -> str:
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return assert_user_error(result.exit_code, result.stdout, result.stderr, *fragments)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run_args(config: Path, out: Path, *extra: str, replicates: int = 3, seed: int = 5) -> list[str]:
    return ["run", str(config), "--replicates", str(replicates), "--seed", str(seed),
            "--out", str(out), *extra]


def clonesim_script() -> str:
    found = shutil.which("clonesim") or str(Path(sys.executable).parent / "clonesim")
    assert Path(found).exists(), found
    return found


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    env["NO_COLOR"] = "1"
    return subprocess.run([clonesim_script(), *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


# --------------------------------------------------------------------------- run


def test_run_writes_a_complete_run_directory(runner, tmp_path):
    config = write_config(tmp_path / "rich.yaml", RICH)
    # A long path: the final line must stay one line however narrow the console is.
    out = tmp_path / ("a-rather-long-directory-name-" * 3) / "run"
    result = runner.invoke(app, run_args(config, out, "--threads", "1", replicates=3, seed=5))
    assert result.exit_code == 0, result.stderr
    assert result.exception is None

    parquet = sorted(out.rglob("*.parquet"))
    assert [p.relative_to(out).as_posix() for p in parquet] == [
        f"{t}/schedule=untreated/part-00000.parquet" for t in sorted(TABLES)]
    run_json = out / "run.json"
    info = json.loads(run_json.read_text())
    assert info["seed"] == 5 and info["replicates"] == 3
    assert info["timings"]["threads"] == 1
    assert info["config"]["name"] == RICH["name"]
    # run.json is written last: it is no older than any table.
    assert all(run_json.stat().st_mtime_ns >= p.stat().st_mtime_ns for p in parquet)
    assert clonesim.read_table(out, "patients")["replicate"].to_list() == [0, 1, 2]

    lines = plain_lines(result.stderr)
    assert lines[-1].startswith(f"wrote {out} ("), lines
    assert "3 replicates" in lines[-1] and "seed 5" in lines[-1] and "1 threads" in lines[-1]
    assert any("3/3" in line for line in lines[:-1])  # the progress bar's last state
    assert plain_lines(result.stdout) == []


def test_quiet_suppresses_the_progress_bar(runner, tmp_path):
    config = write_config(tmp_path / "minimal.yaml", MINIMAL)
    out = tmp_path / "run"
    result = runner.invoke(app, [*run_args(config, out, replicates=4, seed=2), "--quiet"])
    assert result.exit_code == 0, result.stderr
    lines = plain_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out} (")
    assert "4/4" not in result.stderr
    assert (out / "run.json").exists()


def test_run_defaults_to_runs_slash_name(runner, tmp_path, monkeypatch):
    config = write_config(tmp_path / "minimal.yaml", MINIMAL)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", str(config), "--replicates", "2", "--quiet"])
    assert result.exit_code == 0, result.stderr
    out = Path("runs") / MINIMAL["name"]
    assert json.loads((tmp_path / out / "run.json").read_text())["replicates"] == 2
    assert plain_lines(result.stderr)[-1].startswith(f"wrote {out} (")


# --------------------------------------------------------------------------- user errors


def _bad_value_config(value: Any) -> dict[str, Any]:
    return {**MINIMAL, "time": {"horizon_days": value}}


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ({**MINIMAL, "colour": "red"}, ("colour", "unknown key")),
        ({**MINIMAL, "tumor": {"initial_cells": 1, "initial_cell": 2}},
         ("tumor.initial_cell", "unknown key")),
        # Values echoed in the message are printed literally, never read as console markup.
        (_bad_value_config("[/b]"), ("time.horizon_days", "'[/b]'")),
        (_bad_value_config("[bold]x"), ("time.horizon_days", "'[bold]x'")),
    ],
    ids=["unknown-key", "unknown-nested-key", "closing-markup", "opening-markup"],
)
def test_bad_config_is_one_line_and_writes_nothing(runner, tmp_path, config, fragments):
    path = write_config(tmp_path / "bad.yaml", config)
    out = tmp_path / "run"
    invoke_error(runner, run_args(path, out), *fragments)
    assert not out.exists()
    invoke_error(runner, ["validate", str(path)], *fragments)


def test_missing_config_file(runner, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    out = tmp_path / "run"
    invoke_error(runner, run_args(missing, out), str(missing), "not found")
    assert not out.exists()
    invoke_error(runner, ["validate", str(missing)], "not found")


def test_invalid_yaml(runner, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: minimal\ntime: {horizon_days: 5\ntumor: {initial_cells: 1}\n")
    out = tmp_path / "run"
    invoke_error(runner, run_args(path, out), "invalid YAML")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--threads", "0", "--threads"),
        ("--threads", str(max(99, numba.config.NUMBA_NUM_THREADS + 1)), "--threads"),
        ("--replicates", "0", "replicates"),
    ],
    ids=["threads-0", "threads-too-many", "replicates-0"],
)
def test_bad_options_write_nothing(runner, tmp_path, option, value, fragment):
    config = write_config(tmp_path / "minimal.yaml", MINIMAL)
    out = tmp_path / "run"
    args = ["run", str(config), "--out", str(out), "--seed", "1", option, value]
    invoke_error(runner, args, fragment, value)
    assert not out.exists()


def test_existing_run_is_kept_unless_overwrite(runner, tmp_path):
    config = write_config(tmp_path / "minimal.yaml", MINIMAL)
    out = tmp_path / "run"
    first = runner.invoke(app, [*run_args(config, out, seed=1), "--quiet"])
    assert first.exit_code == 0, first.stderr
    before = snapshot(out)
    assert "run.json" in before

    invoke_error(runner, [*run_args(config, out, seed=2), "--quiet"], str(out), "--overwrite")
    assert snapshot(out) == before

    # A bad config is refused before the old run is removed, even with --overwrite.
    bad = write_config(tmp_path / "bad.yaml", {**MINIMAL, "colour": "red"})
    invoke_error(runner, [*run_args(bad, out, seed=2), "--overwrite", "--quiet"], "colour")
    assert snapshot(out) == before

    again = runner.invoke(app, [*run_args(config, out, seed=2), "--overwrite", "--quiet"])
    assert again.exit_code == 0, again.stderr
    assert json.loads((out / "run.json").read_text())["seed"] == 2
    assert set(snapshot(out)) == set(before)  # replaced, not mixed into


def test_overwrite_refuses_a_directory_that_is_not_a_run(runner, tmp_path):
    config = write_config(tmp_path / "minimal.yaml", MINIMAL)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    invoke_error(runner, [*run_args(config, out), "--overwrite"], str(out))
    assert snapshot(out) == {"notes.txt": b"keep me"}

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    invoke_error(runner, run_args(config, a_file), "not a directory")
    assert a_file.read_text() == "x"


# --------------------------------------------------------------------------- validate


def _row(lines: list[str], name: str) -> str:
    rows = [line for line in lines if re.search(rf"\b{re.escape(name)}\b", line) and "│" in line]
    assert len(rows) == 1, (name, lines)
    return rows[0]


def test_validate_minimal_config(runner, tmp_path):
    path = write_config(tmp_path / "minimal.yaml", MINIMAL)
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    lines = plain_lines(result.stdout)
    text = "\n".join(lines)
    assert "P(lineage dies out)" in text
    rates = MINIMAL["phenotypes"]["sensitive"]
    dies_out = min(1.0, rates["death_rate_per_day"] / rates["birth_rate_per_day"])
    row = _row(lines, "sensitive")
    assert row.split("│")[-2].strip() == f"{dies_out:.4f}" == "0.5000"
    # One phenotype and no alterations: no composition line, no alteration table.
    assert "long run" not in text and "Alterations" not in text
    assert plain_lines(result.stderr) == []


@pytest.mark.parametrize("columns", [200, 80])
def test_validate_lists_sweep_points_whole_at_any_width(runner, tmp_path, columns):
    """Every point's every swept value is printed whole (no ellipsis), under a short label
    whose full path is printed too; at 80 columns the wide sweep becomes one line per point."""
    paths = ["phenotypes.sensitive.birth_rate_per_day", "phenotypes.sensitive.death_rate_per_day",
             "tumor.initial_cells", "time.horizon_days", "time.record_every_days"]
    values = [[1.25, 0.125, 7, 12, 2], [1.5, 0.375, 9, 16, 4]]
    config = {**MINIMAL, "sweep": {"points": [dict(zip(paths, row, strict=True)) for row in values]}}
    path = write_config(tmp_path / "sweep.yaml", config)
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.stderr
    text = "\n".join(plain_lines(result.stdout))
    assert "…" not in text
    assert all(len(line) <= columns for line in plain_lines(result.stdout))
    for row in values:
        for value in row:
            assert re.search(rf"(?<![\d.]){re.escape(f'{value:.4g}')}(?![\d.])", text), (value, text)
    for label, full in [("birth_rate_per_day", paths[0]), ("horizon_days", paths[3])]:
        assert f"{label} = {full}" in " ".join(text.split()), text
    one_line_per_point = sum("birth_rate_per_day=" in line for line in plain_lines(result.stdout))
    assert one_line_per_point == (2 if columns == 80 else 0)


def test_validate_prints_composition_and_alterations(runner, tmp_path):
    path = write_config(tmp_path / "rich.yaml", RICH)
    result = runner.invoke(app, ["validate", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    lines = plain_lines(result.stdout)

    sensitive_share = P_TO_S / (S_TO_P + P_TO_S)
    composition = [line for line in lines if line.startswith("long run")]
    assert len(composition) == 1, lines
    assert composition[0].endswith(
        f"composition sensitive {sensitive_share:.4g}, persister {1 - sensitive_share:.4g}"
    ), composition[0]
    net = 1.0 - 0.5
    assert f"growth {net:+.4g}/day" in composition[0]

    assert any("Alterations" in line for line in lines)
    row = [cell.strip() for cell in _row(lines, "MET_amp").split("│")[1:-1]]
    expected_cells = RICH["tumor"]["initial_cells"] * RICH["tumor"]["initial_fractions"]["MET_amp"]
    assert row[0] == "MET_amp"
    assert row[2] == RICH["alterations"]["MET_amp"]["adds_pathway"]
    assert row[3] == f"{expected_cells:.4g}"


# --------------------------------------------------------------------------- the real script


def test_script_exit_codes_and_stderr(tmp_path):
    good = write_config(tmp_path / "minimal.yaml", MINIMAL)
    out = tmp_path / ("a-rather-long-directory-name-" * 3) / "run"
    done = run_script(*run_args(good, out, replicates=2, seed=3), "--threads", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = plain_lines(done.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out} ("), done.stderr
    assert "2 replicates" in lines[0] and "seed 3" in lines[0]
    assert json.loads((out / "run.json").read_text())["seed"] == 3

    unknown = write_config(tmp_path / "unknown.yaml", {**MINIMAL, "colour": "red"})
    refused = run_script(*run_args(unknown, tmp_path / "other"))
    assert_user_error(refused.returncode, refused.stdout, refused.stderr, "colour", "unknown key")
    assert not (tmp_path / "other").exists()

    markup = write_config(tmp_path / "markup.yaml", _bad_value_config("[/b]"))
    refused = run_script("validate", str(markup))
    assert_user_error(refused.returncode, refused.stdout, refused.stderr, "'[/b]'")

    refused = run_script(*run_args(good, out, seed=4), "--quiet")
    assert_user_error(refused.returncode, refused.stdout, refused.stderr, "--overwrite")
    assert json.loads((out / "run.json").read_text())["seed"] == 3
