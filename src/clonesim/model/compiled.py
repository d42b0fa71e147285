"""Compile a validated config into the flat arrays the kernels take (DESIGN §1, §8).

A compartment is a (genotype, phenotype) pair. A genotype is an int64 bit mask
over the configured alterations (bit ``a`` set = alteration ``a`` present; 0 is
the founder). Rates that depend only on the phenotype are ``phenotype_*``
arrays of shape (P,); switching rates are (P, P) matrices indexed
``[from, to]``. Drug and pathway tables are already here so that a schedule
phase only changes an exposure vector, never the tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from clonesim.config.schema import Config


class KernelModel(NamedTuple):
    """The numeric model as numba sees it: arrays and scalars only (no names, no I/O).

    Shapes: P phenotypes, A alterations, R pathways.
    """

    phenotype_birth_rate_per_day: np.ndarray  # (P,) b_p
    phenotype_death_rate_per_day: np.ndarray  # (P,) d_p
    phenotype_drug_kill_rate_per_day: np.ndarray  # (P,) k_p
    phenotype_cytostatic_share: np.ndarray  # (P,) phi_p
    phenotype_mutation_rate_multiplier: np.ndarray  # (P,) m_p
    switch_rate_per_day: np.ndarray  # (P, P) sigma_0[from, to]
    switch_drug_induced_rate_per_day: np.ndarray  # (P, P) sigma_drug[from, to]
    switch_scaled_by_signal: np.ndarray  # (P, P) 1.0 where sigma_0 is multiplied by s_g
    alteration_mutation_rate_per_division: np.ndarray  # (A,) u_a
    alteration_pathway_mask: np.ndarray  # (A,) int64 bit mask of pathways the alteration adds
    driver_pathway_mask: int  # int64 bit mask of the founder's driver pathway
    carrying_capacity_cells: float  # K; +inf when there is none
    lethal_cells: int  # the replicate dies (and stops) when its burden reaches this
    has_switching: bool  # any phenotype switching at all (skips the switching sub-steps if not)


@dataclass(frozen=True)
class CompiledModel:
    """A config resolved into names, kernel tables and the initial-tumour recipe."""

    name: str
    phenotype_names: tuple[str, ...]
    alteration_names: tuple[str, ...]
    pathway_names: tuple[str, ...]
    kernel: KernelModel
    initial_cells: int  # 0 when the tumour is grown from one cell
    grow_from_single_cell_to: int  # 0 when initial_cells is given
    initial_phenotype_fraction: np.ndarray  # (P,) share of initial cells per phenotype (founder: 0)
    initial_alteration_fraction: np.ndarray  # (A,) share of initial cells carrying each alteration
    horizon_days: float
    dt_days: float
    record_every_steps: int
    detection_cells: float
    established_cells: float
    max_compartments: int
    block_replicates: int

    @property
    def num_phenotypes(self) -> int:
        return len(self.phenotype_names)

    @property
    def num_alterations(self) -> int:
        return len(self.alteration_names)

    @property
    def num_steps(self) -> int:
        """Steps of length dt_days to the horizon (the last one may be shorter)."""
        return max(1, math.ceil(self.horizon_days / self.dt_days - 1e-9))

    @property
    def mechanism_names(self) -> tuple[str, ...]:
        """Resistance mechanisms tracked in ``emergence``: alterations, then non-founder phenotypes."""
        return self.alteration_names + self.phenotype_names[1:]

    def genotype_label(self, genotype: int) -> str:
        """``founder`` or the alterations present joined by ``+`` in config order."""
        names = [n for a, n in enumerate(self.alteration_names) if genotype >> a & 1]
        return "+".join(names) if names else "founder"


def compile_model(config: Config) -> CompiledModel:
    """Flatten a validated :class:`Config` into a :class:`CompiledModel`."""
    phenotypes = list(config.phenotypes)
    alterations = list(config.alterations)
    pathways = list(config.pathways) or [config.driver_pathway]
    founder = phenotypes[0]
    num_p = len(phenotypes)

    def column(field: str) -> np.ndarray:
        return np.array([getattr(p, field) for p in config.phenotypes.values()], dtype=np.float64)

    switch_rate = np.zeros((num_p, num_p))
    switch_drug = np.zeros((num_p, num_p))
    switch_scaled = np.zeros((num_p, num_p))
    for switch in config.switching:
        i, j = phenotypes.index(switch.from_), phenotypes.index(switch.to)
        switch_rate[i, j] = switch.rate_per_day
        switch_drug[i, j] = switch.drug_induced_rate_per_day
        scaled = switch.scaled_by_signal if switch.scaled_by_signal is not None else switch.to == founder
        switch_scaled[i, j] = 1.0 if scaled else 0.0

    pathway_mask = np.array(
        [
            (1 << pathways.index(a.adds_pathway)) if a.adds_pathway is not None else 0
            for a in config.alterations.values()
        ],
        dtype=np.int64,
    )
    tumor = config.tumor
    capacity = tumor.carrying_capacity_cells
    kernel = KernelModel(
        phenotype_birth_rate_per_day=column("birth_rate_per_day"),
        phenotype_death_rate_per_day=column("death_rate_per_day"),
        phenotype_drug_kill_rate_per_day=column("drug_kill_rate_per_day"),
        phenotype_cytostatic_share=column("cytostatic_share"),
        phenotype_mutation_rate_multiplier=column("mutation_rate_multiplier"),
        switch_rate_per_day=switch_rate,
        switch_drug_induced_rate_per_day=switch_drug,
        switch_scaled_by_signal=switch_scaled,
        alteration_mutation_rate_per_division=np.array(
            [a.mutation_rate_per_division for a in config.alterations.values()], dtype=np.float64
        ),
        alteration_pathway_mask=pathway_mask,
        driver_pathway_mask=1 << pathways.index(config.driver_pathway),
        carrying_capacity_cells=float(capacity) if capacity is not None else math.inf,
        lethal_cells=int(tumor.lethal_cells),
        has_switching=bool((switch_rate > 0).any() or (switch_drug > 0).any()),
    )
    fractions = tumor.initial_fractions
    return CompiledModel(
        name=config.name,
        phenotype_names=tuple(phenotypes),
        alteration_names=tuple(alterations),
        pathway_names=tuple(pathways),
        kernel=kernel,
        initial_cells=int(tumor.initial_cells or 0),
        grow_from_single_cell_to=int(tumor.grow_from_single_cell_to or 0),
        initial_phenotype_fraction=np.array([fractions.get(p, 0.0) for p in phenotypes]),
        initial_alteration_fraction=np.array([fractions.get(a, 0.0) for a in alterations]),
        horizon_days=config.time.horizon_days,
        dt_days=config.time.dt_days,
        record_every_steps=max(1, round(config.time.record_every_days / config.time.dt_days)),
        detection_cells=tumor.detection_cells,
        established_cells=config.events.established_cells,
        max_compartments=config.engine.max_compartments,
        block_replicates=config.engine.block_replicates,
    )
