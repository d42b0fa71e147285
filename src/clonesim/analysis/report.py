"""``clonesim report``: survival statistics, paired comparisons, mechanisms, composition and
figures of a run directory, written as Parquet tables, PNG/SVG figures and ``report.md``.

The statistics are defined in :mod:`clonesim.analysis.survival` (time to event) and
:mod:`clonesim.analysis.outcomes` (mechanisms, emergence, drug exposure); clone composition
in :mod:`clonesim.analysis.composition`; figures in :mod:`clonesim.analysis.figures`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from clonesim.analysis import composition as comp
from clonesim.analysis import figures as fig
from clonesim.analysis.outcomes import drug_exposure, emergence_curves, emergence_summary, mechanism_mix
from clonesim.analysis.survival import (
    DAYS_PER_LANDMARK_YEAR,
    DAYS_PER_MONTH,
    ENDPOINT_LABELS,
    LANDMARK_YEARS,
    compare_to_reference,
    endpoint_outcomes,
    kaplan_meier,
    paired_differences,
)
from clonesim.batch.sweep import short_labels
from clonesim.config.errors import ClonesimError
from clonesim.io.run_dir import RUN_JSON, staged_directory

TABLES = ("patients", "emergence", "trajectories", "phase_changes")
#: Sweep points that get their own figures (the first ones, in point order); every point is
#: in the tables and the sweep summary figures.
MAX_POINTS_WITH_FIGURES = 12
REPORT_MARKDOWN = "report.md"
#: The one ``point`` of a sweep pooled into a virtual population (``report(..., pool=True)``).
POOLED_POINT = "pooled"


@dataclass
class Report:
    """What ``clonesim report`` computed (polars tables) and where it wrote it.

    Tables carry ``schedule`` (and, for sweeps, ``point`` and one column per swept path; a
    sweep pooled into one population, ``pool=True``, has neither and ``swept`` is empty);
    times are in days (``*_days``) and months (``*_months``, days / (365.25 / 12)); the
    time-to-event tables have an ``endpoint`` column (``ttp``, ``first_progression`` when a
    schedule changes line at progression, ``death``).

    * survival: patients, events, Kaplan-Meier median with 95 % CI, restricted mean time to
      the horizon with its t CI (:func:`~clonesim.analysis.survival.kaplan_meier`);
    * landmarks: event-free share at 1, 2, 3 years of 365 days with its 95 % band;
    * km_curves: S(t), its band and the number at risk at every event time;
    * comparisons: Cox hazard ratio and log-rank test against ``reference``;
    * paired: per-patient differences against ``reference``
      (:func:`~clonesim.analysis.survival.paired_differences`);
    * mechanisms: mechanism at progression, counts and shares;
    * emergence, emergence_curves: how often and when each mechanism arises, is established,
      dominates and is seen by ctDNA, and its ctDNA lead time before progression;
    * exposure: mean drug-days per drug and in total;
    * composition, burden: mean clone composition per recorded day over the patients with
      tumour, their number and their median (interquartile range) total cells.
    """

    out: Path
    reference: str
    survival: pl.DataFrame
    landmarks: pl.DataFrame
    km_curves: pl.DataFrame
    comparisons: pl.DataFrame
    paired: pl.DataFrame
    mechanisms: pl.DataFrame
    emergence: pl.DataFrame
    emergence_curves: pl.DataFrame
    exposure: pl.DataFrame
    composition: pl.DataFrame
    burden: pl.DataFrame
    figures: list[Path] = field(default_factory=list)
    markdown: Path | None = None
    seconds: float = 0.0
    swept: list[str] = field(default_factory=list)

    TABLE_NAMES = ("survival", "landmarks", "km_curves", "comparisons", "paired", "mechanisms",
                   "emergence", "emergence_curves", "exposure", "composition", "burden")

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """Every table by name (the Parquet files under ``tables/``)."""
        return {name: getattr(self, name) for name in self.TABLE_NAMES}


@dataclass(frozen=True)
class _Population:
    """A sweep read as one virtual population: patient ``point_index * replicates + replicate``."""

    points: int
    replicates: int  # per point
    varied: dict[str, list[Any]]  # each swept path's distinct values over the points, in point order

    @property
    def patients(self) -> int:
        return self.points * self.replicates


@dataclass
class _Run:
    """A run directory's tables, ready for analysis (a ``point`` column even without a sweep)."""

    path: Path
    info: dict[str, Any]
    patients: pl.DataFrame
    emergence: pl.DataFrame
    phase_changes: pl.DataFrame
    trajectories: pl.LazyFrame
    settings: pl.DataFrame  # point, swept columns, horizon_days, record_every_days
    swept: list[str]
    population: _Population | None = None  # set when a sweep is pooled (one point, no swept paths)

    @property
    def schedules(self) -> list[str]:
        return list(self.info["schedules"])

    @property
    def is_sweep(self) -> bool:
        if self.population is not None:
            return False
        return bool(self.swept) or len(self.info.get("points", [])) > 1


def _scan(run_dir: Path, table: str) -> pl.LazyFrame:
    if not (run_dir / table).is_dir():
        raise ClonesimError(f"{run_dir}: no table {table!r}; the run is incomplete")
    return pl.scan_parquet(run_dir / table / "**" / "*.parquet", hive_partitioning=True)


@contextmanager
def _reading(run_dir: Path, table: str) -> Iterator[None]:
    """Turn a failure to read a table's files (corrupt or truncated) into one line."""
    try:
        yield
    except (pl.exceptions.PolarsError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClonesimError(f"{run_dir}: cannot read table {table!r}: {first_line}") from None


def _collect(frame: pl.LazyFrame, run_dir: Path, table: str) -> pl.DataFrame:
    with _reading(run_dir, table):
        return frame.collect()


def _read_run(run_dir: Path) -> _Run:
    if not run_dir.is_dir():
        raise ClonesimError(f"{run_dir}: not a directory; give a run directory written by clonesim run")
    info_path = run_dir / RUN_JSON
    if not info_path.exists():
        raise ClonesimError(f"{run_dir}: no {RUN_JSON}; the run is missing or incomplete")
    try:
        info = json.loads(info_path.read_text())
        complete = bool(info["schedules"]) and info["config"]["time"]["horizon_days"] > 0
    except (ValueError, KeyError, TypeError):
        complete = False
    if not complete:
        raise ClonesimError(f"{info_path}: not a clonesim run.json (no schedules or horizon)")
    lazy = {name: _scan(run_dir, name) for name in TABLES}
    point_ids = [p["point"] for p in info.get("points") or [{"point": "base"}]]
    swept = list(dict.fromkeys(path for p in info.get("points", []) for path in p.get("overrides", {})))
    patients = _collect(lazy["patients"], run_dir, "patients")
    emergence = _collect(lazy["emergence"], run_dir, "emergence")
    phase_changes = _collect(lazy["phase_changes"], run_dir, "phase_changes")
    trajectories = lazy["trajectories"]
    if "point" not in patients.columns:
        point = pl.lit(point_ids[0], dtype=pl.Enum(point_ids[:1])).alias("point")
        patients, emergence, phase_changes = (
            f.with_columns(point) for f in (patients, emergence, phase_changes))
        trajectories = trajectories.with_columns(point)
    # Labels as Enums in run.json's order, however the files stored them (text or dictionary).
    order = {"point": pl.Enum(point_ids), "schedule": pl.Enum(list(info["schedules"]))}
    patients, emergence, phase_changes = (
        f.with_columns(pl.col(c).cast(dtype) for c, dtype in order.items() if f.schema[c] != dtype)
        for f in (patients, emergence, phase_changes))
    with _reading(run_dir, "trajectories"):
        schema = trajectories.collect_schema()
    trajectories = trajectories.with_columns(
        pl.col(c).cast(dtype) for c, dtype in order.items() if schema[c] != dtype)
    time_settings = info["config"]["time"]

    def setting(name: str, default: float) -> pl.Expr:
        """A time setting per point: its swept column, else the config's value."""
        path = f"time.{name}"
        value = pl.col(path) if path in swept else pl.lit(float(time_settings.get(name) or default))
        return value.cast(pl.Float64).alias(name)

    settings = patients.select("point", *swept).unique(subset="point").sort(pl.col("point").to_physical())
    settings = settings.with_columns(setting("horizon_days", 0.0), setting("record_every_days", 1.0))
    return _Run(run_dir, info, patients, emergence, phase_changes, trajectories, settings, swept)


def _pooled(run: _Run) -> _Run:
    """The sweep ``run`` as one population: replicate r of point i (its position in run.json's
    ``points``) becomes patient ``i * R + r`` (R replicates per point) in every table, every row's
    point is :data:`POOLED_POINT` and nothing is swept, so the report treats it as one run.
    Patient (i, r) is the same virtual patient in every schedule, so pairing stays valid."""
    points = run.info.get("points") or []
    if not run.is_sweep:
        raise ClonesimError(f"--pool: {run.path} is not a sweep; only a sweep's points can be pooled")
    timed = [path for path in run.swept if path.split(".")[0] == "time"]
    if timed:
        raise ClonesimError(f"--pool: the sweep varies {', '.join(timed)}; points with different "
                            "horizons or recording cannot be pooled")
    replicates = int(run.info["replicates"])
    largest = run.patients["replicate"].max()
    if largest is not None and largest >= replicates:
        raise ClonesimError(f"--pool: {run.path} has replicate {largest} but run.json says "
                            f"{replicates} replicates per point")
    top = len(points) * replicates - 1  # the largest pooled patient id
    pooled = pl.lit(POOLED_POINT, dtype=pl.Enum([POOLED_POINT])).alias("point")

    def renumber(schema: pl.Schema) -> list[pl.Expr]:
        """Patient ids in the replicate column's dtype when it holds them all, else Int64."""
        dtype = schema["replicate"]
        fits = dtype.is_integer() and pl.select(pl.lit(top).cast(dtype, strict=False)).item() is not None
        index = pl.col("point").to_physical().cast(pl.Int64)  # point: Enum in run.json's order
        patient = index * replicates + pl.col("replicate").cast(pl.Int64)
        return [patient.cast(dtype if fits else pl.Int64).alias("replicate"), pooled]

    def pool(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(renumber(frame.schema)).drop(run.swept, strict=False)

    with _reading(run.path, "trajectories"):
        schema = run.trajectories.collect_schema()
    trajectories = run.trajectories.with_columns(renumber(schema)).drop(run.swept, strict=False)
    settings = run.settings.head(1).select(pooled, "horizon_days", "record_every_days")  # no time.* swept
    # run.settings holds each point's value of every swept path (overridden or the config's).
    varied = {path: run.settings[path].unique(maintain_order=True).to_list() for path in run.swept}
    return _Run(run.path, run.info, pool(run.patients), pool(run.emergence), pool(run.phase_changes),
                trajectories, settings, [], _Population(len(points), replicates, varied))


def varied_parameters(settings: pl.DataFrame, swept: list[str]) -> dict[str, list[str]]:
    """The swept paths worth a sweep figure, each with the paths that vary together with it.

    A path with one value at every point (set, not varied) gets none; paths that split the
    points the same way (e.g. four initial fractions set to zero together) get one, under the
    first of them. ``settings`` has one row per point.
    """
    groups: dict[tuple[int, ...], list[str]] = {}
    for path in swept:
        column = settings[path]
        if column.null_count() == settings.height:
            continue
        # The partition of the points the path makes: each value numbered by first appearance.
        first: dict[Any, int] = {}
        partition = tuple(first.setdefault(value, len(first)) for value in column.to_list())
        if len(first) > 1:
            groups.setdefault(partition, []).append(path)
    return {paths[0]: paths[1:] for paths in groups.values()}


def _first_line_change(phase_changes: pl.DataFrame) -> pl.DataFrame | None:
    """(point, schedule, replicate, day) of the first progression that changed line, or None."""
    changes = phase_changes.filter(pl.col("reason").cast(pl.String) == "progression")
    if changes.height == 0:
        return None
    return changes.group_by("point", "schedule", "replicate").agg(pl.col("day").min())


def _by_point(frame: pl.DataFrame, point: str) -> pl.DataFrame:
    return frame.filter(pl.col("point") == point)


def report(run_dir: str | Path, reference: str | None = None, out: str | Path | None = None,
           replicates_shown: int = 3, pool: bool = False) -> Report:
    """Analyse a run directory and write its report (tables, figures, ``report.md``).

    Parameters
    ----------
    run_dir : a complete run directory (``clonesim run`` or ``clonesim sweep``).
    reference : the schedule every other is compared with (default: the first schedule).
    out : where to write (default ``RUN_DIR/report``); a previous report there is replaced.
    replicates_shown : individual patients drawn in the per-patient Muller figure (replicates
        0, 1, ...; the same virtual patient in every schedule).
    pool : treat a sweep as one virtual population: each point is a patient type and patient
        ``point_index * replicates + replicate`` is replicate r of point i (its position in
        run.json's ``points``), the same virtual patient in every schedule; the tables and
        figures are those of a single run of points x replicates patients per schedule.

    Raises
    ------
    ClonesimError : the run is missing or incomplete, the reference is unknown,
        ``out`` holds files that are not a report, or ``pool`` is asked of a run that is
        not a sweep or of a sweep that varies a ``time.*`` setting.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if replicates_shown < 0:
        raise ClonesimError(f"--replicates-shown: must be 0 or more (got {replicates_shown})")
    run = _read_run(run_dir)
    if pool:
        run = _pooled(run)
    reference = run.schedules[0] if reference is None else reference
    if reference not in run.schedules:
        raise ClonesimError(f"--reference: unknown schedule {reference!r}; known: {', '.join(run.schedules)}")
    out = Path(out) if out is not None else run_dir / "report"
    _check_out(out)

    patients = run.patients.join(run.settings.select("point", "horizon_days"), on="point")
    outcomes = endpoint_outcomes(patients, _first_line_change(run.phase_changes))
    survival, landmarks, km_curves = kaplan_meier(outcomes)
    comparisons = compare_to_reference(outcomes, reference)
    paired = paired_differences(outcomes, reference)
    drugs = list(run.info.get("drugs", []))
    with _reading(run_dir, "trajectories"):
        composition, burden = comp.mean_composition(run.trajectories, run.settings)
    result = Report(
        out=out, reference=reference, survival=survival, landmarks=landmarks, km_curves=km_curves,
        comparisons=comparisons, paired=paired, mechanisms=mechanism_mix(run.patients),
        emergence=emergence_summary(run.emergence, run.patients),
        emergence_curves=emergence_curves(run.emergence), exposure=drug_exposure(run.patients, drugs),
        composition=composition, burden=burden, swept=run.swept,
    )
    available = (run.population.patients if run.population is not None
                 else int(run.info.get("replicates", replicates_shown)))
    shown = list(range(min(replicates_shown, available)))
    with _reading(run_dir, "trajectories"):
        cells = comp.replicate_cells(run.trajectories, shown) if shown else None

    with staged_directory(out) as staging:
        figures = _write_figures(staging, run, result, outcomes, cells, shown)
        for name in Report.TABLE_NAMES:
            setattr(result, name, _with_point_columns(getattr(result, name), run))
        (staging / "tables").mkdir()
        for name, table in result.tables.items():
            table.write_parquet(staging / "tables" / f"{name}.parquet", compression="zstd")
        result.seconds = time.perf_counter() - started
        markdown = render_markdown(result, run, figures, staging)
        (staging / REPORT_MARKDOWN).write_text(markdown)
    result.figures = [out / path.relative_to(staging) for path in figures.paths()]
    result.markdown = out / REPORT_MARKDOWN
    return result


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / REPORT_MARKDOWN).exists())):
        raise ClonesimError(f"--out: {out} exists and is not a clonesim report; choose another directory")


def _last_change_day(patients: pl.DataFrame, horizon_days: float) -> float:
    """The horizon if any patient still has tumour there, else the last death or cure."""
    if patients.filter(~(pl.col("died") | pl.col("extinct"))).height:
        return horizon_days
    return float(patients.select(pl.max_horizontal("death_day", "extinction_day").max()).item())


def _with_point_columns(frame: pl.DataFrame, run: _Run) -> pl.DataFrame:
    """Without a sweep: drop ``point``. With one: put each point's swept values after it."""
    if "point" not in frame.columns:
        return frame
    if not run.is_sweep:
        return frame.drop("point")
    values = run.settings.select("point", *run.swept)
    rest = [c for c in frame.columns if c not in ("point", *run.swept)]
    return frame.drop([c for c in run.swept if c in frame.columns]).join(
        values, on="point", how="left", maintain_order="left").select("point", *run.swept, *rest)


def _file_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _point_title(run: _Run, point: str, labels: dict[str, str]) -> str:
    if not run.is_sweep:
        return ""
    row = run.settings.filter(pl.col("point") == point).row(0, named=True)
    values = ", ".join(f"{labels[p]} = {fig.format_value(row[p])}" for p in run.swept)
    return f"point {point}: {values}"


@dataclass
class _FigureList:
    """Figures written, each with its caption, in the order report.md shows them."""

    items: list[tuple[str, Path, str]] = field(default_factory=list)  # (key, png path, caption)

    def add(self, key: str, paths: list[Path], caption: str) -> None:
        self.items.append((key, paths[0], caption))

    def paths(self) -> list[Path]:
        return [p for _, png, _ in self.items for p in (png, png.with_suffix(".svg"))]


def _write_figures(staging: Path, run: _Run, result: Report, outcomes: pl.DataFrame,
                   cells: pl.DataFrame | None, shown: list[int]) -> _FigureList:
    figures = _FigureList()
    phenotypes = list(run.info["config"].get("phenotypes", {}))
    palette = fig.Palette.build(run.schedules, run.info.get("mechanisms", []), phenotypes)
    labels = short_labels(run.swept)
    genotypes = comp.rank_genotypes(result.composition)
    pooled = set(result.composition["genotype"].unique()) - set(genotypes)
    if pooled:
        genotypes.append(comp.OTHER)
    points = run.settings["point"].cast(pl.String).to_list()
    emergence = result.emergence_curves
    for number, point in enumerate(points):
        if number >= MAX_POINTS_WITH_FIGURES:
            break
        directory = staging / "figures" / (f"point_{_file_stem(point)}" if run.is_sweep else "")
        heading = _point_title(run, point, labels)
        prefix = f"{heading}\n" if heading else ""
        horizon = float(run.settings.filter(pl.col("point") == point)["horizon_days"][0])
        until = fig.display_days(horizon, _last_change_day(_by_point(run.patients, point), horizon))
        survival = _by_point(result.survival, point)
        for endpoint in outcomes["endpoint"].unique(maintain_order=True).cast(pl.String):
            chosen = pl.col("endpoint") == endpoint
            figure = fig.kaplan_meier_figure(
                _by_point(result.km_curves, point).filter(chosen), survival.filter(chosen),
                _by_point(outcomes, point).filter(chosen), endpoint, until, palette,
                f"{prefix}{ENDPOINT_LABELS[endpoint].capitalize()}: Kaplan-Meier estimate, 95 % band")
            figures.add(f"km_{endpoint}:{point}", fig.save(figure, directory, f"km_{endpoint}"),
                        _KM_CAPTION[endpoint] + _TIME_AXIS_NOTE)
        if len(run.schedules) > 1:
            figure = fig.comparison_figure(
                _by_point(result.comparisons, point), _by_point(result.paired, point), result.reference,
                palette, f"{prefix}Each schedule against {result.reference} (the same virtual patients)")
            figures.add(f"comparison:{point}", fig.save(figure, directory, "comparison"), _COMPARISON_CAPTION)
        mix = _by_point(result.mechanisms, point)
        if mix.height:
            figure = fig.mechanism_figure(mix, palette, f"{prefix}Mechanism at progression")
            figures.add(f"mechanisms:{point}", fig.save(figure, directory, "mechanisms"), _MECHANISM_CAPTION)
        curves = _by_point(emergence, point)
        if curves.height:
            figure = fig.emergence_figure(curves, until, palette, f"{prefix}Emergence of resistance")
            figures.add(f"emergence:{point}", fig.save(figure, directory, "emergence"),
                        _EMERGENCE_CAPTION + _TIME_AXIS_NOTE)
        if run.info.get("drugs"):
            figure = fig.exposure_figure(_by_point(result.exposure, point), survival, palette,
                                         f"{prefix}Benefit against drug exposure")
            figures.add(f"exposure:{point}", fig.save(figure, directory, "exposure"), _EXPOSURE_CAPTION)
        composition = comp.pool_genotypes(_by_point(result.composition, point), genotypes, "mean_fraction")
        counts = dict(_by_point(run.patients, point).group_by("schedule").len()
                      .select(pl.col("schedule").cast(pl.String), "len").iter_rows())
        figure = fig.muller_mean_figure(
            composition, _by_point(result.burden, point), counts, until, genotypes, phenotypes, palette,
            f"{prefix}Mean clone composition of the patients with tumour (Muller plot)")
        figures.add(f"muller_mean:{point}", fig.save(figure, directory, "muller_mean"), _MULLER_MEAN_CAPTION)
        if cells is not None:
            figure = fig.muller_replicates_figure(
                comp.pool_genotypes(_by_point(cells, point), genotypes, "cells"),
                _by_point(run.patients, point),
                _by_point(run.phase_changes, point).rename({"day": "phase_day"}).filter(
                    pl.col("replicate").is_in(shown)),
                shown, until, genotypes, phenotypes, palette,
                f"{prefix}Individual patients: clone composition and burden")
            figures.add(f"muller_patients:{point}", fig.save(figure, directory, "muller_patients"),
                        _MULLER_PATIENTS_CAPTION)
    if run.is_sweep and run.swept:
        summary = _with_point_columns(result.survival, run)
        paired = _with_point_columns(result.paired, run)
        varied = varied_parameters(run.settings, run.swept)
        for parameter, together in varied.items():
            others = [p for p in varied if p != parameter]
            with_note = f" (varied with {', '.join(labels[p] for p in together)})" if together else ""
            for endpoint, stem, heading in (("ttp", "sweep", "Time to progression"),
                                            ("death", "sweep_lethal", "Time to lethal burden")):
                figure = fig.sweep_figure(parameter, labels[parameter], summary, paired, others, labels,
                                          result.reference, palette,
                                          f"{heading} against {parameter}{with_note}", endpoint)
                figures.add(f"{stem}:{parameter}", fig.save(figure, staging / "figures",
                                                            f"{stem}_{_file_stem(parameter)}"),
                            _SWEEP_CAPTION)
    return figures


_TIME_AXIS_NOTE = (" When every patient has reached lethal burden or been cured before the horizon, "
                   "time axes end there (nothing changes afterwards).")
_KM_CAPTION = {
    "ttp": "Kaplan-Meier estimate of the share of patients free of progression (the schedule's "
           "progression: on its last line), 95 % pointwise band (log(-log) Greenwood), censored at the "
           "horizon; number at risk below.",
    "first_progression": "Time to the first progression, line changes included (end of line 1).",
    "death": "Time to lethal burden (`lethal_cells`), censored at the horizon; compares multi-line "
             "schedules fairly.",
}
_COMPARISON_CAPTION = (
    "Each schedule against the reference. Left: Cox hazard ratio (95 % CI; n.e. = not estimable, "
    "complete separation or no events) and log-rank p, arms analysed as independent. Middle: paired "
    "difference in restricted time (event day, or the horizon without the event) on the same virtual "
    "patients: mean with 95 % t CI (filled) and median with its sign-test CI (open). Right: shares of "
    "patients whose event came later, on the same day, or earlier than on the reference.")
_MECHANISM_CAPTION = ("Mechanism that drove each progression (the mechanism whose cells grew most from "
                      "the nadir): share of the progressions; above each bar, progressed / patients.")
_EMERGENCE_CAPTION = ("Cumulative share of patients in whom each mechanism is established "
                      "(`established_cells`) and detected by ctDNA, by month; a value at month 0 is "
                      "pre-existing.")
_EXPOSURE_CAPTION = ("Restricted mean time to progression and to lethal burden (area under the "
                     "Kaplan-Meier curve to the horizon; 95 % t CI) against mean total drug-days "
                     "(standard doses given, all drugs; 95 % t CI).")
_MULLER_MEAN_CAPTION = (
    "Mean clone composition: at each recorded day, each (genotype, phenotype)'s fraction of the tumour "
    "averaged over the patients who still have a tumour (neither cured nor stopped at lethal burden; "
    "each patient weighs the same; absent clones count 0) - so late in follow-up it describes the "
    "patients not yet cured or dead, a selected group; faded where fewer than 5 % of the patients "
    "remain. Clones nest inside the recorded genotype they most plausibly came from (the one with "
    "the most of their alterations); hatched: non-founder phenotypes (persisters); dotted: share of "
    "patients with tumour; black (right axis): their median total cells with the interquartile band."
    + _TIME_AXIS_NOTE)
_MULLER_PATIENTS_CAPTION = (
    "Individual virtual patients (columns: patients 0, 1, ...; the same patient down each column, so "
    "the schedules are compared on the same tumour) under each schedule (rows): clone fractions "
    "(left axis) and total cells (right axis, log); dashed: the schedule's progression; triangles: "
    "phase changes (a drug added or paused); cross: lethal burden; circle: cure." + _TIME_AXIS_NOTE)
_SWEEP_CAPTION = ("Median time to progression (`sweep_*`) or to lethal burden (`sweep_lethal_*`) "
                  "(95 % CI; hollow marker at the horizon when not reached) and the paired gain over "
                  "the reference (mean difference in restricted time, 95 % t CI) against a swept "
                  "parameter, one line per schedule.")


# ---------------------------------------------------------------------------------------------
# Text: report.md and the rows the CLI prints
# ---------------------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _fmt_interval(value: float | None, lower: float | None, upper: float | None, digits: int = 1,
                  missing: str = "NR") -> str:
    """``value [lower, upper]``; a missing value or upper bound is ``missing`` (not reached)."""
    if value is None:
        return missing
    high = missing if upper is None else f"{upper:.{digits}f}"
    return f"{value:.{digits}f} [{_fmt(lower, digits)}, {high}]"


def _fmt_share(value: float | None, lower: float | None = None, upper: float | None = None) -> str:
    if value is None:
        return "–"
    if lower is None or upper is None:
        return f"{value:.0%}"
    return f"{value:.0%} [{lower:.0%}, {upper:.0%}]"


def _fmt_ratio(value: float) -> str:
    """Two decimals between 0.1 and 100, else two significant digits (0.044, 1.03, 9.59)."""
    return f"{value:.2f}" if 0.1 <= value < 100 else f"{value:.2g}"


def _fmt_hr(row: dict | None) -> str:
    """Hazard ratio [95 % CI]; n.e. when not estimable."""
    if row is None:
        return "reference"
    if row["hazard_ratio"] is None:
        return "n.e."
    hr, low, high = (_fmt_ratio(row[k]) for k in ("hazard_ratio", "hazard_ratio_lower", "hazard_ratio_upper"))
    return f"{hr} [{low}, {high}]"


def endpoint_table(result: Report, endpoint: str, compact: bool = False) -> tuple[list[str], list[list[str]]]:
    """Headers and text rows of the per-schedule table of one endpoint, for report.md and,
    ``compact`` (share with the event, median, HR, log-rank p, paired mean difference and
    later/same/earlier shares only), for the terminal. Intervals are 95 % CIs in brackets;
    NR: not reached; n.e.: not estimable."""
    sweep_columns = ["point", *result.swept] if "point" in result.survival.columns else []
    keys = [*sweep_columns, "schedule"]
    if compact and result.swept:  # the swept values identify the point on a terminal
        sweep_columns = list(result.swept)
    labels = short_labels(result.swept)
    chosen = pl.col("endpoint") == endpoint
    landmarks = result.landmarks.filter(chosen)
    years = [] if compact else [y for y in LANDMARK_YEARS if y in set(landmarks["years"].to_list())]
    event_word = {"ttp": "progressed", "first_progression": "progressed", "death": "died"}[endpoint]
    interval = "" if compact else " [95% CI]"
    headers = [*(labels.get(c, c) for c in sweep_columns), "schedule", event_word, f"median{interval}",
               *(f"event-free at {y} y [95% CI]" for y in years)]
    headers += [] if compact else ["restricted mean"]
    headers += [f"HR{interval}", "log-rank p", f"paired Δ mean{interval}"]
    headers += [] if compact else ["paired Δ median [95% CI]", "Wilcoxon p"]
    headers += ["later/same/\nearlier" if compact else "later/same/earlier"]

    def find(frame: pl.DataFrame, match: dict) -> dict | None:
        found = frame.filter(*[pl.col(k) == v for k, v in match.items()])
        return found.row(0, named=True) if found.height else None

    rows = []
    for row in result.survival.filter(chosen).iter_rows(named=True):
        match = {k: row[k] for k in keys}
        comparison = find(result.comparisons.filter(chosen), match)
        pair = find(result.paired.filter(chosen), match)
        events = (f"{row['events'] / row['patients']:.0%}" if compact
                  else f"{row['events']}/{row['patients']}")
        cells = [fig.format_value(row[c]) for c in sweep_columns] + [str(row["schedule"]), events,
                 _fmt_interval(row["median_months"], row["median_lower_months"], row["median_upper_months"])]
        for year in years:
            mark = find(landmarks.filter(pl.col("years") == year), match)
            cells.append("–" if mark is None else _fmt_share(mark["free_share"], mark["free_lower"],
                                                             mark["free_upper"]))
        if not compact:
            cells.append(_fmt(row["restricted_mean_months"]))
        cells += [_fmt_hr(comparison),
                  "–" if comparison is None else fig.format_p(comparison["logrank_p"])]
        if pair is None:
            cells += ["reference"] + ([] if compact else ["reference", "–"]) + ["–"]
        else:
            cells.append(_fmt_interval(pair["mean_difference_months"], pair["mean_difference_lower_months"],
                                       pair["mean_difference_upper_months"], digits=2, missing="–"))
            if not compact:
                cells += [_fmt_interval(pair["median_difference_months"],
                                        pair["median_difference_lower_months"],
                                        pair["median_difference_upper_months"], digits=2, missing="–"),
                          fig.format_p(pair["wilcoxon_p"])]
            cells.append(f"{pair['later_share']:.0%}/{pair['tied_share']:.0%}/{pair['earlier_share']:.0%}")
        rows.append(cells)
    return headers, rows


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(escape(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _frame_table(frame: pl.DataFrame, formats: dict[str, Callable[[Any], str]]) -> str:
    headers = frame.columns
    rows = [[formats.get(c, _default_format)(v) for c, v in zip(headers, row, strict=True)]
            for row in frame.iter_rows()]
    return _markdown_table(headers, rows)


def _default_format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def render_markdown(result: Report, run: _Run, figures: _FigureList, root: Path) -> str:
    """The report as Markdown: methods, the tables, and every figure (relative links)."""
    info = run.info
    config = info["config"]
    horizon = float(config["time"]["horizon_days"])
    points = run.settings.height
    sweep_note = f" at each of {points} sweep points" if run.is_sweep else ""
    population = run.population
    patients_note = f"{info.get('replicates')} virtual patients per schedule{sweep_note}"
    if population is not None:
        patients_note = (f"one virtual population of {population.patients} patients per schedule "
                         f"(the sweep's {population.points} points × {population.replicates} replicates, "
                         "pooled)")
    lines = [
        f"# Report: {config.get('name', run.path.name)}",
        "",
        f"Run `{run.path}`: {patients_note}, "
        f"schedules {', '.join(f'`{s}`' for s in run.schedules)}; seed {info.get('seed')}; horizon "
        f"{horizon:g} days ({horizon / DAYS_PER_MONTH:.1f} months); clonesim {info.get('clonesim_version')}. "
        f"Reference schedule: **{result.reference}**. Report written in {result.seconds:.1f} s.",
        "",
        "## Methods",
        "",
        "* **Endpoints.** *Time to progression* (TTP) is the schedule's progression (`ttp_days`): for a "
        "schedule that changes line at progression (e.g. `sequential`) that is the progression on its "
        "last line; *time to first progression* (shown when such a schedule exists) includes line "
        "changes; *time to lethal burden* is `death_day`. Every patient is followed to the horizon "
        "unless it reaches lethal burden (after progressing) or is cured (it never progresses), so "
        "censoring happens only at the horizon.",
        "* **Kaplan-Meier** (lifelines `KaplanMeierFitter`): 95 % pointwise bands are lifelines' "
        "exponential Greenwood (log(-log)) intervals; the median is the first time S(t) ≤ 0.5 and its "
        "95 % CI the times at which the band crosses 0.5 (lifelines `median_survival_times` on the band; "
        "NR: not reached by the horizon). The share event-free at 1, 2, 3 years (of "
        f"{DAYS_PER_LANDMARK_YEAR:g} days) is S(t) with its band. The restricted mean is the area under "
        "S(t) to the horizon (= the mean of the event day, or the horizon without the event), 95 % t CI.",
        "* **Against the reference, as a trial would** (arms treated as independent): Cox hazard ratio "
        "of the schedule indicator (lifelines `CoxPHFitter`, Efron ties; < 1 = later events than on the "
        "reference) with 95 % CI; n.e. when one arm has no events or the arms are completely separated "
        "(every event of one arm before any of the other), where no finite estimate exists; log-rank "
        "test p (lifelines `logrank_test`).",
        "* **Paired, on the same virtual patients.** Patient k has the same day-0 tumour and random "
        "numbers in every schedule, so each schedule is compared with the reference patient by patient: "
        "d_k = T_k(schedule) − T_k(reference), T the restricted time (event day, or the horizon). Mean d "
        "with a 95 % t interval (= the difference in restricted mean time); median d with the "
        "distribution-free sign-test (order-statistic) interval of ≥ 95 % coverage; Wilcoxon "
        "signed-rank p (scipy, zero differences dropped; 1 when all d are 0); shares of patients with "
        "d > 0 (later), d = 0, d < 0. Identical schedules give d = 0 for every patient.",
        "* Months are days / (365.25 / 12).",
        "",
    ]
    if population is not None:
        lines[lines.index("## Methods") + 2:lines.index("## Methods") + 2] = _population_lines(population)
    for endpoint in result.survival["endpoint"].unique(maintain_order=True).cast(pl.String):
        lines += [f"## {ENDPOINT_LABELS[endpoint].capitalize()}", ""]
        headers, rows = endpoint_table(result, endpoint)
        lines += [_markdown_table(headers, rows), ""]
        lines += _figure_lines(figures, f"km_{endpoint}", root)
    lines += ["## Comparison with the reference", ""] + _figure_lines(figures, "comparison", root)
    lines += ["## Mechanisms at progression", "", _mechanism_markdown(result, run), ""]
    lines += _figure_lines(figures, "mechanisms", root)
    lines += ["## Emergence of resistance", "",
              "Shares of all patients; medians in days over the patients with the event; ctDNA lead: "
              "among the progressions this mechanism drove, the share seen by ctDNA on or before the "
              "progression day and the median days between detection and progression.", ""]
    emergence = result.emergence.drop("patients")
    lines += [_frame_table(emergence, _share_formats(emergence)), ""]
    lines += _figure_lines(figures, "emergence", root)
    lines += ["## Drug exposure", "", "Mean drug-days per patient (standard doses given).", ""]
    lines += [_frame_table(result.exposure, {}), ""]
    lines += _figure_lines(figures, "exposure", root)
    lines += ["## Clone composition", ""] + _figure_lines(figures, "muller_mean", root)
    lines += _figure_lines(figures, "muller_patients", root)
    if run.is_sweep:
        lines += ["## Sweep", ""]
        if points > MAX_POINTS_WITH_FIGURES:
            lines += [f"Per-point figures are drawn for the first {MAX_POINTS_WITH_FIGURES} of {points} "
                      "points; the tables cover every point.", ""]
        lines += _figure_lines(figures, "sweep", root)
    lines += ["## Files", "", "Tables (Parquet; all the numbers above, unrounded, and more columns): "
              + ", ".join(f"[`{name}`](tables/{name}.parquet)" for name in Report.TABLE_NAMES) + ".",
              "Every figure is also an SVG beside its PNG.", ""]
    return "\n".join(lines)


def _population_lines(population: _Population) -> list[str]:
    """The methods bullet of a pooled sweep: what the population is and what varies in it."""
    varied = []
    for path, values in population.varied.items():
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if values and len(numbers) == len(values):
            low, high = min(numbers), max(numbers)
            varied.append(f"  * `{path}`: min {fig.format_value(low)}, max {fig.format_value(high)} "
                          f"({len(values)} value{'s' if len(values) != 1 else ''})")
        else:
            varied.append(f"  * `{path}`: " + ", ".join(f"`{json.dumps(v)}`" for v in values))
    return [
        f"* **Virtual population (pooled sweep).** The report pools the sweep's {population.points} "
        f"points × {population.replicates} replicates into one population of {population.patients} "
        "virtual patients: each point is a patient type (its own parameter values) and replicate r "
        f"of the point at position i in `run.json`'s `points` is patient i × {population.replicates} "
        "+ r. Every table, figure and test treats them as one run; a patient is the same virtual "
        "patient in every schedule, so the paired comparisons hold. Varied across the population "
        "(each point's value; patients of one point share it):",
        *varied,
    ]


def _figure_lines(figures: _FigureList, kind: str, root: Path) -> list[str]:
    lines = []
    for key, png, caption in figures.items:
        if key.split(":", 1)[0] == kind:
            link = png.relative_to(root).as_posix()
            svg = Path(link).with_suffix(".svg").as_posix()
            lines += [f"![{Path(link).stem}]({link})", "", f"*{caption}* ([SVG]({svg}))", ""]
    return lines


def _share_formats(frame: pl.DataFrame) -> dict[str, Callable[[Any], str]]:
    return {c: (lambda v: "–" if v is None else f"{v:.0%}") for c in frame.columns if c.endswith("_share")}


def _mechanism_markdown(result: Report, run: _Run) -> str:
    mix = result.mechanisms
    keys = [c for c in mix.columns if c in ("point", *result.swept)] + ["schedule"]
    wide = mix.with_columns(
        pl.format("{} ({})", pl.col("count"),
                  pl.col("share_of_progressed").map_elements(lambda v: f"{v:.0%}", return_dtype=pl.String)
                  .fill_null("–")).alias("cell"),
        pl.col("mechanism").cast(pl.String),
    ).pivot(on="mechanism", index=[*keys, "progressed", "patients"], values="cell")
    return _frame_table(wide, {})

