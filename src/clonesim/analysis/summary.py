"""A per-schedule summary of a run's ``patients`` table (what ``clonesim run`` prints).

Median time to progression: every replicate is followed to the horizon unless it
dies (after progressing: lethal_cells is far above detection) or is cured
(extinct: it never progresses), so censoring happens only at the horizon and the
median TTP is the plain median with non-progressed replicates counted as later
than the horizon — the same value a Kaplan-Meier estimate gives. It is "not
reached" (null) when half of the replicates or fewer progressed.
"""

from __future__ import annotations

import polars as pl

DAYS_PER_MONTH = 365.25 / 12


def schedule_summary(patients: pl.DataFrame) -> pl.DataFrame:
    """One row per schedule: patients, share progressed, median TTP (days, months),
    best-response shares, the most frequent mechanism at progression, and mean
    drug-days per drug. Schedules keep their order in the table's Enum.
    """
    drug_columns = [c for c in patients.columns if c.startswith("drug_days_")]
    ttp = pl.col("ttp_days").fill_null(float("inf"))
    summary = patients.group_by("schedule").agg(
        pl.len().alias("patients"),
        pl.col("progressed").mean().alias("progressed_share"),
        pl.when(pl.col("progressed").mean() > 0.5).then(ttp.median()).alias("median_ttp_days"),
        *[(pl.col("best_response").cast(pl.String) == r).mean().alias(f"{r}_share")
          for r in ("CR", "PR", "SD", "PD")],
        pl.col("mechanism_at_progression").drop_nulls().cast(pl.String).mode().first()
        .alias("top_mechanism"),
        (pl.col("mechanism_at_progression").cast(pl.String)
         == pl.col("mechanism_at_progression").drop_nulls().cast(pl.String).mode().first())
        .sum().truediv(pl.col("progressed").sum()).alias("top_mechanism_share"),
        *[pl.col(c).mean() for c in drug_columns],
    )
    return summary.with_columns(
        (pl.col("median_ttp_days") / DAYS_PER_MONTH).alias("median_ttp_months")
    ).sort(pl.col("schedule").to_physical())
