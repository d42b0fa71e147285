"""Time-to-event statistics of a run: Kaplan-Meier, hazard ratios, log-rank, paired differences.

Every function takes an *outcomes* frame, one row per (point, schedule, replicate,
endpoint) with ``days`` (event or censoring time, days from the start of therapy)
and ``event`` (bool), as built by :func:`endpoint_outcomes`. Censoring happens only
at the horizon: a replicate is followed to the horizon unless it dies (after
progressing) or is cured (extinct: it never progresses, and is counted as followed
to the horizon). So ``days`` of a replicate without the event is the horizon, and
``days`` is also the *restricted* time (the event time capped at the horizon).

Endpoints
---------
``ttp``
    the schedule's progression (``ttp_days``): the progression that is not a change
    of line, i.e. the failure of the schedule's last line.
``first_progression``
    the first progression, line changes included (end of line 1; only when some
    schedule changes line at progression, e.g. ``sequential``).
``death``
    time to lethal burden (``death_day``), which compares multi-line schedules fairly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import polars as pl
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times
from scipy import stats

DAYS_PER_MONTH = 365.25 / 12
#: Landmark times for the progression-free (event-free) share, in years of 365 days, so
#: that a horizon written as k x 365 days (the usual way) reaches year k.
LANDMARK_YEARS = (1, 2, 3)
DAYS_PER_LANDMARK_YEAR = 365.0
CONFIDENCE = 0.95
#: A Cox coefficient beyond this (a hazard ratio beyond e^±10) only arises when the
#: partial likelihood is monotone (complete separation of the arms): no finite MLE.
MAX_ESTIMABLE_LOG_HR = 10.0

ENDPOINT_LABELS = {
    "ttp": "time to progression",
    "first_progression": "time to first progression",
    "death": "time to lethal burden",
}
GROUP = ["point", "schedule"]

F64, I64 = pl.Float64, pl.Int64
SUMMARY_COLUMNS = {
    "patients": I64, "events": I64, "median_days": F64, "median_lower_days": F64,
    "median_upper_days": F64, "restricted_mean_days": F64, "restricted_mean_lower_days": F64,
    "restricted_mean_upper_days": F64, "horizon_days": F64,
}
LANDMARK_COLUMNS = {"years": I64, "day": F64, "free_share": F64, "free_lower": F64, "free_upper": F64}
COMPARISON_COLUMNS = {
    "reference": pl.String, "hazard_ratio": F64, "hazard_ratio_lower": F64, "hazard_ratio_upper": F64,
    "cox_p": F64, "logrank_statistic": F64, "logrank_p": F64, "note": pl.String,
}
PAIRED_COLUMNS = {
    "reference": pl.String, "pairs": I64, "mean_difference_days": F64,
    "mean_difference_lower_days": F64, "mean_difference_upper_days": F64,
    "median_difference_days": F64, "median_difference_lower_days": F64,
    "median_difference_upper_days": F64, "median_ci_coverage": F64, "wilcoxon_p": F64,
    "later_share": F64, "earlier_share": F64, "tied_share": F64,
}


def endpoint_outcomes(patients: pl.DataFrame, first_progression: pl.DataFrame | None) -> pl.DataFrame:
    """Long outcomes frame: (point, schedule, replicate, endpoint, days, event, horizon_days).

    ``patients`` needs point, schedule, replicate, progressed, ttp_days, died, death_day and
    horizon_days. ``first_progression`` holds (point, schedule, replicate, day) of the first
    progression that changed line (None: no schedule changes line at progression); the
    ``first_progression`` endpoint is then the earlier of that day and ``ttp_days``.
    """
    horizon = pl.col("horizon_days")
    keys = ["point", "schedule", "replicate"]

    def endpoint(name: str, event: pl.Expr, day: pl.Expr) -> pl.DataFrame:
        return patients.select(
            *keys,
            pl.lit(name).alias("endpoint"),
            pl.when(event).then(day).otherwise(horizon).alias("days"),
            event.alias("event"),
            horizon,
        )

    frames = [endpoint("ttp", pl.col("progressed"), pl.col("ttp_days"))]
    if first_progression is not None:
        joined = patients.join(first_progression.rename({"day": "line_change_day"}), on=keys, how="left")
        first_day = pl.min_horizontal("line_change_day", "ttp_days")
        frames.append(
            joined.select(
                *keys,
                pl.lit("first_progression").alias("endpoint"),
                pl.coalesce(first_day, horizon).alias("days"),
                first_day.is_not_null().alias("event"),
                horizon,
            )
        )
    frames.append(endpoint("death", pl.col("died"), pl.col("death_day")))
    endpoints = pl.Enum([f for f in ENDPOINT_LABELS if f != "first_progression" or first_progression
                         is not None])
    return pl.concat(frames).with_columns(pl.col("endpoint").cast(endpoints))


def _groups(outcomes: pl.DataFrame, by: list[str]) -> Iterator[tuple[dict, pl.DataFrame]]:
    """(key values, rows) for each group, in the order of the key columns' categories."""
    ordered = outcomes.sort([pl.col(c).to_physical() for c in by] + ["replicate"])
    for frame in ordered.partition_by(by, maintain_order=True):
        yield {c: frame[c][0] for c in by}, frame


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its two-sided t confidence interval (the mean itself when all values agree)."""
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    sem = float(values.std(ddof=1)) / math.sqrt(len(values))
    if sem == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1)) * sem
    return mean, mean - half, mean + half


def _step_value(times: np.ndarray, values: np.ndarray, at: float) -> float:
    """A right-continuous step function (value at each time in ``times``) evaluated at ``at``."""
    return float(values[np.searchsorted(times, at, side="right") - 1])


def kaplan_meier(outcomes: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Kaplan-Meier estimates per (point, schedule, endpoint), with lifelines.

    Returns
    -------
    summary : patients, events, median time (lifelines: the first time S(t) <= 0.5) with
        its 95 % CI, taken as the times where the pointwise 95 % band of S(t) crosses 0.5
        (lifelines ``median_survival_times`` on the band; the band is lifelines' default
        exponential Greenwood, i.e. log(-log) transformed) - null when not reached by the
        horizon; and the restricted mean time to the horizon (= the mean of ``days``, which
        is the KM area under S(t) up to the horizon because censoring happens only there)
        with its t interval. Days and months.
    landmarks : the event-free share S(t) with its 95 % band at 1, 2, 3 years of 365 days
        (only those within the horizon).
    curves : S(t) and its band at every event time, with the number at risk, from day 0
        to the horizon (one row at the horizon added when the last time is earlier).
    """
    summaries, landmarks, curves = [], [], []
    for key, rows in _groups(outcomes, [*GROUP, "endpoint"]):
        days = rows["days"].to_numpy()
        event = rows["event"].to_numpy()
        horizon = float(rows["horizon_days"][0])
        fitter = KaplanMeierFitter(alpha=1 - CONFIDENCE).fit(days, event, label="S")
        band = fitter.confidence_interval_
        median_band = median_survival_times(band)
        mean, mean_lower, mean_upper = _t_interval(days)
        summaries.append({
            **key, "patients": len(days), "events": int(event.sum()),
            "median_days": _finite_or_none(fitter.median_survival_time_),
            "median_lower_days": _finite_or_none(median_band.iloc[0, 0]),
            "median_upper_days": _finite_or_none(median_band.iloc[0, 1]),
            "restricted_mean_days": mean, "restricted_mean_lower_days": mean_lower,
            "restricted_mean_upper_days": mean_upper, "horizon_days": horizon,
        })
        times = fitter.survival_function_.index.to_numpy()
        survival = fitter.survival_function_["S"].to_numpy()
        lower, upper = band.iloc[:, 0].to_numpy(), band.iloc[:, 1].to_numpy()
        for years in LANDMARK_YEARS:
            at = years * DAYS_PER_LANDMARK_YEAR
            if at <= horizon:
                landmarks.append({
                    **key, "years": years, "day": at, "free_share": _step_value(times, survival, at),
                    "free_lower": _step_value(times, lower, at), "free_upper": _step_value(times, upper, at),
                })
        at_risk = fitter.event_table["at_risk"].to_numpy()
        if times[-1] < horizon:
            times, survival = np.append(times, horizon), np.append(survival, survival[-1])
            lower, upper = np.append(lower, lower[-1]), np.append(upper, upper[-1])
            at_risk = np.append(at_risk, int((days >= horizon).sum()))
        curves.append(pl.DataFrame({
            **{c: [v] * len(times) for c, v in key.items()},
            "day": times, "survival": survival, "survival_lower": lower,
            "survival_upper": upper, "at_risk": at_risk.astype(np.int64),
        }, schema_overrides={c: outcomes.schema[c] for c in key}))
    summary = _with_months(_frame(summaries, outcomes, [*GROUP, "endpoint"], SUMMARY_COLUMNS),
                           ["median", "median_lower", "median_upper", "restricted_mean",
                            "restricted_mean_lower", "restricted_mean_upper"])
    landmark_frame = _frame(landmarks, outcomes, [*GROUP, "endpoint"], LANDMARK_COLUMNS)
    curve_frame = pl.concat(curves).with_columns((pl.col("day") / DAYS_PER_MONTH).alias("month"))
    return summary, landmark_frame, curve_frame


def _frame(rows: list[dict], like: pl.DataFrame, keys: list[str],
           columns: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    """Rows as a frame: key columns with ``like``'s (Enum) dtypes, then ``columns``; NaN -> null."""
    schema = {k: like.schema[k] for k in keys} | columns
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col(pl.Float64).fill_nan(None))


def _with_months(frame: pl.DataFrame, stems: list[str]) -> pl.DataFrame:
    """Add ``STEM_months`` = ``STEM_days`` / (365.25 / 12) for each stem."""
    return frame.with_columns((pl.col(f"{s}_days") / DAYS_PER_MONTH).alias(f"{s}_months") for s in stems)


def _cox_hazard_ratio(days: np.ndarray, event: np.ndarray, treated: np.ndarray
                      ) -> tuple[float | None, float | None, float | None, float | None, str | None]:
    """Hazard ratio (schedule vs reference), 95 % CI and Wald p from lifelines' CoxPHFitter
    (Efron ties), or None with the reason when no finite estimate exists."""
    if event[treated == 1].sum() == 0 or event[treated == 0].sum() == 0:
        return None, None, None, None, "not estimable: no events in one arm"
    data = pd.DataFrame({"days": days, "event": event, "schedule": treated})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = CoxPHFitter(alpha=1 - CONFIDENCE).fit(data, "days", "event").summary
        except ConvergenceError:
            return None, None, None, None, "not estimable: Cox fit did not converge"
    log_hr = float(summary.loc["schedule", "coef"])
    if any(issubclass(w.category, ConvergenceWarning) for w in caught) or not (
            abs(log_hr) < MAX_ESTIMABLE_LOG_HR):
        return None, None, None, None, "not estimable: complete separation of the arms"
    return (math.exp(log_hr), float(summary.loc["schedule", "exp(coef) lower 95%"]),
            float(summary.loc["schedule", "exp(coef) upper 95%"]), float(summary.loc["schedule", "p"]),
            None)


def compare_to_reference(outcomes: pl.DataFrame, reference: str) -> pl.DataFrame:
    """Each schedule against ``reference`` per (point, endpoint), as a two-arm trial would be
    analysed (arms taken as independent; the pairing is used by :func:`paired_differences`).

    Columns: hazard_ratio (schedule vs reference: < 1 means later events on the schedule)
    with its 95 % CI and Wald p from a Cox model with the schedule indicator as the only
    covariate (lifelines ``CoxPHFitter``, Efron's method for ties; null with ``note`` when
    one arm has no events or the arms are completely separated, where the partial
    likelihood has no finite maximum); logrank_statistic and logrank_p (lifelines
    ``logrank_test``, chi-square with 1 degree of freedom).
    """
    rows = []
    for key, frame in _groups(outcomes, ["point", "endpoint"]):
        reference_rows = frame.filter(pl.col("schedule") == reference)
        for schedule in frame["schedule"].unique(maintain_order=True):
            if schedule == reference:
                continue
            arm = frame.filter(pl.col("schedule") == schedule)
            days = np.concatenate([arm["days"].to_numpy(), reference_rows["days"].to_numpy()])
            event = np.concatenate([arm["event"].to_numpy(), reference_rows["event"].to_numpy()])
            treated = np.repeat([1, 0], [arm.height, reference_rows.height])
            hr, hr_lower, hr_upper, cox_p, note = _cox_hazard_ratio(days, event, treated)
            logrank = logrank_test(arm["days"].to_numpy(), reference_rows["days"].to_numpy(),
                                   arm["event"].to_numpy(), reference_rows["event"].to_numpy())
            rows.append({
                "point": key["point"], "schedule": schedule, "reference": reference,
                "endpoint": key["endpoint"], "hazard_ratio": hr, "hazard_ratio_lower": hr_lower,
                "hazard_ratio_upper": hr_upper, "cox_p": cox_p,
                "logrank_statistic": float(logrank.test_statistic), "logrank_p": float(logrank.p_value),
                "note": note,
            })
    return _frame(rows, outcomes, [*GROUP, "endpoint"], COMPARISON_COLUMNS)


def sign_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Distribution-free CI of a median from order statistics (the sign-test interval).

    [x_(k), x_(n+1-k)] of the sorted values, with the largest k for which
    P(Binomial(n, 1/2) <= k - 1) <= (1 - confidence) / 2; its exact coverage,
    1 - 2 P(Binomial(n, 1/2) <= k - 1) >= ``confidence``, is returned third.
    NaNs when n is too small for any such k (n < 6 at 95 %).
    """
    n = len(values)
    tail = stats.binom.cdf(np.arange(n + 1), n, 0.5)
    allowed = np.flatnonzero(tail <= (1 - confidence) / 2)
    if len(allowed) == 0:
        return math.nan, math.nan, math.nan
    k = int(allowed[-1]) + 1
    ordered = np.sort(values)
    return float(ordered[k - 1]), float(ordered[n - k]), float(1 - 2 * tail[k - 1])


def paired_differences(outcomes: pl.DataFrame, reference: str) -> pl.DataFrame:
    """Each schedule against ``reference`` on the same virtual patients, per (point, endpoint).

    For replicate i (the same day-0 tumour and random numbers in every schedule),
    d_i = T_i(schedule) - T_i(reference), where T is the *restricted* time: the event
    day, or the horizon without the event. Columns (days and months):

    * pairs: the number of replicates in both arms;
    * mean_difference with its 95 % t interval (mean +- t_{0.975, n-1} sd / sqrt(n)); the
      mean difference is also the difference in restricted mean time to the horizon;
    * median_difference with the distribution-free sign-test interval of :func:`sign_interval`
      (its exact coverage >= 95 % in median_ci_coverage);
    * wilcoxon_p: scipy's Wilcoxon signed-rank test of d (two-sided; zero differences are
      dropped, Wilcoxon's convention); 1 when every d is 0;
    * later_share, earlier_share, tied_share: shares of patients with d > 0 (the event comes
      later on the schedule: better), d < 0 and d = 0.

    Two identical schedules give d = 0 exactly for every patient.
    """
    keys = ["point", "replicate", "endpoint"]
    reference_days = outcomes.filter(pl.col("schedule") == reference).select(
        *keys, pl.col("days").alias("reference_days"))
    paired = outcomes.filter(pl.col("schedule") != reference).join(reference_days, on=keys, how="inner")
    rows = []
    for key, frame in _groups(paired, [*GROUP, "endpoint"]):
        difference = frame["days"].to_numpy() - frame["reference_days"].to_numpy()
        mean, mean_lower, mean_upper = _t_interval(difference)
        median_lower, median_upper, coverage = sign_interval(difference)
        if np.all(difference == 0):
            wilcoxon_p = 1.0
        else:
            wilcoxon_p = float(stats.wilcoxon(difference, zero_method="wilcox").pvalue)
        rows.append({
            **key, "reference": reference, "pairs": len(difference),
            "mean_difference_days": mean, "mean_difference_lower_days": mean_lower,
            "mean_difference_upper_days": mean_upper,
            "median_difference_days": float(np.median(difference)),
            "median_difference_lower_days": median_lower, "median_difference_upper_days": median_upper,
            "median_ci_coverage": coverage, "wilcoxon_p": wilcoxon_p,
            "later_share": float((difference > 0).mean()), "earlier_share": float((difference < 0).mean()),
            "tied_share": float((difference == 0).mean()),
        })
    return _with_months(_frame(rows, outcomes, [*GROUP, "endpoint"], PAIRED_COLUMNS),
                        [f"{stem}{bound}" for stem in ("mean_difference", "median_difference")
                         for bound in ("", "_lower", "_upper")])
