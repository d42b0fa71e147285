"""Parameter sweeps: expansion, stable ids and streams, validation, output columns."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

import clonesim
from clonesim.batch.sweep import expand_sweep, latin_hypercube_unit, point_id
from clonesim.cli import app
from clonesim.config import ConfigError, config_from_mapping

BASE = {
    "name": "sweep-test",
    "time": {"horizon_days": 6, "record_every_days": 2},
    "tumor": {"initial_cells": 200, "initial_fractions": {"persister": 0.1}},
    "phenotypes": {"sensitive": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.3},
                   "persister": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.05}},
    "switching": [{"from": "sensitive", "to": "persister", "rate_per_day": 0.01}],
    "alterations": {"A": {"mutation_rate_per_division": 1e-3}},
}


def with_sweep(sweep: dict) -> dict:
    data = copy.deepcopy(BASE)
    data["sweep"] = sweep
    return data


def test_points_are_the_list_then_the_grid_then_the_hypercube():
    points = expand_sweep(config_from_mapping(with_sweep({
        "points": [{"phenotypes.sensitive.death_rate_per_day": 0.2}],
        "grid": {"phenotypes.sensitive.birth_rate_per_day": [0.4, 0.6],
                 "tumor.initial_fractions.A": [0.0, 0.01]},
        "latin_hypercube": {"samples": 3, "seed": 5,
                            "ranges": {"switching.0.rate_per_day": [0.001, 0.1]}},
    })))
    assert len(points) == 1 + 4 + 3
    assert points[0].overrides == {"phenotypes.sensitive.death_rate_per_day": 0.2}
    assert [p.overrides for p in points[1:5]] == [
        {"phenotypes.sensitive.birth_rate_per_day": b, "tumor.initial_fractions.A": f}
        for b in (0.4, 0.6) for f in (0.0, 0.01)
    ]
    # Each point's config carries its overrides (a new initial_fractions key included).
    assert points[4].config.phenotypes["sensitive"].birth_rate_per_day == 0.6
    assert points[4].config.tumor.initial_fractions == {"persister": 0.1, "A": 0.01}
    for p in points[5:]:
        assert 0.001 <= p.config.switching[0].rate_per_day <= 0.1
    assert len({p.id for p in points}) == len({p.stream for p in points}) == len(points)


def test_point_ids_depend_on_the_overrides_only():
    a = {"phenotypes.sensitive.death_rate_per_day": 0.2, "tumor.initial_fractions.A": 0.01}
    b = dict(reversed(list(a.items())))
    assert point_id(a) == point_id(b)
    assert point_id(a) != point_id({**a, "tumor.initial_fractions.A": 0.02})
    alone = expand_sweep(config_from_mapping(with_sweep({"points": [a]})))
    among = expand_sweep(config_from_mapping(with_sweep({"points": [{}, b]})))
    assert alone[0].id == among[1].id and alone[0].stream == among[1].stream


def test_a_point_gives_the_same_results_alone_or_among_others():
    """Replicate streams are keyed by the point's stream, not its position."""
    point = {"phenotypes.sensitive.death_rate_per_day": 0.25}
    alone = clonesim.simulate(with_sweep({"points": [point]}), replicates=6, seed=9)
    among = clonesim.simulate(with_sweep({"points": [{"phenotypes.sensitive.death_rate_per_day": 0.35},
                                                     point]}), replicates=6, seed=9)
    ident = alone.info["points"][0]["point"]
    for table in ("patients", "emergence", "trajectories", "phase_changes"):
        left = getattr(alone, table)
        right = getattr(among, table).filter(pl.col("point").cast(pl.String) == ident)
        assert left.height > 0
        assert left.with_columns(pl.col("point").cast(pl.String)).equals(
            right.with_columns(pl.col("point").cast(pl.String))), table
    # Different points draw from different streams.
    other = among.patients.filter(pl.col("point").cast(pl.String) != ident)
    assert not np.array_equal(other["final_cells"].to_numpy(), alone.patients["final_cells"].to_numpy())


def test_without_a_sweep_outputs_have_no_point_columns_and_keep_their_streams():
    plain = clonesim.simulate(copy.deepcopy(BASE), replicates=4, seed=2)
    assert "point" not in plain.patients.columns
    assert plain.info["points"] == [{"point": "base", "stream": 0, "overrides": {}}]


def test_latin_hypercube_has_one_sample_per_stratum_in_every_dimension():
    unit = latin_hypercube_unit(50, 3, seed=4)
    assert unit.shape == (50, 3) and ((unit >= 0) & (unit < 1)).all()
    for column in unit.T:
        assert sorted(np.floor(column * 50).astype(int)) == list(range(50))
    assert not np.array_equal(unit, latin_hypercube_unit(50, 3, seed=5))
    assert np.array_equal(unit, latin_hypercube_unit(50, 3, seed=4))


def test_log_ranges_are_log_uniform_strata():
    points = expand_sweep(config_from_mapping(with_sweep({"latin_hypercube": {
        "samples": 20, "seed": 1,
        "ranges": {"alterations.A.mutation_rate_per_division":
                   {"low": 1e-6, "high": 1e-2, "scale": "log"}}}})))
    values = np.log10([p.config.alterations["A"].mutation_rate_per_division for p in points])
    # One sample in each of the 20 equal slices of log10 in [-6, -2].
    assert sorted(np.floor((values + 6) / 4 * 20).astype(int)) == list(range(20))


@pytest.mark.parametrize(
    ("sweep", "key", "match"),
    [
        ({"grid": {"phenotypes.sensitve.death_rate_per_day": [0.1]}},
         "sweep: phenotypes.sensitve.death_rate_per_day",
         r"no 'sensitve' under phenotypes \(known: sensitive, persister\)"),
        ({"points": [{"tumor.initial_fractions.A": 2.0}]},
         "sweep point 1 (tumor.initial_fractions.A=2.0)",
         r"tumor.initial_fractions.A: .*less than or equal to 1"),
        ({"points": [{"switching.3.rate_per_day": 0.1}]},
         "sweep: switching.3.rate_per_day", r"switching is a list of 1: use an index 0..0"),
        ({"points": [{"seed": 3}]}, "sweep: seed", r"cannot be swept"),
        ({"points": [{"phenotypes.sensitive.birth_rate_per_day.x": 1}]},
         "sweep: phenotypes.sensitive.birth_rate_per_day.x", r"is a value, not a section"),
        ({"points": [{"tumor.lethal_cells": 1e12}, {"tumor.lethal_cells": 1e12}]},
         "sweep", r"points 1 and 2 have the same overrides"),
        ({}, "sweep", r"no points"),
        ({"latin_hypercube": {"samples": 2, "ranges": {"tumor.initial_fractions.A": [0.5, 0.1]}}},
         "sweep.latin_hypercube.ranges.tumor.initial_fractions.A", r"low 0.5 must be below high 0.1"),
        ({"latin_hypercube": {"samples": 2, "ranges": {
            "tumor.initial_fractions.A": {"low": 0.0, "high": 0.1, "scale": "log"}}}},
         "sweep.latin_hypercube.ranges.tumor.initial_fractions.A", r"needs low and high > 0"),
        ({"grid": {"phenotypes.sensitive.death_rate_per_day": [-0.1]}},
         "sweep point 1", r"death_rate_per_day: .*greater than or equal to 0"),
    ],
)
def test_bad_sweeps_fail_up_front_naming_the_point_and_key(sweep, key, match):
    with pytest.raises(ConfigError, match=match) as info:
        expand_sweep(config_from_mapping(with_sweep(sweep)))
    assert str(info.value).startswith(key), str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_keys_in_the_sweep_section_are_refused():
    with pytest.raises(ConfigError, match=r"^sweep.grids: unknown key"):
        config_from_mapping(with_sweep({"grids": {}}))


def test_run_directory_has_point_columns_and_a_bad_point_stops_the_cli(tmp_path: Path):
    config = with_sweep({"grid": {"phenotypes.sensitive.death_rate_per_day": [0.2, 0.3]}})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(path), "--replicates", "3", "--seed", "1",
                                 "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    patients = pl.read_parquet(out / "patients" / "**" / "*.parquet", hive_partitioning=True)
    counts = patients.group_by("phenotypes.sensitive.death_rate_per_day").len().sort(
        "phenotypes.sensitive.death_rate_per_day")
    assert counts.rows() == [(0.2, 3), (0.3, 3)]
    assert patients["point"].n_unique() == 2
    trajectories = pl.read_parquet(out / "trajectories" / "**" / "*.parquet", hive_partitioning=True)
    assert {"point", "phenotypes.sensitive.death_rate_per_day"} <= set(trajectories.columns)

    config["sweep"]["grid"]["phenotypes.sensitive.death_rate_per_day"].append(-1.0)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    bad = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "bad"), "--threads", "1"])
    assert bad.exit_code == 2
    assert "sweep point 3" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()
    shown = runner.invoke(app, ["validate", str(path)])
    assert shown.exit_code == 2 and "sweep point 3" in shown.output
