"""The config contract (DESIGN §9) as strict pydantic models.

Pydantic checks types, ranges and unknown keys; :mod:`clonesim.config.semantics`
checks what depends on several fields (names that must exist, sums of
fractions, limits that keep int64 counts exact). Units are in the key names:
rates per day, times in days, sizes in cells.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _not_bool(value: Any) -> Any:
    # Pydantic's lax mode reads true/false as 1/0, and YAML 1.1 also reads yes/no/on/off
    # as booleans: a boolean where a number belongs is a mistake, not a number.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _whole(value: float) -> float:
    if value != math.floor(value):
        raise ValueError("must be a whole number of cells")
    return value


Real = Annotated[float, BeforeValidator(_not_bool)]
Whole = Annotated[int, BeforeValidator(_not_bool)]
Finite = Annotated[Real, AfterValidator(_finite)]
RatePerDay = Annotated[Real, Field(ge=0.0), AfterValidator(_finite)]
Probability = Annotated[Real, Field(ge=0.0, le=1.0)]
PositiveDays = Annotated[Real, Field(gt=0.0), AfterValidator(_finite)]
CellCount = Annotated[Real, Field(ge=1.0), AfterValidator(_finite), AfterValidator(_whole)]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TimeConfig(Strict):
    horizon_days: PositiveDays
    dt_days: PositiveDays = 1.0
    record_every_days: PositiveDays = 7.0


class TumorConfig(Strict):
    initial_cells: CellCount | None = None
    grow_from_single_cell_to: CellCount | None = None
    initial_fractions: dict[str, Probability] = Field(default_factory=dict)
    carrying_capacity_cells: Annotated[Real, Field(gt=0.0), AfterValidator(_finite)] | None = None
    lethal_cells: CellCount = 1.0e12
    detection_cells: CellCount = 1.0e8


class PhenotypeConfig(Strict):
    birth_rate_per_day: RatePerDay
    death_rate_per_day: RatePerDay
    drug_kill_rate_per_day: RatePerDay = 0.0
    cytostatic_share: Probability = 0.0
    mutation_rate_multiplier: Annotated[Real, Field(ge=0.0), AfterValidator(_finite)] = 1.0


class SwitchConfig(Strict):
    from_: str = Field(alias="from")
    to: str
    rate_per_day: RatePerDay = 0.0
    drug_induced_rate_per_day: RatePerDay = 0.0
    # Whether rate_per_day is multiplied by the signal s_g (DESIGN §1.3: reversion
    # to the founder phenotype happens off drug). Default: true when `to` is the
    # founder phenotype, false otherwise.
    scaled_by_signal: bool | None = None


class AlterationConfig(Strict):
    mutation_rate_per_division: Probability
    adds_pathway: str | None = None
    ic50_fold: dict[str, Annotated[Real, Field(gt=0.0), AfterValidator(_finite)]] = Field(
        default_factory=dict
    )


class CtdnaConfig(Strict):
    every_days: PositiveDays = 56.0
    detection_limit_vaf: Probability = 0.001


class EventsConfig(Strict):
    progression_diameter_increase: Annotated[Real, Field(gt=0.0), AfterValidator(_finite)] = 0.2
    partial_response_diameter_decrease: Annotated[Real, Field(gt=0.0, lt=1.0)] = 0.3
    established_cells: CellCount = 1.0e4
    ctdna: CtdnaConfig = Field(default_factory=CtdnaConfig)


class EngineConfig(Strict):
    """Engine settings that do not change the model."""

    # Largest number of (genotype, phenotype) compartments one replicate may hold.
    max_compartments: Annotated[Whole, Field(ge=1, le=1_000_000)] = 4096
    # Replicates simulated per block: peak memory grows with this, not with the run.
    block_replicates: Annotated[Whole, Field(ge=1, le=1_000_000)] = 1024


class Config(Strict):
    name: Annotated[str, Field(min_length=1)]
    seed: Annotated[Whole, Field(ge=0, lt=2**63)] | None = None
    replicates: Annotated[Whole, Field(ge=1)] = 1000
    time: TimeConfig
    tumor: TumorConfig
    phenotypes: Annotated[dict[str, PhenotypeConfig], Field(min_length=1)]
    switching: list[SwitchConfig] = Field(default_factory=list)
    driver_pathway: Annotated[str, Field(min_length=1)] = "driver"
    pathways: list[str] = Field(default_factory=list)
    alterations: dict[str, AlterationConfig] = Field(default_factory=dict)
    # Drugs and schedules are part of the contract; the therapy engine that runs
    # them is not in this version, so semantics rejects them with a clear line.
    drugs: dict[str, Any] | None = None
    schedules: dict[str, Any] | None = None
    events: EventsConfig = Field(default_factory=EventsConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)

    @property
    def founder_phenotype(self) -> str:
        return next(iter(self.phenotypes))
