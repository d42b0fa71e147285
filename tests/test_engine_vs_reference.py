"""The clone engine against the exact Gillespie reference engine, in distribution.

Small populations with growth, death, mutation (incl. adaptive mutability) and
phenotype switching; the two engines use independent code and independent
random streams. Each comparison is a two-sample test (KS, chi-square on
binned counts, or a z-test on a proportion or a mean) at P_THRESHOLD.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from clonesim.engine import kernel, runner
from clonesim.engine.reference import simulate_reference_many
from clonesim.model import compile_model
from clonesim.model.examples import MIXED_SMALL_TUMOUR

from conftest import P_THRESHOLD, Z_TOLERANCE, cells_at, make_config

REPLICATES = 3000



def _reference_cells(results, day_index: int, phenotype=None, has_bit=None) -> np.ndarray:
    out = []
    for result in results:
        total = 0
        for (genotype, pheno), count in result.snapshots[day_index].items():
            if phenotype is not None and pheno != phenotype:
                continue
            if has_bit is not None and not (genotype >> has_bit) & 1:
                continue
            total += count
        out.append(total)
    return np.array(out)


def _engine_cells(block, day, phenotype=None, has_bit=None) -> np.ndarray:
    if has_bit is None:
        return cells_at(block, day, phenotype=phenotype)
    out = np.zeros(len(block.replicates), np.int64)
    for i in range(len(block.replicates)):
        rows = block.trajectory_rows[i]
        keep = np.isclose(block.traj_day[i, :rows], day)
        keep &= (block.traj_genotype[i, :rows] >> has_bit) & 1 == 1
        if phenotype is not None:
            keep &= block.traj_phenotype[i, :rows] == phenotype
        out[i] = block.traj_cells[i, :rows][keep].sum()
    return out


def _same_distribution(engine: np.ndarray, reference: np.ndarray, what: str) -> None:
    """Two-sample chi-square on quantile bins of the pooled sample (discrete-safe)."""
    pooled = np.concatenate([engine, reference])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, 11)))
    if len(edges) < 3:
        edges = np.unique(pooled)
        edges = np.append(edges, edges[-1] + 1)
    a, _ = np.histogram(engine, bins=edges)
    b, _ = np.histogram(reference, bins=edges)
    keep = (a + b) > 0
    table = np.vstack([a[keep], b[keep]])
    if table.shape[1] < 2:
        assert np.array_equal(engine, reference), what
        return
    p = stats.chi2_contingency(table).pvalue
    assert p > P_THRESHOLD, f"{what}: chi-square p = {p:.2e}; bins {edges}; {table}"


def _same_proportion(engine: np.ndarray, reference: np.ndarray, what: str) -> None:
    p1, p2 = engine.mean(), reference.mean()
    pooled = (engine.sum() + reference.sum()) / (len(engine) + len(reference))
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / len(engine) + 1 / len(reference)))
    assert abs(p1 - p2) <= Z_TOLERANCE * se, f"{what}: {p1:.4f} vs {p2:.4f} (se {se:.4f})"


def _same_mean(engine: np.ndarray, reference: np.ndarray, what: str) -> None:
    p = stats.ttest_ind(engine, reference, equal_var=False).pvalue
    assert p > P_THRESHOLD, f"{what}: means {engine.mean():.4g} vs {reference.mean():.4g}, p = {p:.2e}"


@pytest.fixture(scope="module")
def mixed():
    model = compile_model(make_config(MIXED_SMALL_TUMOUR))
    block = runner.run_block(model, 31, range(REPLICATES))
    reference = simulate_reference_many(model, 32, REPLICATES, record_days=[0.0, 3.0, 6.0])
    return model, block, reference


@pytest.mark.parametrize("day_index,day", [(1, 3.0), (2, 6.0)])
def test_total_and_phenotype_counts_agree(mixed, day_index, day):
    _, block, reference = mixed
    _same_distribution(_engine_cells(block, day), _reference_cells(reference, day_index),
                       f"total cells at day {day}")
    for phenotype in (0, 1):
        _same_distribution(
            _engine_cells(block, day, phenotype=phenotype),
            _reference_cells(reference, day_index, phenotype=phenotype),
            f"phenotype {phenotype} cells at day {day}",
        )


@pytest.mark.parametrize("bit", [0, 1])
def test_mutant_emergence_agrees(mixed, bit):
    _, block, reference = mixed
    engine = _engine_cells(block, 6.0, has_bit=bit)
    exact = _reference_cells(reference, 2, has_bit=bit)
    _same_proportion(engine > 0, exact > 0, f"P(alteration {bit} present at day 6)")
    _same_mean(engine, exact, f"cells with alteration {bit} at day 6")
    arisen_engine = ~np.isnan(block.mechanism_arise_day[:, bit])
    arisen_exact = np.array([not math.isnan(r.arise_day[bit]) for r in reference])
    _same_proportion(arisen_engine, arisen_exact, f"P(alteration {bit} ever arose)")
    _same_distribution(block.mechanism_arise_day[arisen_engine, bit],
                       np.array([r.arise_day[bit] for r in reference])[arisen_exact],
                       f"arise day of alteration {bit}")


def test_extinction_agrees(mixed):
    _, block, reference = mixed
    _same_proportion(block.status == kernel.STATUS_EXTINCT,
                     np.array([r.status == "extinct" for r in reference]), "P(extinct by day 6)")


def test_pregrowth_with_death_and_mutation_agrees():
    """Grow from one cell to 300 (b=1, d=0.3, u=3e-3): time taken and pre-existing mutants."""
    config = make_config(
        time={"horizon_days": 0.5, "dt_days": 0.1, "record_every_days": 0.5},
        tumor={"grow_from_single_cell_to": 300},
        phenotypes={"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.3}},
        alterations={"R": {"mutation_rate_per_division": 3e-3}},
    )
    model = compile_model(config)
    block = runner.run_block(model, 41, range(REPLICATES))
    reference = simulate_reference_many(model, 42, REPLICATES, record_days=[0.0])
    exact_days = np.array([r.days_to_diagnosis for r in reference])
    assert stats.ks_2samp(block.days_to_diagnosis, exact_days).pvalue > P_THRESHOLD
    engine_mutants = block.mechanism_cells_at_start[:, 0]
    exact_mutants = np.array([r.cells_at_start[0] for r in reference])
    _same_proportion(engine_mutants > 0, exact_mutants > 0, "P(pre-existing mutant)")
    _same_distribution(engine_mutants, exact_mutants, "pre-existing mutant cells")
    present = engine_mutants > 0
    exact_present = exact_mutants > 0
    _same_distribution(block.mechanism_arise_day[present, 0],
                       np.array([r.arise_day[0] for r in reference])[exact_present],
                       "arise day of pre-existing mutants")


def test_logistic_growth_to_lethal_agrees():
    """Carrying capacity slows growth; some replicates reach lethal_cells, some die out."""
    config = make_config(
        time={"horizon_days": 20.0, "dt_days": 0.1, "record_every_days": 5.0},
        tumor={"initial_cells": 3, "carrying_capacity_cells": 400, "lethal_cells": 250},
        phenotypes={"s": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.4}},
    )
    model = compile_model(config)
    block = runner.run_block(model, 51, range(REPLICATES))
    reference = simulate_reference_many(model, 52, REPLICATES, record_days=[20.0])
    died = block.status == kernel.STATUS_DIED
    exact_died = np.array([r.status == "died" for r in reference])
    _same_proportion(died, exact_died, "P(reached lethal)")
    exact_days = np.array([r.stop_day for r in reference])
    assert stats.ks_2samp(block.stop_day[died], exact_days[exact_died]).pvalue > P_THRESHOLD
