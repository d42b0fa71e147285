"""The config contract (DESIGN §9) as strict pydantic models.

Pydantic checks types, ranges and unknown keys; :mod:`clonesim.config.semantics`
checks what depends on several fields (names that must exist, sums of
fractions, limits that keep int64 counts exact). Units are in the key names:
rates per day, times in days, sizes in cells.
"""

from __future__ import annotations

import math
import numbers
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_serializer,
)


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


def _only_bool(value: Any) -> Any:
    # Pydantic's lax mode reads "yes", "on", "1" and 1 as true: only true/false are booleans.
    if not isinstance(value, bool):
        raise ValueError("must be a valid boolean: true or false")
    return value


Real = Annotated[float, BeforeValidator(_not_bool)]
Flag = Annotated[bool, BeforeValidator(_only_bool)]
Whole = Annotated[int, BeforeValidator(_not_bool)]
Finite = Annotated[Real, AfterValidator(_finite)]
RatePerDay = Annotated[Real, Field(ge=0.0), AfterValidator(_finite)]
Probability = Annotated[Real, Field(ge=0.0, le=1.0)]
PositiveDays = Annotated[Real, Field(gt=0.0), AfterValidator(_finite)]
CellCount = Annotated[Real, Field(ge=1.0), AfterValidator(_finite), AfterValidator(_whole)]
Positive = Annotated[Real, Field(gt=0.0), AfterValidator(_finite)]


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
    scaled_by_signal: Flag | None = None


class AlterationConfig(Strict):
    mutation_rate_per_division: Probability
    adds_pathway: str | None = None
    ic50_fold: dict[str, Annotated[Real, Field(gt=0.0), AfterValidator(_finite)]] = Field(
        default_factory=dict
    )


class TargetConfig(Strict):
    """Hill inhibition of one pathway by one drug: h(c) = Imax x^n / (1 + x^n), x = c / IC50."""

    ic50: Positive  # exposure (standard-regimen units) giving half the maximal inhibition
    hill: Positive = 1.0
    max_inhibition: Probability = 1.0


class DrugConfig(Strict):
    """A drug: the pathways it inhibits, its half-life, and any direct killing of a phenotype."""

    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    # One-compartment elimination; without it the exposure is constant while the drug is given.
    half_life_days: PositiveDays | None = None
    # Extra death of a phenotype at the standard exposure 1.0 (e.g. an AXL inhibitor on
    # persisters), scaled by the Hill curve H(c) = c^n / (IC50^n + c^n) as H(c) / H(1).
    extra_death_per_day: dict[str, RatePerDay] = Field(default_factory=dict)
    extra_death_ic50: Positive = 0.1
    extra_death_hill: Positive = 1.0


def _drug_entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class DoseConfig(Strict):
    """How one drug is given in a phase: ``dose`` (standard doses) every ``every_days``.

    With ``on_days``/``off_days`` the pattern repeats: doses for on_days, then a
    holiday of off_days. Times count from the start of the phase.
    """

    name: str
    dose: Positive = 1.0
    every_days: PositiveDays = 1.0
    on_days: PositiveDays | None = None
    off_days: PositiveDays | None = None


TRIGGER_KINDS = ("progression", "day", "after_days", "ctdna_detects", "burden_below",
                 "burden_above")


_TRIGGER_FORMS = ("use progression, {day: D}, {after_days: D}, {ctdna_detects: ALTERATION}, "
                  "{burden_below: X} or {burden_above: X}")


def _trigger_entry(value: Any) -> Any:
    """Accept the contract's forms only: ``progression`` or a one-key mapping such as ``{day: 70}``.

    The trigger's value is checked here, so that a wrong type gets a message that names
    the trigger rather than pydantic's internal validators.
    """
    if isinstance(value, TriggerConfig):
        return value
    if isinstance(value, str):
        if value != "progression":
            raise ValueError(f"unknown trigger {value!r}; {_TRIGGER_FORMS}")
        return {"kind": "progression"}
    if not isinstance(value, dict):
        raise ValueError(
            "a trigger must be progression or a valid dictionary with one key, like {day: 70} "
            f"(got {value!r})"
        )
    if "kind" in value and set(value) <= {"kind", "value"}:
        raise ValueError(
            "write a trigger as progression or a one-key mapping like {day: 70}, "
            "not {kind: ..., value: ...}"
        )
    if len(value) != 1:
        raise ValueError(f"a trigger has exactly one key (got {sorted(map(str, value))})")
    (kind, argument), = value.items()
    if kind == "progression":
        raise ValueError(
            "progression takes no value: write the bare word, until: progression "
            f"(got {{progression: {argument!r}}})"
        )
    if kind not in TRIGGER_KINDS[1:]:
        raise ValueError(f"unknown trigger {kind!r}; known: {list(TRIGGER_KINDS)}")
    if kind == "ctdna_detects":
        if not isinstance(argument, str):
            raise ValueError(f"ctdna_detects needs an alteration name (got {argument!r})")
        return {"kind": kind, "value": argument}
    if isinstance(argument, bool):
        raise ValueError(f"{kind} needs a number, not true/false (got {argument!r})")
    if not isinstance(argument, numbers.Real):
        raise ValueError(f"{kind} needs a number (got {argument!r})")
    return {"kind": kind, "value": float(argument)}


class TriggerConfig(Strict):
    """What ends a phase (DESIGN §3); written back in the contract's one-key form."""

    kind: Literal["progression", "day", "after_days", "ctdna_detects", "burden_below",
                  "burden_above"]
    value: Annotated[float, BeforeValidator(_not_bool)] | str | None = None

    @model_serializer
    def _contract_form(self) -> Any:
        return self.kind if self.kind == "progression" else {self.kind: self.value}


class PhaseConfig(Strict):
    drugs: list[Annotated[DoseConfig, BeforeValidator(_drug_entry)]]
    until: Annotated[TriggerConfig, BeforeValidator(_trigger_entry)] | None = None


def _schedule_entry(value: Any) -> Any:
    return {"phases": value} if isinstance(value, list) else value


class ScheduleConfig(Strict):
    """Phases run in order, each until its trigger; ``repeat`` cycles back to the first."""

    phases: Annotated[list[PhaseConfig], Field(min_length=1)]
    repeat: Flag = False
    # Progression is judged against the nadir (RECIST) or against the day-0 burden
    # (the convention of adaptive-therapy studies, where holidays regrow the tumour on purpose).
    progression_reference: Literal["nadir", "baseline"] = "nadir"


class CtdnaConfig(Strict):
    every_days: PositiveDays = 56.0
    detection_limit_vaf: Probability = 0.001


class EventsConfig(Strict):
    progression_diameter_increase: Annotated[Real, Field(gt=0.0), AfterValidator(_finite)] = 0.2
    partial_response_diameter_decrease: Annotated[Real, Field(gt=0.0, lt=1.0)] = 0.3
    established_cells: CellCount = 1.0e4
    # RECIST: stable disease needs this long without progression; earlier progression is PD.
    stable_disease_min_days: Annotated[Real, Field(ge=0.0), AfterValidator(_finite)] = 42.0
    ctdna: CtdnaConfig = Field(default_factory=CtdnaConfig)


class EngineConfig(Strict):
    """Engine settings that do not change the model."""

    # Largest number of (genotype, phenotype) compartments one replicate may hold.
    max_compartments: Annotated[Whole, Field(ge=1, le=1_000_000)] = 4096
    # Replicates simulated per block: peak memory grows with this, not with the run.
    block_replicates: Annotated[Whole, Field(ge=1, le=1_000_000)] = 1024
    # Sweeps (`clonesim sweep`): replicate-schedule pairs per shard, the unit of work that
    # writes its own files; a shard runs in blocks and packs small points together.
    shard_replicates: Annotated[Whole, Field(ge=1, le=100_000_000)] = 4096


class RangeConfig(Strict):
    """A range sampled by the Latin hypercube: uniform on [low, high], or log-uniform."""

    low: Finite
    high: Finite
    scale: Literal["linear", "log"] = "linear"


def _range_entry(value: Any) -> Any:
    # [low, high] is shorthand for {low, high} on a linear scale.
    if isinstance(value, list) and len(value) == 2:
        return {"low": value[0], "high": value[1]}
    return value


class LatinHypercubeConfig(Strict):
    samples: Annotated[Whole, Field(ge=1, le=1_000_000)]
    seed: Annotated[Whole, Field(ge=0, lt=2**63)] = 0
    ranges: Annotated[dict[str, Annotated[RangeConfig, BeforeValidator(_range_entry)]],
                      Field(min_length=1)]


class SweepConfig(Strict):
    """Parameter points: an explicit list, a full grid and/or a Latin hypercube.

    Keys are dotted paths of config values (``tumor.initial_fractions.MET_amp``,
    ``schedules.pulsed.phases.0.drugs.0.dose``). The points are the list's, then
    the grid's (in row-major order of its keys), then the hypercube's samples.
    """

    points: list[dict[str, Any]] = Field(default_factory=list)
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    latin_hypercube: LatinHypercubeConfig | None = None


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
    drugs: dict[str, DrugConfig] = Field(default_factory=dict)
    # No schedules: one schedule, "untreated", with no drugs.
    schedules: dict[str, Annotated[ScheduleConfig, BeforeValidator(_schedule_entry)]] = Field(
        default_factory=dict
    )
    events: EventsConfig = Field(default_factory=EventsConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    # Parameter points to run (clonesim.batch.sweep); none = one point, the config itself.
    sweep: SweepConfig | None = None

    @property
    def founder_phenotype(self) -> str:
        return next(iter(self.phenotypes))
