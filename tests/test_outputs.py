"""The output contract (DESIGN §5, §9): table columns, events, labels and run directories.

Every expectation is derived from the config it runs (horizon, record interval,
fractions, names), never copied from an earlier run.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numba
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clonesim
from clonesim.api import read_run_info
from clonesim.config.errors import ClonesimError
from clonesim.io import run_dir as rundir

TABLES = ("patients", "emergence", "trajectories", "phase_changes")

MINIMAL: dict[str, Any] = {
    "name": "x",
    "time": {"horizon_days": 5},
    "tumor": {"initial_cells": 1},
    "phenotypes": {"sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5}},
}

# Columns of the contract (DESIGN §9), with the kind of dtype each must have.
LABEL, INTEGER, DAYS, FLAG, SHARE = "label", "integer", "days", "flag", "share"
COLUMNS = {
    "patients": {
        "schedule": LABEL, "replicate": INTEGER, "seed": INTEGER, "days_to_diagnosis": DAYS,
        "progressed": FLAG, "ttp_days": DAYS, "best_response": LABEL, "nadir_cells": INTEGER,
        "nadir_day": DAYS, "extinct": FLAG, "extinction_day": DAYS, "died": FLAG,
        "death_day": DAYS, "final_cells": INTEGER, "mechanism_at_progression": LABEL,
        "mechanism_share_at_progression": SHARE,
    },
    "emergence": {
        "schedule": LABEL, "replicate": INTEGER, "mechanism": LABEL, "cells_at_start": INTEGER,
        "arise_day": DAYS, "established_day": DAYS, "dominant_day": DAYS,
        "ctdna_detect_day": DAYS,
    },
    "phase_changes": {
        "schedule": LABEL, "replicate": INTEGER, "day": DAYS, "phase": INTEGER,
        "drugs": LABEL, "reason": LABEL,
    },
    "trajectories": {
        "schedule": LABEL, "replicate": INTEGER, "day": DAYS, "genotype": LABEL,
        "phenotype": LABEL, "cells": INTEGER,
    },
}
LABEL_COLUMNS = {t: [c for c, kind in cols.items() if kind == LABEL] for t, cols in COLUMNS.items()}


def make_config(**sections: Any) -> dict[str, Any]:
    """MINIMAL with whole sections replaced or added (``tumor={...}`` replaces ``tumor``)."""
    config = copy.deepcopy(MINIMAL)
    config.update(copy.deepcopy(sections))
    return config


def two_phenotype_config(**sections: Any) -> dict[str, Any]:
    """Two phenotypes with switching and two alterations (mechanisms of both kinds)."""
    base = make_config(
        phenotypes={
            "sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.3},
            "persister": {"birth_rate_per_day": 0.2, "death_rate_per_day": 0.1},
        },
        switching=[{"from": "sensitive", "to": "persister", "rate_per_day": 0.01}],
        alterations={
            "MET_amp": {"mutation_rate_per_division": 1e-3},
            "C797S": {"mutation_rate_per_division": 1e-3},
        },
        tumor={"initial_cells": 100},
        time={"horizon_days": 6, "record_every_days": 2},
    )
    base.update(copy.deepcopy(sections))
    return base


def mechanisms_of(config: dict[str, Any]) -> list[str]:
    """The contract's mechanism order: alterations, then the non-founder phenotypes."""
    return list(config.get("alterations", {})) + list(config["phenotypes"])[1:]


def record_days(horizon: int, every: int, until: float | None = None) -> list[float]:
    """Day 0, every ``every`` days, and the last day (``until`` if the replicate stopped)."""
    last = horizon if until is None else until
    days = {float(d) for d in range(0, horizon + 1, every) if d < last}
    return sorted(days | {0.0, float(last)})


def as_text(series: pl.Series) -> list[str]:
    return series.cast(pl.String).to_list()


def assert_dtype(kind: str, dtype: pl.DataType, column: str) -> None:
    if kind == LABEL:
        assert isinstance(dtype, pl.Enum | pl.Categorical) or dtype == pl.String, (column, dtype)
    elif kind == INTEGER:
        assert dtype.is_integer(), (column, dtype)
    elif kind in (DAYS, SHARE):
        assert dtype.is_float(), (column, dtype)
    else:
        assert dtype == pl.Boolean, (column, dtype)


def replicate_rows(frame: pl.DataFrame, replicate: int) -> pl.DataFrame:
    return frame.filter(pl.col("replicate") == replicate)


def totals_by_day(trajectories: pl.DataFrame, replicate: int) -> dict[float, int]:
    rows = replicate_rows(trajectories, replicate)
    summed = rows.group_by("day").agg(pl.col("cells").sum()).sort("day")
    return dict(zip(summed["day"].to_list(), summed["cells"].to_list(), strict=True))


def sorted_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Replicates in order; rows of one replicate keep the engine's order."""
    return frame.sort("replicate", maintain_order=True)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def hidden_paths(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".")]


# --------------------------------------------------------------------------- tables


def test_columns_dtypes_and_untreated_schedule():
    config = two_phenotype_config()
    replicates, seed = 5, 2024
    result = clonesim.simulate(config, replicates=replicates, seed=seed)

    for table, columns in COLUMNS.items():
        frame: pl.DataFrame = getattr(result, table)
        assert set(columns) <= set(frame.columns), (table, frame.columns)
        for column, kind in columns.items():
            assert_dtype(kind, frame.schema[column], f"{table}.{column}")
        assert frame.height > 0
        # No schedules in the config: every row belongs to 'untreated'.
        assert set(as_text(frame["schedule"])) == {"untreated"}

    patients = result.patients
    assert patients["replicate"].to_list() == list(range(replicates))
    assert patients["seed"].to_list() == [seed] * replicates
    assert patients["days_to_diagnosis"].null_count() == replicates  # no pre-growth

    # One emergence row per (replicate, mechanism), mechanisms in contract order.
    mechanisms = mechanisms_of(config)
    assert mechanisms == ["MET_amp", "C797S", "persister"]
    emergence = result.emergence
    assert emergence.height == replicates * len(mechanisms)
    for k in range(replicates):
        assert as_text(replicate_rows(emergence, k)["mechanism"]) == mechanisms

    trajectories = result.trajectories
    assert set(as_text(trajectories["phenotype"])) <= set(config["phenotypes"])
    assert set(trajectories["replicate"].unique().to_list()) == set(range(replicates))
    assert (trajectories["cells"] >= 0).all()


@pytest.mark.parametrize(("horizon", "every"), [(10, 7), (14, 7), (5, 7), (9, 3)])
def test_trajectories_hold_day_zero_every_record_and_the_last_day(horizon, every):
    # Pure birth: no replicate can die out, so every one runs to the horizon.
    config = make_config(
        time={"horizon_days": horizon, "record_every_days": every},
        tumor={"initial_cells": 10},
        phenotypes={"sensitive": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.0}},
    )
    result = clonesim.simulate(config, replicates=3, seed=7)
    expected_days = record_days(horizon, every)
    assert expected_days[0] == 0.0 and expected_days[-1] == float(horizon)
    for row in result.patients.iter_rows(named=True):
        k = row["replicate"]
        totals = totals_by_day(result.trajectories, k)
        assert list(totals) == expected_days
        assert totals[0.0] == config["tumor"]["initial_cells"]
        assert totals[float(horizon)] == row["final_cells"]
        assert not row["extinct"] and not row["died"]
        assert row["extinction_day"] is None and row["death_day"] is None


def _check_stopped_trajectory(result, row, stop_day, horizon, every):
    totals = totals_by_day(result.trajectories, row["replicate"])
    assert list(totals) == record_days(horizon, every, until=stop_day)
    assert max(totals) == stop_day  # nothing recorded after the replicate stopped
    assert totals[stop_day] == row["final_cells"]


def test_extinct_replicate_stops_at_its_extinction_day():
    horizon, every = 30, 7
    # Pure death at 3/day: a cell survives 30 days with probability e^-90.
    config = make_config(
        time={"horizon_days": horizon, "record_every_days": every},
        tumor={"initial_cells": 2},
        phenotypes={"sensitive": {"birth_rate_per_day": 0.0, "death_rate_per_day": 3.0}},
    )
    result = clonesim.simulate(config, replicates=4, seed=3)
    for row in result.patients.iter_rows(named=True):
        assert row["extinct"] is True and row["died"] is False
        assert row["death_day"] is None
        assert row["final_cells"] == 0
        day = row["extinction_day"]
        assert day is not None and 0 < day <= horizon
        assert day == math.floor(day)  # a step boundary (dt = 1 day)
        _check_stopped_trajectory(result, row, day, horizon, every)
        last = replicate_rows(result.trajectories, row["replicate"]).filter(pl.col("day") == day)
        assert last.height >= 1 and (last["cells"] == 0).all()


def test_lethal_replicate_stops_at_its_death_day():
    horizon, every, lethal = 30, 7, 100_000
    # Pure birth at 2/day from 100 cells: lethal within a few days, long before the horizon.
    config = make_config(
        time={"horizon_days": horizon, "record_every_days": every},
        tumor={"initial_cells": 100, "lethal_cells": lethal},
        phenotypes={"sensitive": {"birth_rate_per_day": 2.0, "death_rate_per_day": 0.0}},
    )
    result = clonesim.simulate(config, replicates=4, seed=5)
    for row in result.patients.iter_rows(named=True):
        assert row["died"] is True and row["extinct"] is False
        assert row["extinction_day"] is None
        assert row["final_cells"] >= lethal
        day = row["death_day"]
        assert day is not None and 0 < day < horizon
        _check_stopped_trajectory(result, row, day, horizon, every)


def test_outcomes_are_consistent_across_a_mixed_run():
    horizon, every = 10, 3
    config = make_config(time={"horizon_days": horizon, "record_every_days": every})
    result = clonesim.simulate(config, replicates=30, seed=11)
    patients = result.patients
    # With b = 1, d = 0.5 from one cell about half the lineages die out: both outcomes occur.
    assert patients["extinct"].any() and not patients["extinct"].all()
    for row in patients.iter_rows(named=True):
        assert not (row["extinct"] and row["died"])
        assert (row["extinction_day"] is not None) == row["extinct"]
        assert (row["death_day"] is not None) == row["died"]
        stop = row["extinction_day"] if row["extinct"] else None
        totals = totals_by_day(result.trajectories, row["replicate"])
        assert list(totals) == record_days(horizon, every, until=stop)
        assert totals[max(totals)] == row["final_cells"]
        assert (row["final_cells"] == 0) == row["extinct"]


def test_days_to_diagnosis_and_pre_existing_mechanisms():
    target = 2_000
    config = make_config(
        time={"horizon_days": 3},
        tumor={"grow_from_single_cell_to": target},
        phenotypes={
            "sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.1},
            "persister": {"birth_rate_per_day": 0.5, "death_rate_per_day": 0.1},
        },
        switching=[{"from": "sensitive", "to": "persister", "rate_per_day": 0.01}],
        alterations={"MET_amp": {"mutation_rate_per_division": 0.005}},
    )
    result = clonesim.simulate(config, replicates=4, seed=9)
    patients = result.patients
    assert patients["days_to_diagnosis"].null_count() == 0
    assert (patients["days_to_diagnosis"] > 0).all()

    alterations = list(config["alterations"])
    for row in patients.iter_rows(named=True):
        k = row["replicate"]
        day0 = replicate_rows(result.trajectories, k).filter(pl.col("day") == 0.0)
        assert day0["cells"].sum() >= target  # therapy starts once the tumour reached the size
        emergence = replicate_rows(result.emergence, k)
        for mech in emergence.iter_rows(named=True):
            name = mech["mechanism"]
            if name in alterations:
                carriers = day0.filter(
                    pl.col("genotype").cast(pl.String).str.split("+").list.contains(name)
                )
            else:
                carriers = day0.filter(pl.col("phenotype").cast(pl.String) == name)
            assert mech["cells_at_start"] == carriers["cells"].sum()
            if mech["cells_at_start"] > 0:
                # Present before day 0: arose during the growth from one cell.
                assert mech["arise_day"] is not None
                assert -row["days_to_diagnosis"] <= mech["arise_day"] <= 0
    # The checks above were exercised: with these rates mechanisms pre-exist at day 0.
    assert (result.emergence["cells_at_start"] > 0).any()


def test_initial_fractions_give_exact_counts_when_products_are_whole():
    cells, persister_share, met_share = 1_000_000, 0.003, 1e-3
    config = make_config(
        time={"horizon_days": 1},
        tumor={
            "initial_cells": cells,
            "initial_fractions": {"persister": persister_share, "MET_amp": met_share},
        },
        phenotypes={
            "sensitive": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.05},
            "persister": {"birth_rate_per_day": 0.01, "death_rate_per_day": 0.005},
        },
        alterations={"MET_amp": {"mutation_rate_per_division": 1e-9}},
    )
    # Stochastic rounding is exact for whole products: persisters first, then
    # the alteration's share within each phenotype.
    persisters = cells * persister_share
    sensitive = cells - persisters
    met_parts = (sensitive * met_share, persisters * met_share)
    assert persisters.is_integer() and all(part.is_integer() for part in met_parts)
    expected = {"persister": int(persisters), "MET_amp": int(sum(met_parts))}

    result = clonesim.simulate(config, replicates=3, seed=1)
    for k in range(3):
        emergence = replicate_rows(result.emergence, k)
        got = dict(zip(as_text(emergence["mechanism"]), emergence["cells_at_start"].to_list(),
                       strict=True))
        assert got == expected
        assert emergence["arise_day"].to_list() == [0.0] * len(expected)

        day0 = replicate_rows(result.trajectories, k).filter(pl.col("day") == 0.0)
        assert day0["cells"].sum() == cells
        by_genotype = day0.group_by(pl.col("genotype").cast(pl.String)).agg(pl.col("cells").sum())
        genotype_cells = dict(by_genotype.iter_rows())
        assert genotype_cells == {"MET_amp": expected["MET_amp"],
                                  "founder": cells - expected["MET_amp"]}
        by_phenotype = day0.group_by(pl.col("phenotype").cast(pl.String)).agg(pl.col("cells").sum())
        assert dict(by_phenotype.iter_rows()) == {"persister": expected["persister"],
                                                  "sensitive": cells - expected["persister"]}


def test_genotype_labels_join_alterations_in_config_order():
    # Config order differs from alphabetical order, so a sorted join would be caught.
    alterations = {"MET_amp": {"mutation_rate_per_division": 0.05},
                   "C797S": {"mutation_rate_per_division": 0.05}}
    config = make_config(
        time={"horizon_days": 4, "record_every_days": 1},
        tumor={"initial_cells": 1000},
        phenotypes={"sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.2}},
        alterations=alterations,
    )
    names = list(alterations)
    allowed = {"founder"} | {
        "+".join(n for n in names if n in subset)
        for size in (1, 2) for subset in itertools.combinations(names, size)
    }
    double = "+".join(names)
    assert double == "MET_amp+C797S" and "C797S+MET_amp" not in allowed

    result = clonesim.simulate(config, replicates=3, seed=4)
    labels = set(as_text(result.trajectories["genotype"]))
    assert labels <= allowed
    assert double in labels
    day0 = result.trajectories.filter(pl.col("day") == 0.0)
    assert set(as_text(day0["genotype"])) == {"founder"}


def test_mechanisms_absent_at_day_zero_arise_after_it():
    config = make_config(
        time={"horizon_days": 2},
        tumor={"initial_cells": 1000},
        alterations={"MET_amp": {"mutation_rate_per_division": 0.05}},
    )
    emergence = clonesim.simulate(config, replicates=4, seed=2).emergence
    absent = emergence.filter((pl.col("cells_at_start") == 0) & pl.col("arise_day").is_not_null())
    assert absent.height > 0
    assert (absent["arise_day"] > 0).all(), absent


# --------------------------------------------------------------------------- run directories


def test_run_directory_layout_compression_and_provenance(tmp_path):
    config = two_phenotype_config()
    replicates, seed = 3, 11
    out = clonesim.run_to_directory(config, tmp_path / "run", replicates=replicates, seed=seed,
                                    threads=1)
    assert Path(out) == tmp_path / "run"
    parts = {f"{t}/schedule=untreated/part-00000.parquet" for t in TABLES}
    assert files_under(out) == parts | {"run.json"}
    assert hidden_paths(out) == []

    info = read_run_info(out)
    assert json.loads((out / "run.json").read_text()) == info
    assert info["seed"] == seed and info["replicates"] == replicates
    assert info["clonesim_version"] == clonesim.__version__
    assert info["versions"]["polars"] == pl.__version__
    assert info["versions"]["pyarrow"] == pa.__version__
    assert info["versions"]["numba"] == numba.__version__
    assert {"python", "numpy"} <= set(info["versions"])
    assert info["timings"]["threads"] == 1
    assert info["timings"]["simulate_and_write_seconds"] >= 0
    assert info["config"]["name"] == config["name"]
    assert info["config"]["time"]["horizon_days"] == config["time"]["horizon_days"]
    assert list(info["config"]["alterations"]) == list(config["alterations"])

    for table in TABLES:
        path = out / table / "schedule=untreated" / "part-00000.parquet"
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for c in range(group.num_columns):
                assert group.column(c).compression == "ZSTD", (table, c)
        schema = parquet.schema_arrow
        for column in LABEL_COLUMNS[table]:
            assert pa.types.is_dictionary(schema.field(column).type), (table, column)
        provenance = json.loads(metadata.metadata[rundir.PROVENANCE_KEY])
        assert provenance["seed"] == seed
        assert provenance["replicates"] == replicates
        assert provenance["config"] == info["config"]

    scanned = {t: pl.scan_parquet(out / t / "**" / "*.parquet").collect() for t in TABLES}
    assert scanned["patients"].height == replicates
    assert scanned["emergence"].height == replicates * len(mechanisms_of(config))
    expected = clonesim.simulate(config, replicates=replicates, seed=seed)
    assert scanned["trajectories"].height == expected.trajectories.height
    for table in TABLES:
        assert clonesim.read_table(out, table).equals(getattr(expected, table)), table


def test_run_directory_without_run_json_is_incomplete(tmp_path):
    out = clonesim.run_to_directory(MINIMAL, tmp_path / "run", replicates=2, seed=1)
    assert clonesim.read_table(out, "patients").height == 2
    with pytest.raises(ClonesimError, match="table"):
        clonesim.read_table(out, "patient")  # a typo names the tables instead of a polars error
    (out / "run.json").unlink()
    for table in TABLES:
        with pytest.raises(ClonesimError, match="run.json"):
            clonesim.read_table(out, table)
    with pytest.raises(ClonesimError, match="run.json"):
        read_run_info(out)
    with pytest.raises(ClonesimError):
        clonesim.read_table(tmp_path / "missing", "patients")


def test_failed_write_leaves_no_run_json_and_no_temporary_files(tmp_path, monkeypatch):
    config = make_config(engine={"block_replicates": 2})
    calls = []

    class FailingWriter(pq.ParquetWriter):
        def write_table(self, table, *args, **kwargs):
            calls.append(table.num_rows)
            super().write_table(table, *args, **kwargs)  # rows reach the file, no footer yet
            if len(calls) == 5:  # the second table of the second block
                raise OSError("disk full")

    monkeypatch.setattr(rundir.pq, "ParquetWriter", FailingWriter)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="disk full"):
        clonesim.run_to_directory(config, out, replicates=4, seed=1)
    assert len(calls) == 5
    assert not (out / "run.json").exists()
    assert hidden_paths(out) == []
    assert not (out / "patients" / "schedule=untreated" / "part-00001.parquet").exists()
    with pytest.raises(ClonesimError):
        clonesim.read_table(out, "patients")


def test_seed_is_recorded_when_not_given_and_reproduces_the_run(tmp_path):
    config = make_config(alterations={"MET_amp": {"mutation_rate_per_division": 1e-3}},
                         tumor={"initial_cells": 20})
    assert "seed" not in config
    first = clonesim.run_to_directory(config, tmp_path / "a", replicates=4)
    second = clonesim.run_to_directory(config, tmp_path / "b", replicates=4)
    seed = read_run_info(first)["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**63
    assert read_run_info(second)["seed"] != seed  # fresh entropy each time
    assert clonesim.read_table(first, "patients")["seed"].to_list() == [seed] * 4
    assert read_run_info(first)["config"]["seed"] == seed

    again = clonesim.run_to_directory(config, tmp_path / "c", replicates=4, seed=seed)
    in_memory = clonesim.simulate(config, replicates=4, seed=seed)
    for table in TABLES:
        recorded = clonesim.read_table(first, table)
        assert recorded.equals(clonesim.read_table(again, table)), table
        assert recorded.equals(getattr(in_memory, table)), table


def test_recorded_config_reproduces_the_run(tmp_path):
    # Names out of alphabetical order: the founder is the first phenotype and genotype
    # labels follow the alterations' order, so the recorded config must keep its order.
    config = two_phenotype_config()
    assert list(config["phenotypes"]) != sorted(config["phenotypes"])
    assert list(config["alterations"]) != sorted(config["alterations"])
    out = clonesim.run_to_directory(config, tmp_path / "run", replicates=3, seed=31)
    info = read_run_info(out)
    assert list(info["config"]["phenotypes"]) == list(config["phenotypes"])
    assert list(info["config"]["alterations"]) == list(config["alterations"])
    path = out / "patients" / "schedule=untreated" / "part-00000.parquet"
    provenance = json.loads(pq.ParquetFile(path).metadata.metadata[rundir.PROVENANCE_KEY])
    for recorded in (info["config"], provenance["config"]):
        rerun = clonesim.simulate(recorded)  # its seed and replicates are recorded in it
        for table in TABLES:
            assert getattr(rerun, table).equals(clonesim.read_table(out, table)), table


def test_seed_comes_from_the_config_unless_overridden():
    config = make_config(seed=123, replicates=2)
    assert clonesim.simulate(config).info["seed"] == 123
    assert clonesim.simulate(config).patients.height == config["replicates"]
    overridden = clonesim.simulate(config, seed=7, replicates=3)
    assert overridden.info["seed"] == 7
    assert overridden.patients["seed"].to_list() == [7, 7, 7]


def test_blocks_are_streamed_to_parts_and_match_simulate(tmp_path):
    block, replicates = 4, 10
    config = two_phenotype_config(engine={"block_replicates": block})
    events: list[int | str] = []
    out = clonesim.run_to_directory(config, tmp_path / "run", replicates=replicates, seed=21,
                                    on_block=events.append, on_start=lambda: events.append("start"))
    starts = range(0, replicates, block)
    assert events == ["start"] + [min(block, replicates - s) for s in starts]
    for table in TABLES:
        names = sorted(p.name for p in (out / table / "schedule=untreated").iterdir())
        assert names == [f"part-{i:05d}.parquet" for i in range(len(starts))]
    for i, start in enumerate(starts):
        part = pl.read_parquet(out / "patients" / "schedule=untreated" / f"part-{i:05d}.parquet")
        assert part["replicate"].to_list() == list(range(start, min(start + block, replicates)))

    in_memory = clonesim.simulate(config, replicates=replicates, seed=21)
    one_block = clonesim.simulate(two_phenotype_config(), replicates=replicates, seed=21)
    for table in TABLES:
        union = sorted_table(clonesim.read_table(out, table))
        assert union.equals(sorted_table(getattr(in_memory, table))), table
        # Results do not depend on how replicates are grouped into blocks.
        assert union.equals(sorted_table(getattr(one_block, table))), table


def test_results_do_not_depend_on_threads_and_default_is_all_cores():
    config = two_phenotype_config()
    one = clonesim.simulate(config, replicates=4, seed=8, threads=1)
    assert one.info["timings"]["threads"] == 1
    default = clonesim.simulate(config, replicates=4, seed=8)
    # None means all cores, not whatever an earlier call left set.
    assert default.info["timings"]["threads"] == numba.config.NUMBA_NUM_THREADS
    for table in TABLES:
        assert getattr(one, table).equals(getattr(default, table)), table


@pytest.mark.parametrize("config", [MINIMAL, two_phenotype_config()], ids=["minimal", "mechanisms"])
def test_simulation_result_write_round_trips(tmp_path, config):
    result = clonesim.simulate(config, replicates=3, seed=6)
    out = result.write(tmp_path / "run")
    assert files_under(out) == {f"{t}/schedule=untreated/part-00000.parquet" for t in TABLES} | {
        "run.json"}
    assert read_run_info(out)["seed"] == 6
    for table in TABLES:
        # The minimal config has no mechanisms: an empty emergence table still round-trips.
        assert clonesim.read_table(out, table).equals(getattr(result, table)), table
    with pytest.raises(ClonesimError, match="overwrite"):
        result.write(out)
    assert result.write(out, overwrite=True) == out


def test_failed_overwrite_keeps_the_previous_run(tmp_path):
    """An engine error mid-run (too many compartments) must not destroy the old run."""
    out = tmp_path / "run"
    good = make_config(alterations={"A": {"mutation_rate_per_division": 0.01}})
    clonesim.run_to_directory(good, out, replicates=2, seed=1)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = make_config(
        tumor={"initial_cells": 10_000},
        alterations={"A": {"mutation_rate_per_division": 0.01},
                     "B": {"mutation_rate_per_division": 0.01}},
        engine={"max_compartments": 2},
    )
    with pytest.raises(ClonesimError, match="max_compartments"):
        clonesim.run_to_directory(bad, out, replicates=2, seed=1, overwrite=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging left behind


def test_simulate_with_progress_bar_keeps_callbacks_and_results(capsys):
    config = make_config(engine={"block_replicates": 2})
    seen: list[int] = []
    shown = clonesim.simulate(config, replicates=5, seed=3, progress=True, on_block=seen.append)
    quiet = clonesim.simulate(config, replicates=5, seed=3)
    assert seen == [2, 2, 1]
    assert shown.patients.equals(quiet.patients)
    assert "5/5 replicates" in capsys.readouterr().out


# --------------------------------------------------------------------------- trajectories on disk

SHIPPED = Path(__file__).parent.parent / "configs"


def genotype_code(label: str, alterations: list[str]) -> int:
    """The engine's genotype code: bit i set when the i-th alteration (config order) is present."""
    if label == "founder":
        return 0
    return sum(1 << alterations.index(name) for name in label.split("+"))


def assert_trajectory_order(frame: pl.DataFrame, alterations: list[str],
                            keys: tuple[str, ...] = ("replicate",)) -> None:
    """Sorted by ``keys``, genotype code, phenotype (config order), day; no key repeats."""
    codes = {label: genotype_code(label, alterations) for label in as_text(frame["genotype"].unique())}
    ranked = frame.with_columns(
        _genotype=pl.col("genotype").cast(pl.String).replace_strict(codes, return_dtype=pl.Int64),
        _phenotype=pl.col("phenotype").to_physical(),
        _schedule=pl.col("schedule").to_physical(),
    )
    order = [*keys, "_genotype", "_phenotype", "day"]
    assert ranked.equals(ranked.sort(order, maintain_order=True))
    assert not ranked.select(order).is_duplicated().any()


def test_trajectories_are_sorted_by_replicate_genotype_phenotype_day(tmp_path):
    config = two_phenotype_config(engine={"block_replicates": 4},
                                  time={"horizon_days": 20, "record_every_days": 2})
    alterations = list(config["alterations"])
    out = clonesim.run_to_directory(config, tmp_path / "run", replicates=10, seed=5)
    parts = sorted((out / "trajectories").rglob("*.parquet"))
    assert len(parts) == 3
    for path in parts:
        assert_trajectory_order(pl.read_parquet(path), alterations)
    in_memory = clonesim.simulate(config, replicates=10, seed=5).trajectories
    assert in_memory["genotype"].n_unique() > 1 and in_memory["phenotype"].n_unique() > 1
    assert_trajectory_order(in_memory, alterations, ("replicate", "_schedule"))
    assert clonesim.read_table(out, "trajectories").equals(in_memory)


@pytest.mark.parametrize(("config", "replicates"),
                         [("egfr_nsclc.yaml", 20), ("untreated_growth.yaml", 50)])
def test_trajectories_take_at_most_3_bytes_per_row(tmp_path, config, replicates):
    out = clonesim.run_to_directory(SHIPPED / config, tmp_path / "run", replicates=replicates,
                                    seed=11)
    files = list((out / "trajectories").rglob("*.parquet"))
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
    assert rows > 30_000  # enough rows for the footers not to dominate
    assert sum(path.stat().st_size for path in files) / rows <= 3.0
    schema = clonesim.read_table(out, "trajectories").schema
    expected = {"schedule": pl.Enum, "replicate": pl.Int64, "day": pl.Float64,
                "genotype": pl.Categorical, "phenotype": pl.Enum, "cells": pl.Int64}
    assert {name: dtype.base_type() for name, dtype in schema.items()} == expected
    alterations = list(read_run_info(out)["config"].get("alterations") or {})
    for path in files:
        assert_trajectory_order(pl.read_parquet(path), alterations)
