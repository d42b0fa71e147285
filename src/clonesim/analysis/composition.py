"""Clone composition over time from the ``trajectories`` table, and the Muller-plot layout.

A *clone class* is a (genotype, phenotype) compartment. Trajectories are sparse (a
compartment with no cells has no row) and stop at a replicate's death or cure; both are
read as 0 cells. Aggregation runs lazily in polars, so a run of ~10^7 rows is reduced
to one row per (point, schedule, day, class) before anything else touches it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

FOUNDER = "founder"
OTHER = "other"
#: Genotypes drawn individually (besides the founder); rarer ones are pooled as "other".
MAX_GENOTYPES_SHOWN = 7


def on_record_grid(day: pl.Expr, every_days: pl.Expr, horizon_days: pl.Expr) -> pl.Expr:
    """True on the common recording grid: multiples of ``record_every_days`` and the horizon
    (a replicate that stops also records its stop day, which only it has)."""
    steps = day / every_days
    return ((steps - steps.round()).abs() < 1e-9) | (day == horizon_days)


def mean_composition(trajectories: pl.LazyFrame, settings: pl.DataFrame
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mean clone composition and burden per (point, schedule, day) on the recording grid.

    ``trajectories`` needs point, schedule, replicate, day, genotype, phenotype, cells;
    ``settings`` one row per point with record_every_days and horizon_days.

    Returns
    -------
    composition : mean_fraction of each (genotype, phenotype): the average over the
        replicates *with tumour* at that day (total cells > 0: neither cured nor stopped at
        lethal burden) of the class's fraction of the replicate's tumour (each replicate
        weighs the same; a class absent from a replicate counts as 0). Fractions of a day
        sum to 1.
    burden : with_tumour (the number of such replicates), and the median, lower and upper
        quartile of their total cells.
    """
    keys = ["point", "schedule", "replicate", "day"]
    grid = settings.select("record_every_days", "horizon_days").unique()
    if grid.height == 1:  # the usual case; a join on ~10^7 rows would cost more than the rest
        every, horizon = grid.row(0)
        rows = trajectories.filter(on_record_grid(pl.col("day"), pl.lit(every), pl.lit(horizon)))
    else:
        rows = trajectories.join(settings.lazy(), on="point", how="inner").filter(
            on_record_grid(pl.col("day"), pl.col("record_every_days"), pl.col("horizon_days")))
    rows = rows.select(*keys, "genotype", "phenotype", "cells")
    totals = rows.group_by(keys).agg(pl.col("cells").sum().alias("total")).filter(pl.col("total") > 0)
    by_class = ["point", "schedule", "day", "genotype", "phenotype"]
    fractions = rows.join(totals, on=keys).group_by(by_class).agg(
        (pl.col("cells") / pl.col("total")).sum().alias("fraction_sum"))
    burden = totals.group_by(["point", "schedule", "day"]).agg(
        pl.len().cast(pl.Int64).alias("with_tumour"),
        pl.col("total").median().alias("median_cells"),
        pl.col("total").quantile(0.25, interpolation="linear").alias("lower_quartile_cells"),
        pl.col("total").quantile(0.75, interpolation="linear").alias("upper_quartile_cells"),
    )
    fractions, burden = pl.collect_all([fractions, burden])
    order = [pl.col("point").to_physical(), pl.col("schedule").to_physical(), "day"]
    burden = burden.sort(order)
    composition = fractions.join(burden.select("point", "schedule", "day", "with_tumour"),
                                 on=["point", "schedule", "day"]).select(
        "point", "schedule", "day", pl.col("genotype").cast(pl.String), pl.col("phenotype").cast(pl.String),
        (pl.col("fraction_sum") / pl.col("with_tumour")).alias("mean_fraction"),
    ).sort([*order, "genotype", "phenotype"])
    return composition, burden


def replicate_cells(trajectories: pl.LazyFrame, replicates: Iterable[int]) -> pl.DataFrame:
    """All trajectory rows of the given replicates (every point and schedule), labels as text."""
    wanted = list(replicates)
    return trajectories.filter(pl.col("replicate").is_in(wanted)).select(
        "point", "schedule", "replicate", "day", pl.col("genotype").cast(pl.String),
        pl.col("phenotype").cast(pl.String), "cells",
    ).collect().sort([pl.col("point").to_physical(), pl.col("schedule").to_physical(), "replicate", "day"])


def rank_genotypes(composition: pl.DataFrame, limit: int = MAX_GENOTYPES_SHOWN) -> list[str]:
    """The founder, then the ``limit`` genotypes with the largest peak mean fraction anywhere
    in the run (every point, schedule and day), most abundant first."""
    peaks = composition.group_by("genotype", "day", "schedule", "point").agg(pl.col("mean_fraction").sum())
    ranked = peaks.group_by("genotype").agg(pl.col("mean_fraction").max()).sort(
        ["mean_fraction", "genotype"], descending=[True, False])
    others = [g for g in ranked["genotype"].to_list() if g != FOUNDER]
    return [FOUNDER, *others[:limit]]


def alterations(genotype: str) -> frozenset[str]:
    """The alterations a genotype label carries (``"A+B"``; none for the founder)."""
    return frozenset() if genotype == FOUNDER else frozenset(genotype.split("+"))


def genotype_parents(genotypes: list[str]) -> dict[str, str]:
    """The parent drawn for each genotype in a Muller plot: among ``genotypes``, the one
    carrying the most of its alterations and no others (a proper subset; the earlier in
    ``genotypes`` on ties), else the founder. The true ancestry is not recorded, so this is
    the most parsimonious nesting; ``other`` (pooled genotypes) hangs from the founder."""
    parents = {}
    for genotype in genotypes:
        if genotype == FOUNDER:
            continue
        own = alterations(genotype)
        candidates = [g for g in genotypes if g not in (genotype, OTHER) and alterations(g) < own]
        parents[genotype] = max(candidates, key=lambda g: (len(alterations(g)), -genotypes.index(g)),
                                default=FOUNDER)
    return parents


def pool_genotypes(frame: pl.DataFrame, shown: list[str], value: str) -> pl.DataFrame:
    """Sum ``value`` of genotypes not in ``shown`` into one ``other`` genotype."""
    return frame.with_columns(
        pl.when(pl.col("genotype").is_in(shown)).then(pl.col("genotype")).otherwise(pl.lit(OTHER))
        .alias("genotype")
    ).group_by([c for c in frame.columns if c != value], maintain_order=True).agg(pl.col(value).sum())


def muller_bands(fractions: dict[tuple[str, str], np.ndarray], genotypes: list[str],
                 phenotypes: list[str]) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """Nested Muller layout: (genotype, phenotype, lower, upper) bands stacked from 0.

    ``fractions`` maps (genotype, phenotype) to its fraction at each time (missing: 0);
    ``genotypes`` are drawn in that order (children of a parent in that order, nesting by
    :func:`genotype_parents`). Each genotype's band holds its descendants' bands in its
    middle, with half of its own cells below and half above (split by phenotype, mirrored
    so that the founder phenotype is outermost), so a clone visibly emerges from within its
    parent; a genotype without children is one band per phenotype. The bands tile
    [0, total] at every time.
    """
    length = len(next(iter(fractions.values()))) if fractions else 0
    zero = np.zeros(length)
    parents = genotype_parents(genotypes)
    children: dict[str, list[str]] = {g: [] for g in genotypes}
    for genotype in genotypes:
        if genotype != FOUNDER:
            children[parents[genotype]].append(genotype)
    own = {g: {p: fractions.get((g, p), zero) for p in phenotypes} for g in genotypes}

    bands: list[tuple[str, str, np.ndarray, np.ndarray]] = []

    def place(genotype: str, lower: np.ndarray) -> np.ndarray:
        level = lower
        if not children[genotype]:  # a leaf: one band per phenotype, no halves
            for phenotype in phenotypes:
                bands.append((genotype, phenotype, level, level + own[genotype][phenotype]))
                level = level + own[genotype][phenotype]
            return level
        for phenotype in phenotypes:
            half = own[genotype][phenotype] / 2
            bands.append((genotype, phenotype, level, level + half))
            level = level + half
        for child in children[genotype]:
            level = place(child, level)
        for phenotype in reversed(phenotypes):
            half = own[genotype][phenotype] / 2
            bands.append((genotype, phenotype, level, level + half))
            level = level + half
        return level

    if FOUNDER in genotypes:
        place(FOUNDER, zero)
    return bands
