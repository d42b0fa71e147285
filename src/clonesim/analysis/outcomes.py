"""Per-schedule tables of what drives progression and what a schedule costs.

All functions group by (point, schedule) - ``point`` is the sweep point (a single
``base`` point without a sweep) - and keep the Enum order of both.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from clonesim.analysis.survival import CONFIDENCE, DAYS_PER_MONTH, GROUP

#: Emergence events drawn as cumulative curves (column of the emergence table, label).
EMERGENCE_EVENTS = {"established_day": "established", "ctdna_detect_day": "ctDNA-detected"}


def mechanism_mix(patients: pl.DataFrame) -> pl.DataFrame:
    """Mechanism at progression per (point, schedule): patients whose progression it drove
    (``count``), its share of the progressions (``share_of_progressed``) and of all patients
    (``share_of_patients``), with ``progressed`` and ``patients`` totals. Every mechanism seen
    at any progression of the run gets a row in every group (zero counts included)."""
    totals = patients.group_by(GROUP).agg(pl.len().alias("patients"),
                                          pl.col("progressed").sum().alias("progressed"))
    seen = patients.select(pl.col("mechanism_at_progression").drop_nulls().unique())
    counts = patients.filter(pl.col("progressed")).group_by(
        [*GROUP, "mechanism_at_progression"]).agg(pl.len().alias("count"))
    grid = totals.join(seen, how="cross").rename({"mechanism_at_progression": "mechanism"})
    mix = grid.join(counts.rename({"mechanism_at_progression": "mechanism"}),
                    on=[*GROUP, "mechanism"], how="left").with_columns(
        pl.col("count").fill_null(0).cast(pl.Int64),
        pl.col("patients").cast(pl.Int64), pl.col("progressed").cast(pl.Int64),
    )
    return mix.with_columns(
        (pl.col("count") / pl.col("progressed")).fill_nan(None).alias("share_of_progressed"),
        (pl.col("count") / pl.col("patients")).alias("share_of_patients"),
    ).select(*GROUP, "mechanism", "count", "share_of_progressed", "share_of_patients", "progressed",
             "patients").sort([pl.col(c).to_physical() for c in [*GROUP, "mechanism"]])


def emergence_summary(emergence: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """Per (point, schedule, mechanism): how often and when each resistance mechanism appears.

    Shares are of all patients: ``preexisting_share`` (arose before day 0), ``arisen_share``,
    ``established_share`` (reached ``events.established_cells``), ``dominant_share`` (> half the
    burden), ``ctdna_share`` (seen by a liquid biopsy; alterations only). Medians of
    ``established_day`` and ``ctdna_detect_day`` are over the patients with the event (days
    from the start of therapy; 0 for a clone already there). For the patients whose
    progression this mechanism drove (``progressions``): ``ctdna_before_progression_share``,
    the share in which ctDNA saw it on or before the progression day, and
    ``median_ctdna_lead_days``, the median of (progression day - detection day) over those.
    """
    joined = emergence.join(patients.select(*GROUP, "replicate", "ttp_days", "mechanism_at_progression"),
                            on=[*GROUP, "replicate"], how="left")
    drove = pl.col("mechanism_at_progression").cast(pl.String) == pl.col("mechanism").cast(pl.String)
    seen_before = drove & (pl.col("ctdna_detect_day") <= pl.col("ttp_days"))
    return joined.group_by([*GROUP, "mechanism"]).agg(
        pl.len().alias("patients"),
        (pl.col("arise_day") <= 0).mean().alias("preexisting_share"),
        pl.col("arise_day").is_not_null().mean().alias("arisen_share"),
        pl.col("established_day").is_not_null().mean().alias("established_share"),
        pl.col("established_day").median().alias("median_established_days"),
        pl.col("dominant_day").is_not_null().mean().alias("dominant_share"),
        pl.col("ctdna_detect_day").is_not_null().mean().alias("ctdna_share"),
        pl.col("ctdna_detect_day").median().alias("median_ctdna_days"),
        drove.fill_null(False).sum().cast(pl.Int64).alias("progressions"),
        (seen_before.fill_null(False).sum() / drove.fill_null(False).sum()).fill_nan(None)
        .alias("ctdna_before_progression_share"),
        (pl.col("ttp_days") - pl.col("ctdna_detect_day")).filter(seen_before.fill_null(False)).median()
        .alias("median_ctdna_lead_days"),
    ).with_columns(pl.col("patients").cast(pl.Int64)).sort(
        [pl.col(c).to_physical() for c in [*GROUP, "mechanism"]])


def emergence_curves(emergence: pl.DataFrame) -> pl.DataFrame:
    """Cumulative share of patients in whom each mechanism has been established or detected by
    ctDNA by ``day``, per (point, schedule, mechanism, event): a step function that jumps at
    each event day (no censoring correction: replicates stop only at death, after progression,
    or at cure, after which nothing more emerges)."""
    frames = []
    for column, label in EMERGENCE_EVENTS.items():
        totals = emergence.group_by([*GROUP, "mechanism"]).agg(pl.len().alias("patients"))
        steps = emergence.filter(pl.col(column).is_not_null()).group_by(
            [*GROUP, "mechanism", pl.col(column).alias("day")]).agg(pl.len().alias("new"))
        frames.append(
            steps.join(totals, on=[*GROUP, "mechanism"])
            .sort([*(pl.col(c).to_physical() for c in [*GROUP, "mechanism"]), "day"])
            .with_columns(
                pl.lit(label).alias("event"),
                (pl.col("new").cum_sum().over([*GROUP, "mechanism"]) / pl.col("patients"))
                .alias("cumulative_share"),
            ).select(*GROUP, "mechanism", "event", "day", "cumulative_share")
        )
    return pl.concat(frames).with_columns(
        pl.col("event").cast(pl.Enum(list(EMERGENCE_EVENTS.values()))),
        (pl.col("day") / DAYS_PER_MONTH).alias("month"),
    )


def drug_exposure(patients: pl.DataFrame, drugs: list[str]) -> pl.DataFrame:
    """Mean drug-days per patient per (point, schedule): each drug (standard doses given,
    ``drug_days_DRUG``) and their sum ``total_drug_days`` with its 95 % t interval."""
    total = pl.sum_horizontal([pl.col(f"drug_days_{d}") for d in drugs]) if drugs else pl.lit(0.0)
    means = patients.with_columns(total.alias("total_drug_days")).group_by(GROUP).agg(
        *[pl.col(f"drug_days_{d}").mean() for d in drugs],
        pl.col("total_drug_days").mean(),
        (pl.col("total_drug_days").std() / pl.len().sqrt()).alias("standard_error"),
        pl.len().alias("patients"),
    ).sort([pl.col(c).to_physical() for c in GROUP])
    t_quantile = stats.t.ppf(0.5 + CONFIDENCE / 2, np.maximum(means["patients"].to_numpy() - 1, 1))
    half_width = means["standard_error"] * pl.Series(t_quantile)
    return means.with_columns(
        (pl.col("total_drug_days") - half_width).alias("total_drug_days_lower"),
        (pl.col("total_drug_days") + half_width).alias("total_drug_days_upper"),
    ).drop("standard_error", "patients")
