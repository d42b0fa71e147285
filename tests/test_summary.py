"""The per-schedule run summary (clonesim.analysis.summary) on hand-made patients tables."""

from __future__ import annotations

import math

import polars as pl
import pytest

from clonesim.analysis.summary import DAYS_PER_MONTH, schedule_summary


def _patients(schedule: str, ttp: list[float | None], mechanisms: list[str | None],
              responses: list[str]) -> pl.DataFrame:
    return pl.DataFrame({
        "schedule": [schedule] * len(ttp),
        "progressed": [t is not None for t in ttp],
        "ttp_days": ttp,
        "best_response": responses,
        "mechanism_at_progression": mechanisms,
        "drug_days_a": [10.0 * (i + 1) for i in range(len(ttp))],
    }).with_columns(pl.col("schedule").cast(pl.Enum(["s1", "s2"])))


def test_median_ttp_counts_non_progressed_as_later_than_any_progression():
    # 5 patients, 3 progressed at 100, 300, 200; the median is the 3rd smallest: 300.
    patients = _patients("s1", [100.0, None, 300.0, None, 200.0],
                         ["A", None, "B", None, "A"], ["PR", "PR", "SD", "CR", "PD"])
    row = schedule_summary(patients).row(0, named=True)
    assert row["patients"] == 5
    assert row["progressed_share"] == pytest.approx(0.6)
    assert row["median_ttp_days"] == 300.0
    assert row["median_ttp_months"] == pytest.approx(300.0 / DAYS_PER_MONTH)
    assert (row["CR_share"], row["PR_share"], row["SD_share"], row["PD_share"]) == (
        pytest.approx(0.2), pytest.approx(0.4), pytest.approx(0.2), pytest.approx(0.2))
    assert row["top_mechanism"] == "A"
    assert row["top_mechanism_share"] == pytest.approx(2 / 3)
    assert row["drug_days_a"] == pytest.approx(30.0)


def test_median_not_reached_when_half_or_fewer_progress():
    patients = _patients("s2", [50.0, None, 70.0, None], ["A", None, "A", None],
                         ["PR"] * 4)
    row = schedule_summary(patients).row(0, named=True)
    assert row["median_ttp_days"] is None and row["median_ttp_months"] is None
    assert not math.isnan(row["progressed_share"])


def test_schedules_keep_their_configured_order():
    both = pl.concat([_patients("s2", [1.0], ["A"], ["PD"]), _patients("s1", [2.0], ["B"], ["PD"])])
    assert schedule_summary(both)["schedule"].cast(pl.String).to_list() == ["s1", "s2"]
