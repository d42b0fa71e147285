"""``clonesim report``: the statistics agree with lifelines, scipy and polars computed here
independently from the run's tables; identical schedules compare exactly equal; sweeps get
per-point tables, or pool into one virtual population; every figure and table is written;
user errors are one line; the terminal tables fit 80 columns.

One small run (and one small sweep) is simulated per module. The config has spread: a
1e5-cell tumour with ~2 pre-existing MET-amplified and ~2 C797S cells whose lineages
survive or die out by chance, so patients progress at different times through either
mechanism or are cured (censored at the horizon).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times
from scipy import stats
from typer.testing import CliRunner

import clonesim
from clonesim.analysis.composition import FOUNDER, genotype_parents, muller_bands
from clonesim.analysis.survival import DAYS_PER_MONTH, compare_to_reference, sign_interval
from clonesim.cli import app

HORIZON_DAYS = 400.0
REPLICATES = 60
REFERENCE = "osimertinib"
CONFIG: dict[str, Any] = {
    "name": "report-test",
    "time": {"horizon_days": HORIZON_DAYS, "dt_days": 1.0, "record_every_days": 10},
    "tumor": {"initial_cells": 100_000, "initial_fractions": {"MET_amp": 2.0e-5, "C797S": 2.0e-5},
              "lethal_cells": 1.0e7, "detection_cells": 100},
    "phenotypes": {"sensitive": {"birth_rate_per_day": 0.3, "death_rate_per_day": 0.2,
                                 "drug_kill_rate_per_day": 0.05, "cytostatic_share": 0.5}},
    "driver_pathway": "EGFR",
    "pathways": ["EGFR", "MET"],
    "alterations": {"MET_amp": {"mutation_rate_per_division": 0.0, "adds_pathway": "MET"},
                    "C797S": {"mutation_rate_per_division": 0.0, "ic50_fold": {"osimertinib": 1000.0}}},
    "drugs": {"osimertinib": {"targets": {"EGFR": {"ic50": 0.01}}},
              "savolitinib": {"targets": {"MET": {"ic50": 0.02}}}},
    "schedules": {
        "osimertinib": [{"drugs": ["osimertinib"]}],
        "low_dose": [{"drugs": [{"name": "osimertinib", "dose": 0.05}]}],
        "sequential": [{"drugs": ["osimertinib"], "until": "progression"},
                       {"drugs": ["osimertinib", "savolitinib"]}],
        "upfront": [{"drugs": ["osimertinib", "savolitinib"]}],
        "osimertinib_copy": [{"drugs": ["osimertinib"]}],  # identical to the reference
    },
}
SWEPT = "tumor.initial_fractions.MET_amp"
FIGURES = ("km_ttp", "km_first_progression", "km_death", "comparison", "mechanisms", "emergence",
           "exposure", "muller_mean", "muller_patients")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    return clonesim.run_to_directory(CONFIG, out, replicates=REPLICATES, seed=11, threads=1)


@pytest.fixture(scope="module")
def result(run_dir) -> clonesim.Report:
    return clonesim.report(run_dir, replicates_shown=2)


@pytest.fixture(scope="module")
def patients(run_dir) -> pl.DataFrame:
    return clonesim.read_table(run_dir, "patients")


@pytest.fixture(scope="module")
def sweep_result(tmp_path_factory) -> clonesim.Report:
    config = copy.deepcopy(CONFIG)
    config["schedules"] = {k: CONFIG["schedules"][k] for k in ("osimertinib", "upfront")}
    config["sweep"] = {"grid": {SWEPT: [1.0e-5, 1.0e-3]}}
    out = tmp_path_factory.mktemp("report-sweep") / "run"
    clonesim.run_to_directory(config, out, replicates=20, seed=3, threads=1)
    return clonesim.report(out, replicates_shown=1)


KILL = "phenotypes.sensitive.drug_kill_rate_per_day"
POOL_POINTS = [{SWEPT: 1.0e-5, KILL: 0.05}, {SWEPT: 1.0e-4, KILL: 0.08}, {SWEPT: 1.0e-3, KILL: 0.06}]
POOL_REPLICATES = 40
POOL_SCHEDULES = ("osimertinib", "upfront", "osimertinib_copy")


@pytest.fixture(scope="module")
def pool_run_dir(tmp_path_factory) -> Path:
    """A virtual population: 3 patient types (sweep points) x 40 replicates."""
    config = copy.deepcopy(CONFIG)
    config["schedules"] = {k: CONFIG["schedules"][k] for k in POOL_SCHEDULES}
    config["sweep"] = {"points": POOL_POINTS}
    out = tmp_path_factory.mktemp("report-pool") / "run"
    return clonesim.run_to_directory(config, out, replicates=POOL_REPLICATES, seed=5, threads=1)


@pytest.fixture(scope="module")
def pooled_result(pool_run_dir) -> clonesim.Report:
    return clonesim.report(pool_run_dir, pool=True, replicates_shown=2)


def ttp(patients: pl.DataFrame, schedule: str) -> tuple[np.ndarray, np.ndarray]:
    """(days, event) of time to progression, non-progressors censored at the horizon."""
    rows = patients.filter(pl.col("schedule") == schedule).sort("replicate")
    return rows["ttp_days"].fill_null(HORIZON_DAYS).to_numpy(), rows["progressed"].to_numpy()


def row(frame: pl.DataFrame, **match: Any) -> dict[str, Any]:
    found = frame.filter(*[pl.col(k) == v for k, v in match.items()])
    assert found.height == 1, (match, found)
    return found.row(0, named=True)


# --------------------------------------------------------------------------- survival


def test_the_config_gives_spread_and_censoring(patients):
    # The checks below are only meaningful if patients differ and some are censored.
    days, event = ttp(patients, REFERENCE)
    assert 0.3 < event.mean() < 0.95
    assert np.unique(days[event]).size > 10


@pytest.mark.parametrize("schedule", ["osimertinib", "low_dose", "sequential", "upfront"])
def test_median_and_its_interval_match_lifelines(result, patients, schedule):
    days, event = ttp(patients, schedule)
    fitter = KaplanMeierFitter().fit(days, event)
    lower, upper = median_survival_times(fitter.confidence_interval_).iloc[0]
    got = row(result.survival, schedule=schedule, endpoint="ttp")
    assert got["patients"] == REPLICATES and got["events"] == int(event.sum())

    def finite(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    assert got["median_days"] == finite(fitter.median_survival_time_)
    assert got["median_lower_days"] == finite(lower)
    assert got["median_upper_days"] == finite(upper)
    if got["median_days"] is not None:
        assert got["median_months"] == pytest.approx(got["median_days"] / (365.25 / 12))
    # The restricted mean is the area under the KM curve up to the horizon.
    area = fitter.survival_function_.reset_index().to_numpy()
    times = np.append(area[:, 0], HORIZON_DAYS)
    assert got["restricted_mean_days"] == pytest.approx(float(np.sum(np.diff(times) * area[:, 1])))


def test_median_not_reached_is_null(result, patients):
    for schedule in ("osimertinib", "low_dose", "sequential", "upfront"):
        _, event = ttp(patients, schedule)
        got = row(result.survival, schedule=schedule, endpoint="ttp")
        assert (got["median_days"] is None) == (event.mean() < 0.5)


def test_progression_free_share_at_one_year_matches_lifelines(result, patients):
    for schedule in ("osimertinib", "low_dose", "upfront"):
        days, event = ttp(patients, schedule)
        fitter = KaplanMeierFitter().fit(days, event)
        got = row(result.landmarks, schedule=schedule, endpoint="ttp", years=1)
        assert got["day"] == 365.0
        assert got["free_share"] == pytest.approx(float(fitter.predict(365.0)))
        band = fitter.confidence_interval_.loc[:365.0].iloc[-1]
        assert (got["free_lower"], got["free_upper"]) == pytest.approx(tuple(band))
    # No landmark beyond the horizon (400 days): only year 1.
    assert set(result.landmarks["years"]) == {1}


def test_hazard_ratio_and_logrank_match_lifelines(result, patients):
    for schedule in ("low_dose", "upfront"):
        days, event = ttp(patients, schedule)
        reference_days, reference_event = ttp(patients, REFERENCE)
        frame = pd.DataFrame({"T": np.r_[days, reference_days], "E": np.r_[event, reference_event],
                              "arm": np.repeat([1, 0], REPLICATES)})
        cox = CoxPHFitter().fit(frame, "T", "E").summary.loc["arm"]
        logrank = logrank_test(days, reference_days, event, reference_event)
        got = row(result.comparisons, schedule=schedule, endpoint="ttp")
        assert got["reference"] == REFERENCE and got["note"] is None
        assert got["hazard_ratio"] == pytest.approx(cox["exp(coef)"], rel=1e-9)
        assert got["hazard_ratio_lower"] == pytest.approx(cox["exp(coef) lower 95%"], rel=1e-9)
        assert got["hazard_ratio_upper"] == pytest.approx(cox["exp(coef) upper 95%"], rel=1e-9)
        assert got["logrank_p"] == pytest.approx(logrank.p_value, rel=1e-9)
    # upfront (osimertinib + savolitinib) kills MET-amplified cells: fewer progress, HR < 1.
    assert row(result.comparisons, schedule="upfront", endpoint="ttp")["hazard_ratio"] < 1


def test_reference_is_not_compared_with_itself(result):
    assert REFERENCE not in set(result.comparisons["schedule"].cast(pl.String))
    assert REFERENCE not in set(result.paired["schedule"].cast(pl.String))


def test_hazard_ratio_not_estimable_without_events_in_an_arm():
    outcomes = pl.DataFrame({
        "point": ["base"] * 8, "schedule": ["a"] * 4 + ["b"] * 4, "replicate": [0, 1, 2, 3] * 2,
        "endpoint": ["ttp"] * 8, "days": [5.0, 7.0, 9.0, 10.0] + [10.0] * 4,
        "event": [True, True, True, False] + [False] * 4, "horizon_days": [10.0] * 8,
    }).with_columns(pl.col("schedule").cast(pl.Enum(["a", "b"])))
    got = compare_to_reference(outcomes, "a").row(0, named=True)
    assert got["hazard_ratio"] is None and "no events" in got["note"]
    assert 0 < got["logrank_p"] < 0.1


# --------------------------------------------------------------------------- paired


def test_identical_schedules_differ_by_exactly_zero(result):
    for endpoint in ("ttp", "first_progression", "death"):
        got = row(result.paired, schedule="osimertinib_copy", endpoint=endpoint)
        for column in ("mean_difference_days", "mean_difference_lower_days", "mean_difference_upper_days",
                       "median_difference_days", "median_difference_lower_days",
                       "median_difference_upper_days", "mean_difference_months"):
            assert got[column] == 0.0, column
        assert (got["later_share"], got["tied_share"], got["earlier_share"]) == (0.0, 1.0, 0.0)
        assert got["wilcoxon_p"] == 1.0
        comparison = row(result.comparisons, schedule="osimertinib_copy", endpoint=endpoint)
        assert comparison["logrank_statistic"] == pytest.approx(0.0, abs=1e-12)
        assert comparison["hazard_ratio"] == pytest.approx(1.0, abs=1e-9)


def test_first_progression_of_sequential_is_that_of_its_first_line(result, patients):
    # sequential gives osimertinib alone until its first progression (shared random numbers):
    # the first progression is the reference's progression, patient by patient.
    got = row(result.paired, schedule="sequential", endpoint="first_progression")
    assert got["tied_share"] == 1.0 and got["mean_difference_days"] == 0.0
    # Its own (last-line) progression comes later or never.
    assert row(result.paired, schedule="sequential", endpoint="ttp")["earlier_share"] == 0.0


def test_paired_statistics_match_an_independent_computation(result, patients):
    days, _ = ttp(patients, "low_dose")
    reference_days, _ = ttp(patients, REFERENCE)
    difference = days - reference_days  # both sorted by replicate: the same patients
    got = row(result.paired, schedule="low_dose", endpoint="ttp")
    assert got["pairs"] == REPLICATES
    low, high = stats.t.interval(0.95, REPLICATES - 1, loc=difference.mean(), scale=stats.sem(difference))
    assert got["mean_difference_days"] == pytest.approx(difference.mean())
    interval = (got["mean_difference_lower_days"], got["mean_difference_upper_days"])
    assert interval == pytest.approx((low, high))
    assert got["median_difference_days"] == pytest.approx(float(np.median(difference)))
    assert got["wilcoxon_p"] == pytest.approx(stats.wilcoxon(difference).pvalue)
    assert got["later_share"] == pytest.approx(float((difference > 0).mean()))
    assert got["earlier_share"] == pytest.approx(float((difference < 0).mean()))
    assert got["tied_share"] == pytest.approx(float((difference == 0).mean()))
    assert got["mean_difference_months"] == pytest.approx(difference.mean() / DAYS_PER_MONTH)
    assert got["median_difference_lower_days"] <= got["median_difference_days"] <= got[
        "median_difference_upper_days"]


@pytest.mark.parametrize("n", [6, 20, 61, 500])
def test_sign_interval_is_the_narrowest_order_statistic_interval_with_95_percent(n):
    values = np.random.default_rng(n).normal(size=n)
    lower, upper, coverage = sign_interval(values)
    ordered = np.sort(values)
    k = int(np.flatnonzero(ordered == lower)[0]) + 1  # lower is the k-th smallest
    assert upper == ordered[n - k]
    assert coverage == pytest.approx(1 - 2 * stats.binom.cdf(k - 1, n, 0.5))
    assert coverage >= 0.95
    assert 1 - 2 * stats.binom.cdf(k, n, 0.5) < 0.95  # one order statistic narrower falls short


def test_sign_interval_needs_six_values():
    assert all(np.isnan(sign_interval(np.arange(5.0))))


# --------------------------------------------------------------------------- mechanisms, exposure


def test_mechanism_shares_match_polars(result, patients):
    progressed = patients.filter(pl.col("progressed"))
    counts = progressed.group_by("schedule", "mechanism_at_progression").len()
    assert counts.height > 0
    for schedule, mechanism, count in counts.iter_rows():
        got = row(result.mechanisms, schedule=schedule, mechanism=mechanism)
        total = progressed.filter(pl.col("schedule") == schedule).height
        assert got["count"] == count and got["progressed"] == total
        assert got["share_of_progressed"] == pytest.approx(count / total)
        assert got["share_of_patients"] == pytest.approx(count / REPLICATES)
    # Both mechanisms drive progressions under osimertinib; only C797S once MET is inhibited.
    mix = result.mechanisms.filter(pl.col("schedule") == REFERENCE, pl.col("count") > 0)
    assert set(mix["mechanism"].cast(pl.String)) == {"MET_amp", "C797S"}
    assert row(result.mechanisms, schedule="upfront", mechanism="MET_amp")["count"] == 0
    shares = result.mechanisms.group_by("schedule").agg(pl.col("share_of_progressed").sum())
    assert all(s is None or s == pytest.approx(1.0) for s in shares["share_of_progressed"])


def test_drug_days_means_match_polars(result, patients):
    means = patients.group_by("schedule").agg(pl.col("drug_days_osimertinib").mean(),
                                              pl.col("drug_days_savolitinib").mean())
    for schedule, osimertinib, savolitinib in means.iter_rows():
        got = row(result.exposure, schedule=schedule)
        assert got["drug_days_osimertinib"] == pytest.approx(osimertinib)
        assert got["drug_days_savolitinib"] == pytest.approx(savolitinib)
        assert got["total_drug_days"] == pytest.approx(osimertinib + savolitinib)
        assert got["total_drug_days_lower"] <= got["total_drug_days"] <= got["total_drug_days_upper"]


def test_emergence_shares_match_polars(result, run_dir):
    emergence = clonesim.read_table(run_dir, "emergence")
    expected = emergence.group_by("schedule", "mechanism").agg(
        pl.col("established_day").is_not_null().mean(), pl.col("ctdna_detect_day").is_not_null().mean(),
        (pl.col("arise_day") <= 0).mean().alias("preexisting"))
    for schedule, mechanism, established, ctdna, preexisting in expected.iter_rows():
        got = row(result.emergence, schedule=schedule, mechanism=mechanism)
        assert got["established_share"] == pytest.approx(established)
        assert got["ctdna_share"] == pytest.approx(ctdna)
        assert got["preexisting_share"] == pytest.approx(preexisting)


# --------------------------------------------------------------------------- composition


def test_mean_composition_matches_a_dense_computation(result, run_dir):
    trajectories = clonesim.read_table(run_dir, "trajectories").filter(pl.col("day") % 10 == 0)
    totals = trajectories.group_by("schedule", "replicate", "day").agg(pl.col("cells").sum().alias("total"))
    with_tumour = totals.filter(pl.col("total") > 0)
    # Dense: every (replicate with tumour, day) x genotype, absent compartments as 0 cells.
    genotypes = trajectories.select(pl.col("genotype").cast(pl.String).unique())
    dense = with_tumour.join(genotypes, how="cross").join(
        trajectories.with_columns(pl.col("genotype").cast(pl.String))
        .group_by("schedule", "replicate", "day", "genotype").agg(pl.col("cells").sum()),
        on=["schedule", "replicate", "day", "genotype"], how="left",
    ).with_columns(pl.col("cells").fill_null(0))
    expected = dense.group_by("schedule", "day", "genotype").agg(
        (pl.col("cells") / pl.col("total")).mean().alias("expected"), pl.len().alias("n"))
    got = result.composition.group_by("schedule", "day", "genotype").agg(pl.col("mean_fraction").sum())
    joined = expected.join(got, on=["schedule", "day", "genotype"], how="left").with_columns(
        pl.col("mean_fraction").fill_null(0.0))
    assert joined.height > 100
    assert np.allclose(joined["mean_fraction"], joined["expected"], atol=1e-12)
    # Patients with tumour: all at day 0, fewer as they are cured or reach lethal burden.
    counts = with_tumour.group_by("schedule", "day").len()
    burden = result.burden.join(counts, on=["schedule", "day"])
    assert (burden["with_tumour"] == burden["len"]).all()
    assert (result.burden.filter(pl.col("day") == 0)["with_tumour"] == REPLICATES).all()
    sums = result.composition.group_by("schedule", "day").agg(pl.col("mean_fraction").sum())
    assert np.allclose(sums["mean_fraction"], 1.0)


def test_genotype_parents_are_the_largest_drawn_subset():
    drawn = [FOUNDER, "A", "B", "A+B", "A+B+C", "C+D"]
    parents = genotype_parents(drawn)
    assert parents == {"A": FOUNDER, "B": FOUNDER, "A+B": "A", "A+B+C": "A+B", "C+D": FOUNDER}


def test_muller_bands_tile_the_stack_and_nest_children_in_parents():
    rng = np.random.default_rng(0)
    classes = [(g, p) for g in (FOUNDER, "A", "A+B", "C") for p in ("sensitive", "persister")]
    fractions = {c: rng.uniform(0, 1, 30) for c in classes}
    total = sum(fractions.values())
    fractions = {c: f / total for c, f in fractions.items()}
    bands = muller_bands(fractions, [FOUNDER, "A", "A+B", "C"], ["sensitive", "persister"])
    # Contiguous, non-overlapping, from 0 to the total; each class's thickness is its fraction.
    ordered = sorted(bands, key=lambda b: b[2].sum())
    assert np.allclose(ordered[0][2], 0.0) and np.allclose(ordered[-1][3], 1.0)
    for previous, following in zip(ordered, ordered[1:], strict=False):
        assert np.allclose(previous[3], following[2])
    for genotype, phenotype in classes:
        thickness = sum(b[3] - b[2] for b in bands if b[:2] == (genotype, phenotype))
        assert np.allclose(thickness, fractions[(genotype, phenotype)])

    def extent(genotype: str) -> tuple[np.ndarray, np.ndarray]:
        own = [b for b in bands if b[0] == genotype]
        return np.min([b[2] for b in own], axis=0), np.max([b[3] for b in own], axis=0)

    parent_low, parent_high = extent("A")
    child_low, child_high = extent("A+B")
    assert np.all(parent_low <= child_low + 1e-12) and np.all(child_high <= parent_high + 1e-12)


# --------------------------------------------------------------------------- outputs


def test_every_figure_and_table_is_written(result, run_dir):
    out = run_dir / "report"
    assert result.out == out and result.markdown == out / "report.md"
    for stem in FIGURES:
        png, svg = out / "figures" / f"{stem}.png", out / "figures" / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, stem
        assert b"<svg" in svg.read_bytes()[:2000] and svg.stat().st_size > 10_000, stem
    assert sorted(result.figures) == sorted(p for s in FIGURES for p in (out / "figures" / f"{s}.png",
                                                                         out / "figures" / f"{s}.svg"))
    for name, frame in result.tables.items():
        written = pl.read_parquet(out / "tables" / f"{name}.parquet")
        assert written.equals(frame), name
        assert "point" not in frame.columns  # not a sweep
    markdown = result.markdown.read_text()
    links = re.findall(r"\]\(([^)]+)\)", markdown)
    assert {f"figures/{s}.png" for s in FIGURES} <= set(links)
    assert all((out / link).exists() for link in links)
    assert "| osimertinib_copy |" in markdown


def test_png_resolution_is_at_least_200_dpi(result):
    from PIL import Image

    with Image.open(result.out / "figures" / "km_ttp.png") as image:
        assert min(image.info["dpi"]) >= 199.9


def test_sweep_gets_per_point_tables_and_figures(sweep_result):
    survival = sweep_result.survival
    assert survival.columns[:2] == ["point", SWEPT]
    points = survival.select("point", SWEPT).unique()
    assert sorted(points[SWEPT].to_list()) == [1.0e-5, 1.0e-3]
    for name in ("survival", "landmarks", "comparisons", "paired", "mechanisms", "exposure",
                 "composition", "burden", "emergence"):
        frame = sweep_result.tables[name]
        assert {"point", SWEPT} <= set(frame.columns), name
        assert frame.select("point").n_unique() == 2, name
    assert survival.filter(pl.col("endpoint") == "ttp").height == 2 * 2  # points x schedules
    # Each point's numbers are those of that point's patients alone.
    run_dir = sweep_result.out.parent
    patients = clonesim.read_table(run_dir, "patients")
    for point, value in points.iter_rows():
        chosen = patients.filter((pl.col("point").cast(pl.String) == str(point))
                                 & (pl.col("schedule") == REFERENCE))
        fitter = KaplanMeierFitter().fit(chosen["ttp_days"].fill_null(HORIZON_DAYS).to_numpy(),
                                         chosen["progressed"].to_numpy())
        got = row(survival, point=point, schedule=REFERENCE, endpoint="ttp")
        expected = fitter.median_survival_time_
        assert got["median_days"] == (float(expected) if np.isfinite(expected) else None)
        assert got[SWEPT] == value
    # More pre-existing MET amplification: upfront gains more over osimertinib alone.
    gains = sweep_result.paired.filter(pl.col("endpoint") == "ttp").sort(SWEPT)["mean_difference_days"]
    assert gains[1] > gains[0]
    figures = sweep_result.out / "figures"
    assert (figures / f"sweep_{SWEPT}.png").stat().st_size > 10_000
    assert (figures / f"sweep_lethal_{SWEPT}.png").stat().st_size > 10_000
    for point in points["point"]:
        assert (figures / f"point_{point}" / "km_ttp.svg").exists()


# --------------------------------------------------------------------------- pooled sweep


def pooled_ttp(run_dir: Path, schedule: str) -> tuple[np.ndarray, np.ndarray]:
    """(days, event) of every point's patients, concatenated in run.json's point order."""
    order = [p["point"] for p in json.loads((run_dir / "run.json").read_text())["points"]]
    rows = clonesim.read_table(run_dir, "patients").filter(pl.col("schedule") == schedule).with_columns(
        pl.col("point").cast(pl.String).replace_strict(order, list(range(len(order)))).alias("index"))
    rows = rows.sort("index", "replicate")
    return rows["ttp_days"].fill_null(HORIZON_DAYS).to_numpy(), rows["progressed"].to_numpy()


def test_pooled_sweep_renumbers_point_and_replicate_into_patients(pool_run_dir):
    from clonesim.analysis.report import POOLED_POINT, _pooled, _read_run

    run = _read_run(pool_run_dir)
    pooled = _pooled(run)
    order = [p["point"] for p in run.info["points"]]
    for name in ("patients", "emergence", "phase_changes"):
        before, after = getattr(run, name), getattr(pooled, name)
        assert after.schema["replicate"] == before.schema["replicate"] == pl.Int64, name
        expected = before.select((pl.col("point").cast(pl.String).replace_strict(
            order, list(range(len(order)))) * POOL_REPLICATES + pl.col("replicate")).alias("replicate"))
        assert after["replicate"].to_list() == expected["replicate"].to_list(), name
        assert set(after["point"].cast(pl.String)) == {POOLED_POINT} and SWEPT not in after.columns
    trajectories = pooled.trajectories.select("schedule", "replicate").unique().collect()
    assert trajectories.group_by("schedule").len()["len"].to_list() == [3 * POOL_REPLICATES] * 3
    assert pooled.swept == [] and not pooled.is_sweep and pooled.settings.height == 1


def test_pooled_replicate_ids_widen_only_when_needed(tmp_path):
    from clonesim.analysis.report import _pooled, _Run

    def pooled_dtype(dtype: pl.DataType, replicates: int) -> pl.DataType:
        points = ["a", "b"]
        frame = pl.DataFrame({"point": ["a", "b"], "schedule": ["s", "s"], "replicate": [0, replicates - 1]},
                             schema_overrides={"point": pl.Enum(points), "replicate": dtype})
        settings = pl.DataFrame({"point": points, "x": [1, 2], "horizon_days": [9.0] * 2,
                                 "record_every_days": [1.0] * 2}).cast({"point": pl.Enum(points)})
        info = {"replicates": replicates, "config": {}, "schedules": ["s"],
                "points": [{"point": p, "overrides": {"x": i + 1}} for i, p in enumerate(points)]}
        run = _Run(tmp_path, info, frame, frame, frame, frame.lazy(), settings, ["x"])
        pooled = _pooled(run)
        assert pooled.patients["replicate"].to_list() == [0, 2 * replicates - 1]
        assert pooled.trajectories.collect()["replicate"].to_list() == [0, 2 * replicates - 1]
        return pooled.patients.schema["replicate"]

    assert pooled_dtype(pl.Int8, 60) == pl.Int8  # patients 0..119 fit
    assert pooled_dtype(pl.Int8, 100) == pl.Int64  # 0..199 do not
    assert pooled_dtype(pl.UInt32, 100) == pl.UInt32


@pytest.mark.parametrize("schedule", POOL_SCHEDULES)
def test_pooled_kaplan_meier_is_that_of_all_patients_together(pooled_result, pool_run_dir, schedule):
    days, event = pooled_ttp(pool_run_dir, schedule)
    assert days.size == len(POOL_POINTS) * POOL_REPLICATES
    fitter = KaplanMeierFitter().fit(days, event)
    lower, upper = median_survival_times(fitter.confidence_interval_).iloc[0]
    got = row(pooled_result.survival, schedule=schedule, endpoint="ttp")
    assert got["patients"] == len(POOL_POINTS) * POOL_REPLICATES
    assert got["events"] == int(event.sum())

    def finite(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    assert got["median_days"] == finite(fitter.median_survival_time_)
    assert (got["median_lower_days"], got["median_upper_days"]) == (finite(lower), finite(upper))
    # One population: no point or swept columns anywhere.
    for name, frame in pooled_result.tables.items():
        assert "point" not in frame.columns and SWEPT not in frame.columns, name
    assert pooled_result.swept == []


def test_pooled_paired_differences_pair_each_point_and_replicate(pooled_result, pool_run_dir):
    patients = len(POOL_POINTS) * POOL_REPLICATES
    for endpoint in ("ttp", "death"):
        got = row(pooled_result.paired, schedule="osimertinib_copy", endpoint=endpoint)
        assert got["pairs"] == patients
        for column in ("mean_difference_days", "mean_difference_lower_days", "mean_difference_upper_days",
                       "median_difference_days"):
            assert got[column] == 0.0, column
        assert got["tied_share"] == 1.0 and got["wilcoxon_p"] == 1.0
    days, _ = pooled_ttp(pool_run_dir, "upfront")
    reference_days, _ = pooled_ttp(pool_run_dir, REFERENCE)
    got = row(pooled_result.paired, schedule="upfront", endpoint="ttp")
    assert got["pairs"] == patients
    assert got["mean_difference_days"] == pytest.approx(float((days - reference_days).mean()))
    # The trajectories are renumbered too: every patient has tumour at day 0.
    assert (pooled_result.burden.filter(pl.col("day") == 0)["with_tumour"] == patients).all()


def test_pooled_report_writes_one_population(pooled_result):
    out = pooled_result.out
    stems = [s for s in FIGURES if s != "km_first_progression"]  # no schedule changes line
    for stem in stems:
        for suffix in (".png", ".svg"):
            path = out / "figures" / f"{stem}{suffix}"
            assert path.stat().st_size > 10_000, path
    assert sorted(p.name for p in pooled_result.figures) == sorted(
        f"{s}{x}" for s in stems for x in (".png", ".svg"))
    assert not any(p.name.startswith("point_") for p in (out / "figures").iterdir())
    markdown = pooled_result.markdown.read_text()
    assert (f"pools the sweep's 3 points × {POOL_REPLICATES} replicates into one population of "
            f"{3 * POOL_REPLICATES} virtual patients") in markdown
    assert f"`{SWEPT}`: min 1e-05, max 0.001" in markdown and f"`{KILL}`: min 0.05, max 0.08" in markdown
    assert "## Sweep" not in markdown


# --------------------------------------------------------------------------- CLI

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def one_error_line(args: list[str], *fragments: str) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_cli_missing_run_directory(tmp_path):
    one_error_line(["report", str(tmp_path / "nowhere")], "nowhere", "not a directory")
    one_error_line(["report", str(tmp_path)], "no run.json")


def test_cli_incomplete_run_directory(tmp_path, run_dir):
    (tmp_path / "run.json").write_text((run_dir / "run.json").read_text())
    one_error_line(["report", str(tmp_path)], "no table 'patients'", "incomplete")


def test_cli_corrupt_table_is_one_line(tmp_path, run_dir):
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken, ignore=shutil.ignore_patterns("report"))
    part = next((broken / "trajectories").rglob("*.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    one_error_line(["report", str(broken)], "cannot read table 'trajectories'")


def test_cli_unknown_reference_lists_the_schedules(run_dir):
    line = one_error_line(["report", str(run_dir), "--reference", "osimertnib"], "'osimertnib'")
    assert ", ".join(CONFIG["schedules"]) in line


def test_cli_refuses_negative_patients_and_foreign_out(run_dir, tmp_path):
    one_error_line(["report", str(run_dir), "--replicates-shown", "-1"], "--replicates-shown")
    (tmp_path / "notes.txt").write_text("mine")
    one_error_line(["report", str(run_dir), "--out", str(tmp_path)], "not a clonesim report")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_report_prints_tables_and_writes(run_dir, tmp_path):
    out = tmp_path / "low-dose-report"
    result = CliRunner().invoke(app, ["report", str(run_dir), "--reference", "low_dose", "--out", str(out),
                                      "--replicates-shown", "0"])
    assert result.exit_code == 0, result.stderr
    text = ANSI.sub("", result.stdout)
    assert "Time to progression against low_dose" in text and "Time to lethal burden" in text
    assert all(schedule in text for schedule in CONFIG["schedules"])
    assert ANSI.sub("", result.stderr).strip().splitlines()[-1].startswith(f"wrote {out}")
    assert (out / "report.md").exists() and not (out / "figures" / "muller_patients.png").exists()
    written = pl.read_parquet(out / "tables" / "comparisons.parquet")
    assert set(written["reference"]) == {"low_dose"}
    info = json.loads((run_dir / "run.json").read_text())
    assert info["schedules"] == list(CONFIG["schedules"])


def test_cli_pool_refuses_a_run_that_is_not_a_sweep(run_dir):
    one_error_line(["report", str(run_dir), "--pool"], "--pool", "not a sweep")


def test_cli_pool_refuses_a_sweep_over_the_horizon(tmp_path):
    config = copy.deepcopy(CONFIG)
    config["schedules"] = {REFERENCE: CONFIG["schedules"][REFERENCE]}
    config["sweep"] = {"grid": {"time.horizon_days": [100.0, 150.0]}}
    run = clonesim.run_to_directory(config, tmp_path / "run", replicates=2, seed=1, threads=1)
    one_error_line(["report", str(run), "--pool"], "--pool", "time.horizon_days")
    assert not (run / "report").exists()


def cli_tables(report: clonesim.Report, monkeypatch, columns: int) -> str:
    """What `clonesim report` prints for ``report`` (not recomputed) at COLUMNS=``columns``."""
    import clonesim.analysis.report as module

    monkeypatch.setattr(module, "report", lambda *args, **kwargs: report)
    result = CliRunner().invoke(app, ["report", "anywhere"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.stderr
    return ANSI.sub("", result.stdout)


def test_cli_sweep_tables_fit_80_columns(sweep_result, monkeypatch):
    text = cli_tables(sweep_result, monkeypatch, 80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert "…" not in text, text  # nothing cut short
    for schedule in ("osimertinib", "upfront"):
        assert any(re.match(rf"{schedule}\s", line) for line in lines), (schedule, text)
    for value in ("1e-05", "0.001"):  # each point's swept value
        assert f"MET_amp = {value}" in text, text
    assert "Time to progression against osimertinib" in text and "later/same/earlier" in text


def test_cli_run_tables_fit_80_columns(result, monkeypatch):
    text = cli_tables(result, monkeypatch, 80)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "…" not in text, text
    assert all(re.search(rf"^{schedule}\s", text, re.MULTILINE) for schedule in CONFIG["schedules"])
    # With room, one table per endpoint as before.
    wide = cli_tables(result, monkeypatch, 140)
    assert wide.count("schedule ") == 3 and "paired Δ mean" in wide


def test_sweep_figures_skip_set_parameters_and_join_those_varied_together():
    """A path with one value everywhere gets no sweep figure; paths that split the points
    the same way (in either direction) share one."""
    from clonesim.analysis.report import varied_parameters

    settings = pl.DataFrame({
        "point": ["p0", "p1", "p2", "p3"],
        "rate": [1.0, 1.0, 2.0, 2.0],
        "fixed": [5, 5, 5, 5],
        "zeroed": [1e-7, 1e-7, 0.0, 0.0],   # varies with rate, in the other direction
        "other": [1, 2, 1, 2],
        "unset": pl.Series([None] * 4, dtype=pl.Float64),
        "label": ["x", "x", "y", "y"],       # text, varies with rate
    })
    paths = ["rate", "fixed", "zeroed", "other", "unset", "label"]
    assert varied_parameters(settings, paths) == {"rate": ["zeroed", "label"], "other": []}
