"""Cross-field checks of a config: every failure names its key and the bad value."""

from __future__ import annotations

import math
import re

from clonesim.config.errors import ConfigError
from clonesim.config.schema import Config

#: Largest burden a replicate may reach: keeps every int64 count exact (2**63 ~ 9.2e18)
#: even after one step of growth by the largest allowed factor (exp(5) ~ 148).
MAX_LETHAL_CELLS = 1.0e15
#: Largest expected growth factor exponent b*dt in one step (see MAX_LETHAL_CELLS).
MAX_BIRTH_TIMES_DT = 5.0
#: Alterations are bits of an int64 genotype mask.
MAX_ALTERATIONS = 62
RESERVED_NAMES = {"founder"}
#: Names of phenotypes, alterations and pathways: safe in labels joined by '+', in
#: dotted config paths and in hive partition paths.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")


def check_semantics(config: Config) -> Config:
    """Raise :class:`ConfigError` on the first cross-field inconsistency."""
    phenotypes = list(config.phenotypes)
    founder = phenotypes[0]
    alterations = list(config.alterations)

    _check_names(phenotypes, alterations, config.pathways)
    if len(alterations) > MAX_ALTERATIONS:
        raise ConfigError(
            "alterations", f"at most {MAX_ALTERATIONS} alterations (got {len(alterations)})"
        )

    pathways = config.pathways or [config.driver_pathway]
    if config.driver_pathway not in pathways:
        raise ConfigError(
            "driver_pathway", f"{config.driver_pathway!r} is not in pathways {pathways}"
        )
    for name, alteration in config.alterations.items():
        if alteration.adds_pathway is not None and alteration.adds_pathway not in pathways:
            raise ConfigError(
                f"alterations.{name}.adds_pathway",
                f"unknown pathway {alteration.adds_pathway!r}; known: {pathways}",
            )
        for drug in alteration.ic50_fold:
            if drug not in config.drugs:
                raise ConfigError(
                    f"alterations.{name}.ic50_fold.{drug}",
                    f"unknown drug {drug!r}; known: {list(config.drugs)}",
                )

    _check_switching(config, phenotypes)
    _check_tumor(config, phenotypes, alterations, founder)
    _check_rates(config)
    _check_drugs(config, phenotypes, pathways)
    _check_schedules(config, alterations)
    return config


def _check_names(phenotypes: list[str], alterations: list[str], pathways: list[str]) -> None:
    """Names become labels, dotted override paths and file paths: keep them plain."""
    for section, names in (("phenotypes", phenotypes), ("alterations", alterations),
                           ("pathways", pathways)):
        for index, name in enumerate(names):
            key = f"{section}[{index}]" if section == "pathways" else f"{section}.{name}"
            if not name:
                raise ConfigError(section, "a name must not be empty")
            if name in RESERVED_NAMES:
                raise ConfigError(key, f"{name!r} is reserved (it labels the unaltered genotype)")
            if not NAME_PATTERN.fullmatch(name):
                raise ConfigError(
                    key,
                    f"{name!r} is not a valid name: use letters, digits, '_' and '-', "
                    "starting with a letter",
                )
    clash = set(phenotypes) & set(alterations)
    if clash:
        name = sorted(clash)[0]
        raise ConfigError(
            f"alterations.{name}", f"{name!r} is also a phenotype name; names must be unique"
        )
    if len(set(pathways)) != len(pathways):
        raise ConfigError("pathways", f"duplicate pathway names in {pathways}")


def _check_switching(config: Config, phenotypes: list[str]) -> None:
    seen: set[tuple[str, str]] = set()
    for index, switch in enumerate(config.switching):
        key = f"switching[{index}]"
        for field, value in (("from", switch.from_), ("to", switch.to)):
            if value not in phenotypes:
                raise ConfigError(
                    f"{key}.{field}", f"unknown phenotype {value!r}; known: {phenotypes}"
                )
        if switch.from_ == switch.to:
            raise ConfigError(key, f"switch from {switch.from_!r} to itself")
        if (switch.from_, switch.to) in seen:
            raise ConfigError(key, f"duplicate switch {switch.from_!r} -> {switch.to!r}")
        seen.add((switch.from_, switch.to))
        if switch.rate_per_day == 0.0 and switch.drug_induced_rate_per_day == 0.0:
            raise ConfigError(key, "both rate_per_day and drug_induced_rate_per_day are 0")


def _check_tumor(
    config: Config, phenotypes: list[str], alterations: list[str], founder: str
) -> None:
    tumor = config.tumor
    if (tumor.initial_cells is None) == (tumor.grow_from_single_cell_to is None):
        raise ConfigError(
            "tumor", "give exactly one of initial_cells and grow_from_single_cell_to"
        )
    if tumor.lethal_cells > MAX_LETHAL_CELLS:
        raise ConfigError(
            "tumor.lethal_cells",
            f"{tumor.lethal_cells:g} is above the exact-count limit {MAX_LETHAL_CELLS:g}",
        )
    for key, value in (
        ("initial_cells", tumor.initial_cells),
        ("grow_from_single_cell_to", tumor.grow_from_single_cell_to),
    ):
        if value is not None and value >= tumor.lethal_cells:
            raise ConfigError(
                f"tumor.{key}", f"{value:g} is not below lethal_cells {tumor.lethal_cells:g}"
            )
    if tumor.grow_from_single_cell_to is not None:
        if tumor.initial_fractions:
            raise ConfigError(
                "tumor.initial_fractions",
                "cannot be combined with grow_from_single_cell_to "
                "(pre-existing clones arise during growth)",
            )
        base = config.phenotypes[founder]
        if base.birth_rate_per_day <= base.death_rate_per_day:
            raise ConfigError(
                "tumor.grow_from_single_cell_to",
                f"the founder phenotype {founder!r} cannot grow "
                f"(birth {base.birth_rate_per_day:g} <= death {base.death_rate_per_day:g} per day)",
            )
        cap = tumor.carrying_capacity_cells
        if cap is not None and cap <= tumor.grow_from_single_cell_to:
            raise ConfigError(
                "tumor.grow_from_single_cell_to",
                f"{tumor.grow_from_single_cell_to:g} is not below carrying_capacity_cells {cap:g}",
            )
    phenotype_share = 0.0
    alteration_share = 0.0
    for name, fraction in tumor.initial_fractions.items():
        key = f"tumor.initial_fractions.{name}"
        if name == founder:
            raise ConfigError(key, "the founder phenotype takes the remainder; do not list it")
        if name in phenotypes:
            phenotype_share += fraction
        elif name in alterations:
            alteration_share += fraction
        else:
            known = phenotypes[1:] + alterations
            raise ConfigError(key, f"unknown phenotype or alteration {name!r}; known: {known}")
    if phenotype_share > 1.0:
        raise ConfigError(
            "tumor.initial_fractions", f"phenotype fractions sum to {phenotype_share:g} > 1"
        )
    if alteration_share > 1.0:
        raise ConfigError(
            "tumor.initial_fractions", f"alteration fractions sum to {alteration_share:g} > 1"
        )


def _check_rates(config: Config) -> None:
    dt = config.time.dt_days
    if not math.isfinite(config.time.horizon_days / dt) or config.time.horizon_days / dt > 1e8:
        raise ConfigError("time.dt_days", f"{dt:g} gives more than 1e8 steps")
    steps = config.time.record_every_days / dt
    if not math.isfinite(steps) or abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        raise ConfigError(
            "time.record_every_days",
            f"{config.time.record_every_days:g} is not a whole multiple of dt_days {dt:g}",
        )
    total_mutation = sum(a.mutation_rate_per_division for a in config.alterations.values())
    for name, phenotype in config.phenotypes.items():
        if phenotype.birth_rate_per_day * dt > MAX_BIRTH_TIMES_DT:
            raise ConfigError(
                f"phenotypes.{name}.birth_rate_per_day",
                f"{phenotype.birth_rate_per_day:g} x dt_days {dt:g} exceeds "
                f"{MAX_BIRTH_TIMES_DT:g}; use a smaller dt_days",
            )
        per_division = total_mutation * phenotype.mutation_rate_multiplier
        if per_division > 1.0:
            raise ConfigError(
                f"phenotypes.{name}.mutation_rate_multiplier",
                f"{phenotype.mutation_rate_multiplier:g} makes the mutation probability per "
                f"division {per_division:g} > 1",
            )


def _check_drugs(config: Config, phenotypes: list[str], pathways: list[str]) -> None:
    for name, drug in config.drugs.items():
        key = f"drugs.{name}"
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(
                key, f"{name!r} is not a valid name: use letters, digits, '_' and '-', "
                "starting with a letter",
            )
        for pathway in drug.targets:
            if pathway not in pathways:
                raise ConfigError(
                    f"{key}.targets.{pathway}", f"unknown pathway {pathway!r}; known: {pathways}"
                )
        for phenotype in drug.extra_death_per_day:
            if phenotype not in phenotypes:
                raise ConfigError(
                    f"{key}.extra_death_per_day.{phenotype}",
                    f"unknown phenotype {phenotype!r}; known: {phenotypes}",
                )
        kills = any(drug.extra_death_per_day.values())
        if not drug.targets and not kills:
            raise ConfigError(key, "the drug has no effect: give targets or extra_death_per_day")
        if not kills and all(t.max_inhibition == 0.0 for t in drug.targets.values()):
            raise ConfigError(
                key, "the drug has no effect: every target has max_inhibition 0 and there is "
                "no extra_death_per_day",
            )


def _never_arises(config: Config, alteration: str) -> str | None:
    """Why no cell can ever carry ``alteration``, or None if one can."""
    if config.tumor.initial_fractions.get(alteration, 0.0) > 0.0:
        return None
    if config.alterations[alteration].mutation_rate_per_division == 0.0:
        return "the alteration has mutation rate 0 and no initial fraction"
    if all(p.mutation_rate_multiplier == 0.0 for p in config.phenotypes.values()):
        return ("every phenotype has mutation_rate_multiplier 0 and the alteration has no "
                "initial fraction")
    return None


def _check_schedules(config: Config, alterations: list[str]) -> None:
    """Drugs and alterations must exist, and every trigger must be able to fire."""
    horizon = config.time.horizon_days
    start = config.tumor.initial_cells or config.tumor.grow_from_single_cell_to or 1.0
    ceiling = min(config.tumor.lethal_cells, config.tumor.carrying_capacity_cells or math.inf)
    for name, schedule in config.schedules.items():
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(
                f"schedules.{name}", f"{name!r} is not a valid name: use letters, digits, '_' "
                "and '-', starting with a letter",
            )
        last_day = 0.0
        count = len(schedule.phases)
        for index, phase in enumerate(schedule.phases):
            where = f"schedules.{name}, phase {index + 1}"
            seen: set[str] = set()
            for dose in phase.drugs:
                if dose.name not in config.drugs:
                    raise ConfigError(
                        where, f"unknown drug {dose.name!r}; known: {list(config.drugs)}"
                    )
                if dose.name in seen:
                    raise ConfigError(where, f"drug {dose.name!r} is listed twice")
                seen.add(dose.name)
                if (dose.on_days is None) != (dose.off_days is None):
                    raise ConfigError(where, f"drug {dose.name!r}: give both on_days and off_days")
                if dose.on_days is not None and dose.on_days < dose.every_days:
                    raise ConfigError(
                        where, f"drug {dose.name!r}: on_days {dose.on_days:g} is shorter than "
                        f"every_days {dose.every_days:g}, so no dose is ever given",
                    )
            trigger = phase.until
            last = index == count - 1
            if trigger is None:
                if schedule.repeat:
                    raise ConfigError(
                        where, "a repeating schedule cycles through its phases, so every phase "
                        "needs an 'until' trigger (a cycle with no trigger never moves on)",
                    )
                if not last:
                    raise ConfigError(
                        where, "only the last phase may have no 'until' trigger; the phases "
                        "after this one could never start",
                    )
                continue
            if last and not schedule.repeat:
                raise ConfigError(
                    where, f"the last phase has a trigger ({_describe(trigger)}) but nothing "
                    "follows it: add a phase (e.g. {drugs: []}) or set repeat: true",
                )
            _check_trigger(config, where, trigger, schedule.repeat, last_day, horizon, start,
                           ceiling, alterations)
            if trigger.kind == "day":
                last_day = float(trigger.value)


def _describe(trigger) -> str:
    return trigger.kind if trigger.kind == "progression" else f"{trigger.kind}: {trigger.value}"


def _check_trigger(config: Config, where: str, trigger, repeat: bool, last_day: float,
                   horizon: float, start: float, ceiling: float, alterations: list[str]) -> None:
    kind, value = trigger.kind, trigger.value
    if kind == "progression":
        return
    if kind == "ctdna_detects":
        if not isinstance(value, str):
            raise ConfigError(where, f"ctdna_detects needs an alteration name (got {value!r})")
        if value not in alterations:
            what = "a phenotype; ctDNA sees only alterations" if value in config.phenotypes \
                else "not an alteration"
            raise ConfigError(
                where, f"ctdna_detects {value!r}: {what}; known alterations: {alterations}"
            )
        reason = _never_arises(config, value)
        if reason is not None:
            raise ConfigError(where, f"ctdna_detects {value!r} can never fire: {reason}")
        return
    if isinstance(value, str) or value is None:
        raise ConfigError(where, f"{kind} needs a number (got {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(where, f"{kind} must be finite (got {value!r})")
    if kind == "day":
        if value <= 0.0:
            raise ConfigError(where, f"day {value:g} can never fire: it must be after day 0")
        if value >= horizon:
            raise ConfigError(
                where, f"day {value:g} can never fire: it is not before horizon_days {horizon:g}"
            )
        if repeat:
            raise ConfigError(
                where, "a day trigger fires once, so it cannot be part of a repeating "
                "schedule; use after_days (days since the phase started)",
            )
        if value <= last_day:
            raise ConfigError(
                where, f"day {value:g} can never end this phase: an earlier phase only ends "
                f"on day {last_day:g}",
            )
    elif kind == "after_days":
        if value <= 0.0:
            raise ConfigError(where, f"after_days must be positive (got {value:g})")
        if value >= horizon:
            raise ConfigError(
                where, f"after_days {value:g} can never fire: it is not shorter than "
                f"horizon_days {horizon:g}",
            )
    elif kind == "burden_below":
        if value <= 0.0:
            raise ConfigError(
                where, f"burden_below {value:g} can never fire: a burden is never below 0"
            )
    elif kind == "burden_above":
        if value < 0.0:
            raise ConfigError(where, f"burden_above must not be negative (got {value:g})")
        if value * start >= ceiling:
            raise ConfigError(
                where, f"burden_above {value:g} can never fire: {value:g} x the day-0 burden "
                f"{start:g} is not below the lethal size or carrying capacity {ceiling:g}",
            )
