"""Turn kernel block results into the contract's tables (DESIGN §5, §9) as polars DataFrames."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from clonesim.engine import kernel
from clonesim.engine.runner import BlockResult
from clonesim.model.compiled import CompiledModel

UNTREATED = "untreated"
TABLE_NAMES = ("patients", "emergence", "trajectories")


def _constant(label: str, size: int) -> pl.Series:
    """A column holding one label ``size`` times, as a one-value Enum."""
    return pl.Series([label], dtype=pl.Enum([label])).new_from_index(0, size)


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
            "schedule": _constant(schedule, size),
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
            "schedule": _constant(schedule, size * count),
            "replicate": np.repeat(block.replicates, count),
            "mechanism": pl.Series(list(mechanisms) * size, dtype=pl.Enum(list(mechanisms))),
            "cells_at_start": block.mechanism_cells_at_start.reshape(-1),
            "arise_day": _nullable(block.mechanism_arise_day.reshape(-1)),
        }
    )


def _labels(codes: np.ndarray, dictionary: list[str]) -> pl.Series:
    """A categorical column from integer codes into ``dictionary`` (no per-row strings)."""
    array = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(dictionary))
    return pl.from_arrow(array)


def trajectories_table(model: CompiledModel, block: BlockResult,
                       schedule: str = UNTREATED) -> pl.DataFrame:
    """Long format: cells per (schedule, replicate, day, genotype, phenotype)."""
    width = block.traj_day.shape[1]
    valid = np.arange(width)[None, :] < block.trajectory_rows[:, None]
    unique_codes, inverse = np.unique(block.traj_genotype[valid], return_inverse=True)
    genotype = _labels(inverse, [model.genotype_label(int(code)) for code in unique_codes])
    phenotype = _labels(block.traj_phenotype[valid], list(model.phenotype_names))
    size = int(valid.sum())
    return pl.DataFrame(
        {
            "schedule": _constant(schedule, size),
            "replicate": np.broadcast_to(block.replicates[:, None], valid.shape)[valid],
            "day": block.traj_day[valid],
            "genotype": genotype.cast(pl.Categorical),
            "phenotype": phenotype.cast(pl.String).cast(pl.Enum(list(model.phenotype_names))),
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
