"""Turn kernel block results into the contract's tables (DESIGN §5, §9) as polars DataFrames."""

from __future__ import annotations

import numpy as np
import polars as pl

from clonesim.engine import kernel
from clonesim.engine.runner import BlockResult
from clonesim.model.compiled import CompiledModel

UNTREATED = "untreated"
TABLE_NAMES = ("patients", "emergence", "trajectories")


def _nullable(values: np.ndarray) -> pl.Series:
    """float64 with NaN -> null (the contract's 'null when it never happened')."""
    return pl.Series(values, dtype=pl.Float64).fill_nan(None)


def patients_table(model: CompiledModel, block: BlockResult, seed: int,
                   schedule: str = UNTREATED) -> pl.DataFrame:
    """One row per (schedule, replicate): outcome and stop days (days, cells)."""
    extinct = block.status == kernel.STATUS_EXTINCT
    died = block.status == kernel.STATUS_DIED
    size = len(block.replicates)
    return pl.DataFrame(
        {
            "schedule": pl.Series([schedule] * size, dtype=pl.Enum([schedule])),
            "replicate": block.replicates,
            "seed": np.full(size, seed, np.int64),
            "days_to_diagnosis": _nullable(block.days_to_diagnosis),
            "extinct": extinct,
            "extinction_day": _nullable(np.where(extinct, block.stop_day, np.nan)),
            "died": died,
            "death_day": _nullable(np.where(died, block.stop_day, np.nan)),
            "final_cells": block.final_cells,
        }
    )


def emergence_table(model: CompiledModel, block: BlockResult,
                    schedule: str = UNTREATED) -> pl.DataFrame:
    """One row per (schedule, replicate, mechanism): cells at day 0 and first arising (days)."""
    mechanisms = model.mechanism_names
    size = len(block.replicates)
    count = len(mechanisms)
    return pl.DataFrame(
        {
            "schedule": pl.Series([schedule] * (size * count), dtype=pl.Enum([schedule])),
            "replicate": np.repeat(block.replicates, count),
            "mechanism": pl.Series(list(mechanisms) * size, dtype=pl.Enum(list(mechanisms))),
            "cells_at_start": block.mechanism_cells_at_start.reshape(-1),
            "arise_day": _nullable(block.mechanism_arise_day.reshape(-1)),
        }
    )


def trajectories_table(model: CompiledModel, block: BlockResult,
                       schedule: str = UNTREATED) -> pl.DataFrame:
    """Long format: cells per (schedule, replicate, day, genotype, phenotype)."""
    width = block.traj_day.shape[1]
    valid = np.arange(width)[None, :] < block.trajectory_rows[:, None]
    genotype_codes = block.traj_genotype[valid]
    unique_codes, inverse = np.unique(genotype_codes, return_inverse=True)
    labels = [model.genotype_label(int(code)) for code in unique_codes]
    size = int(valid.sum())
    return pl.DataFrame(
        {
            "schedule": pl.Series([schedule] * size, dtype=pl.Enum([schedule])),
            "replicate": np.broadcast_to(block.replicates[:, None], valid.shape)[valid],
            "day": block.traj_day[valid],
            "genotype": pl.Series(np.asarray(labels, dtype=object)[inverse] if size else [],
                                  dtype=pl.String).cast(pl.Categorical),
            "phenotype": pl.Series(
                np.asarray(model.phenotype_names, dtype=object)[block.traj_phenotype[valid]]
                if size else [],
                dtype=pl.String,
            ).cast(pl.Enum(list(model.phenotype_names))),
            "cells": block.traj_cells[valid],
        }
    )


def block_tables(model: CompiledModel, block: BlockResult, seed: int,
                 schedule: str = UNTREATED) -> dict[str, pl.DataFrame]:
    return {
        "patients": patients_table(model, block, seed, schedule),
        "emergence": emergence_table(model, block, schedule),
        "trajectories": trajectories_table(model, block, schedule),
    }
