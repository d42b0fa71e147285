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
    # Pharmacology (D drugs): Hill tables per (drug, pathway); 0 max inhibition = no effect.
    drug_target_ic50: np.ndarray  # (D, R) exposure units (1.0 = standard regimen)
    drug_target_hill: np.ndarray  # (D, R)
    drug_target_max_inhibition: np.ndarray  # (D, R) in [0, 1]
    alteration_ic50_fold: np.ndarray  # (A, D) IC50 multiplier of drug d in cells with a; 1 = none
    drug_elimination_per_day: np.ndarray  # (D,) k = ln 2 / half-life; 0 = no PK (constant)
    drug_extra_death_per_day: np.ndarray  # (D, P) extra death at exposure 1.0
    drug_extra_death_ic50: np.ndarray  # (D,)
    drug_extra_death_hill: np.ndarray  # (D,)
    # Events (DESIGN §4).
    detection_cells: float  # imaging limit (cells)
    progression_burden_factor: float  # (1 + diameter increase)^3: burden ratio over the nadir
    response_burden_factor: float  # (1 - diameter decrease)^3: burden ratio for PR
    established_cells: float
    stable_disease_min_days: float
    ctdna_every_days: float  # liquid biopsy every k days, from day 0
    ctdna_detection_vaf: float  # detected when VAF = carriers / (2 N) reaches this


# Trigger codes of KernelSchedules.trigger_kind (0: the phase runs to the horizon).
TRIGGER_NONE = 0
TRIGGER_DAY = 1
TRIGGER_AFTER_DAYS = 2
TRIGGER_PROGRESSION = 3
TRIGGER_CTDNA = 4
TRIGGER_BURDEN_BELOW = 5
TRIGGER_BURDEN_ABOVE = 6
#: Reasons in the phase_changes table, indexed by trigger code (0 = the schedule starts).
PHASE_CHANGE_REASONS = ("start", "day", "after_days", "progression", "ctdna_detects",
                        "burden_below", "burden_above")
_TRIGGER_CODES = {name: code for code, name in enumerate(PHASE_CHANGE_REASONS) if code}


class KernelSchedules(NamedTuple):
    """All schedules of a config as flat tables (S schedules, F phases in all, D drugs).

    Phases of schedule s are rows ``first_phase[s] : first_phase[s] + num_phases[s]``.
    Drug d is given in phase f when ``dose[f, d] > 0``: ``dose`` standard doses at
    phase-relative times 0, every, 2 every, ... that fall in the first ``on_days``
    of each cycle of ``on_days + off_days`` (on_days = inf: no holiday).
    """

    first_phase: np.ndarray  # (S,) int64
    num_phases: np.ndarray  # (S,) int64
    repeat: np.ndarray  # (S,) int64, 1 = cycle back to the first phase
    baseline_reference: np.ndarray  # (S,) int64, 1 = progression against day-0 burden
    trigger_kind: np.ndarray  # (F,) int64 TRIGGER_*
    trigger_value: np.ndarray  # (F,) day, days, burden ratio, or alteration index
    dose: np.ndarray  # (F, D) standard doses; 0 = not given
    every_days: np.ndarray  # (F, D)
    on_days: np.ndarray  # (F, D) inf = no holidays
    off_days: np.ndarray  # (F, D)


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
    max_compartments: int
    block_replicates: int
    shard_replicates: int
    drug_names: tuple[str, ...] = ()
    schedule_names: tuple[str, ...] = ("untreated",)
    schedules: KernelSchedules | None = None
    phase_labels: tuple[tuple[str, ...], ...] = ()  # per schedule, per phase: "drug+drug" or "none"

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
    drugs = list(config.drugs)
    num_d, num_r, num_a = len(drugs), len(pathways), len(alterations)
    ic50 = np.ones((num_d, num_r))
    hill = np.ones((num_d, num_r))
    max_inhibition = np.zeros((num_d, num_r))
    extra_death = np.zeros((num_d, num_p))
    for d, drug in enumerate(config.drugs.values()):
        for pathway, target in drug.targets.items():
            r = pathways.index(pathway)
            ic50[d, r], hill[d, r], max_inhibition[d, r] = (
                target.ic50, target.hill, target.max_inhibition
            )
        for phenotype, rate in drug.extra_death_per_day.items():
            extra_death[d, phenotypes.index(phenotype)] = rate
    fold = np.ones((num_a, num_d))
    for a, alteration in enumerate(config.alterations.values()):
        for drug_name, value in alteration.ic50_fold.items():
            fold[a, drugs.index(drug_name)] = value
    events = config.events
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
        drug_target_ic50=ic50,
        drug_target_hill=hill,
        drug_target_max_inhibition=max_inhibition,
        alteration_ic50_fold=fold,
        drug_elimination_per_day=np.array(
            [math.log(2.0) / d.half_life_days if d.half_life_days else 0.0
             for d in config.drugs.values()], dtype=np.float64,
        ),
        drug_extra_death_per_day=extra_death,
        drug_extra_death_ic50=np.array([d.extra_death_ic50 for d in config.drugs.values()],
                                       dtype=np.float64),
        drug_extra_death_hill=np.array([d.extra_death_hill for d in config.drugs.values()],
                                       dtype=np.float64),
        detection_cells=float(tumor.detection_cells),
        progression_burden_factor=(1.0 + events.progression_diameter_increase) ** 3,
        response_burden_factor=(1.0 - events.partial_response_diameter_decrease) ** 3,
        established_cells=float(events.established_cells),
        stable_disease_min_days=float(events.stable_disease_min_days),
        ctdna_every_days=float(events.ctdna.every_days),
        ctdna_detection_vaf=float(events.ctdna.detection_limit_vaf),
    )
    schedule_names, schedules, phase_labels = compile_schedules(config)
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
        max_compartments=config.engine.max_compartments,
        block_replicates=config.engine.block_replicates,
        shard_replicates=config.engine.shard_replicates,
        drug_names=tuple(drugs),
        schedule_names=schedule_names,
        schedules=schedules,
        phase_labels=phase_labels,
    )


UNTREATED = "untreated"


def compile_schedules(config: Config) -> tuple[tuple[str, ...], KernelSchedules, tuple]:
    """Flatten the schedules (or the implicit ``untreated`` one) into :class:`KernelSchedules`."""
    drugs = list(config.drugs)
    alterations = list(config.alterations)
    if config.schedules:
        named = {name: (s.phases, s.repeat, s.progression_reference == "baseline")
                 for name, s in config.schedules.items()}
    else:
        named = {UNTREATED: ([], False, False)}
    rows: list[tuple[int, float, list]] = []
    first, count, repeat, baseline, labels = [], [], [], [], []
    for phases, repeats, from_baseline in named.values():
        first.append(len(rows))
        repeat.append(int(repeats))
        baseline.append(int(from_baseline))
        phase_list = list(phases) or [None]
        count.append(len(phase_list))
        schedule_labels = []
        for phase in phase_list:
            doses = [] if phase is None else phase.drugs
            trigger = None if phase is None else phase.until
            if trigger is None:
                code, value = TRIGGER_NONE, 0.0
            else:
                code = _TRIGGER_CODES[trigger.kind]
                value = (float(alterations.index(trigger.value)) if code == TRIGGER_CTDNA
                         else float(trigger.value or 0.0))
            rows.append((code, value, doses))
            schedule_labels.append("+".join(d.name for d in doses) or "none")
        labels.append(tuple(schedule_labels))
    num_f, num_d = len(rows), len(drugs)
    dose = np.zeros((num_f, num_d))
    every = np.ones((num_f, num_d))
    on = np.full((num_f, num_d), math.inf)
    off = np.zeros((num_f, num_d))
    for f, (_, _, doses) in enumerate(rows):
        for entry in doses:
            d = drugs.index(entry.name)
            dose[f, d], every[f, d] = entry.dose, entry.every_days
            if entry.on_days is not None:
                on[f, d], off[f, d] = entry.on_days, entry.off_days
    tables = KernelSchedules(
        first_phase=np.array(first, np.int64),
        num_phases=np.array(count, np.int64),
        repeat=np.array(repeat, np.int64),
        baseline_reference=np.array(baseline, np.int64),
        trigger_kind=np.array([r[0] for r in rows], np.int64),
        trigger_value=np.array([r[1] for r in rows], np.float64),
        dose=dose,
        every_days=every,
        on_days=on,
        off_days=off,
    )
    return tuple(named), tables, tuple(labels)
