"""A readable account of a compiled model and what it implies (``clonesim validate``)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from clonesim.model.analytic import (
    expected_preexisting_mutants,
    extinction_probability_per_cell,
    long_run_phenotype_fractions,
)
from clonesim.model.compiled import CompiledModel
from clonesim.model.regimens import net_growth_table, regimens


def _doubling(rate: float) -> str:
    if rate > 0:
        return f"{math.log(2) / rate:.1f}"
    if rate < 0:
        return f"halves in {math.log(2) / -rate:.1f}"
    return "-"


def describe_model(model: CompiledModel) -> Group:
    """Tables of the resolved model and its analytic expectations (untreated)."""
    k = model.kernel
    parts: list = []
    start = (
        f"{model.initial_cells:.3g} cells at day 0"
        if model.initial_cells
        else f"grown untreated from 1 cell to {model.grow_from_single_cell_to:.3g} cells"
    )
    lethal = f"{k.lethal_cells:.3g}"
    capacity = "none" if math.isinf(k.carrying_capacity_cells) else f"{k.carrying_capacity_cells:.3g}"
    parts.append(Text.from_markup(
        f"[bold]{escape(model.name)}[/]: horizon {model.horizon_days:g} days in {model.num_steps} steps of "
        f"{model.dt_days:g} day(s); trajectories every {model.record_every_steps * model.dt_days:g} "
        f"days\ntumour: {start}; lethal at {lethal} cells; carrying capacity {capacity}; "
        f"pathways {', '.join(model.pathway_names)}"
    ))

    extinction = extinction_probability_per_cell(model)
    phenotypes = Table(title="Phenotypes (per day, untreated, founder genotype)")
    for column in ("phenotype", "birth", "death", "net growth b(1-U)-d", "doubling (days)",
                   "mutation x", "P(lineage dies out)"):
        phenotypes.add_column(column, justify="right" if column != "phenotype" else "left")
    total_u = float(k.alteration_mutation_rate_per_division.sum())
    for p, name in enumerate(model.phenotype_names):
        u = total_u * k.phenotype_mutation_rate_multiplier[p]
        net = k.phenotype_birth_rate_per_day[p] * (1 - u) - k.phenotype_death_rate_per_day[p]
        phenotypes.add_row(
            Text(name),
            f"{k.phenotype_birth_rate_per_day[p]:.4g}",
            f"{k.phenotype_death_rate_per_day[p]:.4g}",
            f"{net:+.4g}", _doubling(net), f"{k.phenotype_mutation_rate_multiplier[p]:g}",
            f"{extinction[p]:.4f}",
        )
    parts.append(phenotypes)

    if model.num_phenotypes > 1:
        switching = Table(title="Switching (per cell per day)")
        for column in ("from", "to", "rate", "drug-induced", "scaled by signal"):
            switching.add_column(column)
        for i, source in enumerate(model.phenotype_names):
            for j, target in enumerate(model.phenotype_names):
                if i != j and (k.switch_rate_per_day[i, j] or k.switch_drug_induced_rate_per_day[i, j]):
                    switching.add_row(
                        Text(source), Text(target), f"{k.switch_rate_per_day[i, j]:.3g}",
                        f"{k.switch_drug_induced_rate_per_day[i, j]:.3g}",
                        "yes" if k.switch_scaled_by_signal[i, j] else "no",
                    )
        parts.append(switching)
        growth, fractions = long_run_phenotype_fractions(model)
        shares = ", ".join(f"{n} {f:.4g}" for n, f in zip(model.phenotype_names, fractions, strict=True))
        parts.append(Text(f"long run (untreated): growth {growth:+.4g}/day; composition {shares}"))

    if model.num_alterations:
        alterations = Table(title="Alterations: expected at day 0")
        for column in ("alteration", "rate / division", "adds pathway", "expected cells",
                       "P(present)"):
            alterations.add_column(column)
        founder_b = k.phenotype_birth_rate_per_day[0]
        founder_d = k.phenotype_death_rate_per_day[0]
        for a, name in enumerate(model.alteration_names):
            u = k.alteration_mutation_rate_per_division[a] * k.phenotype_mutation_rate_multiplier[0]
            mask = int(k.alteration_pathway_mask[a])
            pathway = next((p for r, p in enumerate(model.pathway_names) if mask >> r & 1), "-")
            if model.grow_from_single_cell_to:
                mean, present = expected_preexisting_mutants(
                    founder_b, founder_d, u, model.grow_from_single_cell_to
                )
                note = ("Luria-Delbrück, founder phenotype", mean, present)
            else:
                mean = model.initial_cells * model.initial_alteration_fraction[a]
                note = ("configured fraction", mean, 1.0 if mean >= 1 else mean)
            alterations.add_row(Text(name), f"{u:.3g}", Text(pathway), f"{note[1]:.4g}", f"{note[2]:.4f}")
        parts.append(alterations)
        if model.grow_from_single_cell_to:
            parts.append(Text("(expected pre-existing mutants: deterministic-growth approximation, "
                              "neutral mutants, founder phenotype only)", style="dim"))
    if model.drug_names:
        parts.append(_net_growth_under_regimens(model))
    return Group(*parts)


def _net_growth_under_regimens(model: CompiledModel) -> Group:
    """Net growth b (1 - U) - d per day of each (genotype, phenotype) under each regimen.

    Regimens are columns R1, R2, ... (named in a legend) so the table fits a terminal.
    """
    table = net_growth_table(model)
    labels = list(regimens(model))
    out = Table(title="Net growth per day under each regimen (steady-state exposure)")
    out.add_column("genotype / phenotype", no_wrap=True)
    for r in range(len(labels)):
        out.add_column(f"R{r + 1}", justify="right")
    for (genotype, phenotype), rows in table.group_by(["genotype", "phenotype"],
                                                      maintain_order=True):
        by_regimen = dict(zip(rows["regimen"], rows["net_growth_rate_per_day"], strict=True))
        cells = [Text(f"{by_regimen[label]:+.3f}", style="green" if by_regimen[label] < 0 else "red")
                 for label in labels]
        out.add_row(Text(f"{genotype} / {phenotype}"), *cells)
    legend = "; ".join(f"R{r + 1} = {label}" for r, label in enumerate(labels))
    return Group(out, Text(legend + " (negative, green: the compartment shrinks)", style="dim"))
