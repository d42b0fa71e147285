"""Net growth of every (genotype, phenotype) under every regimen of a config (DESIGN §1.2).

A *regimen* is a set of drugs given together in some phase of some schedule. Its
exposures are the dosing patterns' steady-state averages (dose / every_days in
standard-regimen units; 1.0 for the standard daily dose). The table is exact
for constant exposure and is what ``clonesim validate`` prints.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from clonesim.engine.kernel import extra_death_rates, rates_under_signal
from clonesim.model.compiled import CompiledModel
from clonesim.model.pharmacodynamics import genotype_signal

NO_DRUG = "none"


def regimens(model: CompiledModel) -> dict[str, np.ndarray]:
    """Label -> steady-state exposure (D,) of every regimen the schedules use.

    Labels join drug names with '+' ("none" for no drug, first); a dose other than
    one standard dose a day reads "osimertinib 3/3d" (3 doses every 3 days), and a
    pattern with holidays adds "21on/7off" (its exposure is that of the on-days).
    """
    tables = model.schedules
    found: dict[str, np.ndarray] = {NO_DRUG: np.zeros(len(model.drug_names))}
    for phase in range(tables.dose.shape[0]):
        given = tables.dose[phase] > 0
        names = []
        for d in np.flatnonzero(given):
            dose, every = tables.dose[phase, d], tables.every_days[phase, d]
            name = model.drug_names[d]
            if dose != 1.0 or every != 1.0:
                name += f" {dose:g}/{every:g}d"
            if np.isfinite(tables.on_days[phase, d]):
                name += f" {tables.on_days[phase, d]:g}on/{tables.off_days[phase, d]:g}off"
            names.append(name)
        label = "+".join(names) or NO_DRUG
        found.setdefault(label, np.where(given, tables.dose[phase] / tables.every_days[phase], 0.0))
    return found


def genotypes_of_interest(model: CompiledModel) -> list[int]:
    """The founder and each single alteration, as bit masks."""
    return [0] + [1 << a for a in range(model.num_alterations)]


def net_growth_table(model: CompiledModel, genotypes: list[int] | None = None) -> pl.DataFrame:
    """One row per (regimen, genotype, phenotype): signal s_g, b, d and net growth b (1 - U) - d.

    Rates per day at constant steady-state exposure, with no logistic competition;
    b (1 - U) - d is the growth rate of the compartment itself (mutant daughters
    leave it).
    """
    k = model.kernel
    genotypes = genotypes_of_interest(model) if genotypes is None else genotypes
    rows = []
    extra = np.zeros(model.num_phenotypes)
    rates = k.alteration_mutation_rate_per_division
    for label, exposure in regimens(model).items():
        extra_death_rates(k, exposure, extra)
        for g in genotypes:
            signal = genotype_signal(
                np.int64(g), exposure, k.driver_pathway_mask, k.alteration_pathway_mask,
                k.alteration_ic50_fold, k.drug_target_ic50, k.drug_target_hill,
                k.drug_target_max_inhibition,
            )
            lacking = float(sum(rates[a] for a in range(len(rates)) if not g >> a & 1))
            for p, phenotype in enumerate(model.phenotype_names):
                birth, death, mutation = rates_under_signal(k, p, signal, lacking, extra[p], 1.0)
                rows.append((label, model.genotype_label(g), phenotype, signal, birth, death,
                             birth * (1.0 - mutation) - death))
    return pl.DataFrame(
        rows, orient="row",
        schema=["regimen", "genotype", "phenotype", "signal", "birth_rate_per_day",
                "death_rate_per_day", "net_growth_rate_per_day"],
    )
