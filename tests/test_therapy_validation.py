"""Input validation of drugs and schedules: one line that names the schedule and phase.

The requirement: a schedule naming an unknown drug or alteration, a trigger that
cannot fire, a negative dose, an IC50 of 0, a cycle of phases with no trigger --
each a one-line error naming the schedule and phase (DESIGN §3, §9). Every problem
inside a phase is reported as ``schedules.NAME, phase N: problem`` (N counts from 1),
whether a cross-field check or pydantic finds it; a problem in one value of the phase
puts that value's key, relative to the phase, before the problem, e.g.
``schedules.NAME, phase 1: drugs[0].dose: Input should be greater than 0 (got -1)``.

The tests at the end (``test_gap_*``) recorded gaps that have since been closed.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clonesim.cli import app
from clonesim.config import Config, ConfigError, config_from_mapping, load_config

from conftest import check_line, fails, write

USER_ERROR = 2
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

#: A small valid config with two phenotypes, two pathways, an alteration that can
#: arise (MET_amp), one that never can (inert: rate 0, no initial fraction) and three
#: drugs, but no schedules. Horizon 100 days, 1000 cells at day 0, lethal at 1e12.
THERAPY: dict[str, Any] = {
    "name": "therapy",
    "time": {"horizon_days": 100},
    "tumor": {"initial_cells": 1000, "initial_fractions": {"persister": 0.01}},
    "phenotypes": {
        "sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5},
        "persister": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.05},
    },
    "pathways": ["EGFR", "MET"],
    "driver_pathway": "EGFR",
    "alterations": {
        "MET_amp": {"mutation_rate_per_division": 1e-8, "adds_pathway": "MET"},
        "inert": {"mutation_rate_per_division": 0.0},
    },
    "drugs": {
        "osimertinib": {"targets": {"EGFR": {"ic50": 0.02, "hill": 1.0, "max_inhibition": 0.999}},
                        "half_life_days": 2.0},
        "savolitinib": {"targets": {"MET": {"ic50": 0.05}}, "half_life_days": 0.25},
        "axl_inhibitor": {"extra_death_per_day": {"persister": 0.05}},
    },
}

OSI = {"drugs": ["osimertinib"]}
OFF: dict[str, Any] = {"drugs": []}


def base(**sections: Any) -> dict[str, Any]:
    """THERAPY with top-level ``sections`` merged one level deep (an empty dict empties one)."""
    config = copy.deepcopy(THERAPY)
    for key, value in sections.items():
        if isinstance(value, dict) and value and isinstance(config.get(key), dict):
            config[key] = {**config[key], **copy.deepcopy(value)}
        else:
            config[key] = copy.deepcopy(value)
    return config


def schedules(**named: Any) -> dict[str, Any]:
    """THERAPY with these schedules."""
    return base(schedules=named)


def drug(name: str, spec: Any) -> dict[str, Any]:
    """THERAPY with drug ``name`` replaced by (or added as) ``spec``."""
    return base(drugs={name: spec})


def until(trigger: Any, *, drugs: list[Any] | None = None) -> dict[str, Any]:
    """A phase giving osimertinib (or ``drugs``) until ``trigger``."""
    return {"drugs": ["osimertinib"] if drugs is None else drugs, "until": trigger}


def ends(trigger: Any) -> dict[str, Any]:
    """THERAPY with one schedule, ``s``: osimertinib until ``trigger``, then nothing."""
    return schedules(s=[until(trigger), OFF])


def dosed(**dose: Any) -> dict[str, Any]:
    """THERAPY with one schedule, ``s``: a single phase giving osimertinib as ``dose``."""
    return schedules(s=[{"drugs": [{"name": "osimertinib", **dose}]}])


def phase(schedule: str, number: int) -> str:
    """The key of an error in phase ``number`` (from 1) of ``schedule``."""
    return f"schedules.{schedule}, phase {number}"


def fails_at(data: Any, schedule: str, number: int, rest: str, match: str) -> ConfigError:
    """Expect an error in phase ``number`` of ``schedule`` that names ``rest``, the key of
    the bad value relative to the phase (e.g. ``drugs[0].dose``), before the problem."""
    error = fails(data, phase(schedule, number), match)
    assert str(error).startswith(f"{phase(schedule, number)}: {rest}: "), str(error)
    return error


# --------------------------------------------------------------------------- valid configs

FULL_EXAMPLE = """\
name: egfr-osimertinib-met
seed: 20261124                 # optional; recorded in run.json when absent
replicates: 1000               # default; the CLI may override

time:
  horizon_days: 1825           # days of therapy simulated after day 0
  dt_days: 1.0                 # engine step (exact birth-death within a step)
  record_every_days: 7         # trajectory sampling; day 0 and the last day always recorded

tumor:
  initial_cells: 1.0e9         # cells at day 0 (start of therapy) ...
  # grow_from_single_cell_to: 1.0e9   # ... or: grow untreated from one cell to this size
  #   (conditioned on reaching it) and start therapy then; pre-existing mutants arise naturally
  initial_fractions: {persister: 0.003, MET_amp: 1.0e-4}   # phenotype or alteration -> share
  carrying_capacity_cells: null
  lethal_cells: 1.0e12         # the replicate dies (and stops) when burden reaches this
  detection_cells: 1.0e8       # imaging limit used by progression and response

phenotypes:                    # the first one is the founder's
  sensitive: {birth_rate_per_day: 0.05, death_rate_per_day: 0.03,
              drug_kill_rate_per_day: 0.08, cytostatic_share: 0.5}
  persister: {birth_rate_per_day: 0.004, death_rate_per_day: 0.002,
              drug_kill_rate_per_day: 0.0, mutation_rate_multiplier: 20}

switching:
  - {from: sensitive, to: persister, rate_per_day: 1.0e-5, drug_induced_rate_per_day: 0.02}
  - {from: persister, to: sensitive, rate_per_day: 0.05}   # scaled by the signal s

driver_pathway: EGFR
pathways: [EGFR, MET, HER2, MAPK]

alterations:                   # genotype labels join these names with "+" in this order
  MET_amp: {mutation_rate_per_division: 1.0e-8, adds_pathway: MET}
  C797S:   {mutation_rate_per_division: 5.0e-9, ic50_fold: {osimertinib: 1000}}
  KRAS_mut: {mutation_rate_per_division: 1.0e-9, adds_pathway: MAPK}

drugs:                         # exposure 1.0 = the standard regimen's steady-state average
  osimertinib: {targets: {EGFR: {ic50: 0.02, hill: 1.0, max_inhibition: 0.999}}, half_life_days: 2.0}
  savolitinib: {targets: {MET: {ic50: 0.05, hill: 1.0, max_inhibition: 0.999}}, half_life_days: 0.25}
  axl_inhibitor: {extra_death_per_day: {persister: 0.05}}

schedules:                     # every schedule meets the same virtual patients
  osimertinib: [{drugs: [osimertinib]}]
  upfront: [{drugs: [osimertinib, savolitinib]}]
  sequential:
    - {drugs: [osimertinib], until: progression}
    - {drugs: [osimertinib, savolitinib]}
  preemptive_week10:
    - {drugs: [osimertinib], until: {day: 70}}
    - {drugs: [osimertinib, savolitinib]}
  ctdna_guided:
    - {drugs: [osimertinib], until: {ctdna_detects: MET_amp}}
    - {drugs: [osimertinib, savolitinib]}
  adaptive:
    repeat: true
    phases:
      - {drugs: [osimertinib], until: {burden_below: 0.5}}   # relative to day-0 burden
      - {drugs: [], until: {burden_above: 1.0}}
  pulsed:                      # a dosing pattern inside a phase
    - {drugs: [{name: osimertinib, dose: 3.0, every_days: 7}]}

events:
  progression_diameter_increase: 0.2     # RECIST: diameter >= 1.2 x nadir diameter
  partial_response_diameter_decrease: 0.3
  established_cells: 1.0e4
  ctdna: {every_days: 56, detection_limit_vaf: 0.001}
"""


def test_full_design_example_is_valid(tmp_path: Path) -> None:
    """The full config of DESIGN §9, drugs and all seven schedules, validates as written."""
    config = load_config(write(tmp_path, FULL_EXAMPLE))
    assert isinstance(config, Config)
    assert list(config.drugs) == ["osimertinib", "savolitinib", "axl_inhibitor"]
    assert config.alterations["C797S"].ic50_fold == {"osimertinib": 1000.0}
    assert list(config.schedules) == ["osimertinib", "upfront", "sequential", "preemptive_week10",
                                      "ctdna_guided", "adaptive", "pulsed"]
    triggers = {name: [p.until.model_dump() if p.until else None for p in s.phases]
                for name, s in config.schedules.items()}
    assert triggers == {
        "osimertinib": [None],
        "upfront": [None],
        "sequential": ["progression", None],
        "preemptive_week10": [{"day": 70.0}, None],
        "ctdna_guided": [{"ctdna_detects": "MET_amp"}, None],
        "adaptive": [{"burden_below": 0.5}, {"burden_above": 1.0}],
        "pulsed": [None],
    }
    assert config.schedules["adaptive"].repeat
    assert not config.schedules["sequential"].repeat
    pulsed = config.schedules["pulsed"].phases[0].drugs[0]
    assert (pulsed.name, pulsed.dose, pulsed.every_days) == ("osimertinib", 3.0, 7.0)
    # A drug given by name is dose 1.0, daily, without holidays.
    plain = config.schedules["upfront"].phases[0].drugs[1]
    assert (plain.name, plain.dose, plain.every_days, plain.on_days, plain.off_days) == (
        "savolitinib", 1.0, 1.0, None, None)
    # The resolved config (as recorded in run.json) reads back to the same config.
    assert config_from_mapping(config.model_dump(mode="json", by_alias=True)) == config


@pytest.mark.parametrize(
    "data",
    [
        THERAPY,
        schedules(s=[OSI]),
        schedules(s=[OFF]),
        schedules(s=[until("progression"), until("progression", drugs=["savolitinib"]), OFF]),
        # Day triggers in increasing order, with other triggers between them.
        schedules(s=[until({"day": 10}), until("progression"), until({"day": 20}), OFF]),
        schedules(s=[until({"day": 99.5}), OFF]),  # just before the horizon
        schedules(s=[until({"after_days": 99}), OFF]),
        schedules(s=[until({"ctdna_detects": "MET_amp"}), OFF]),
        # An alteration with rate 0 but present at day 0 can be detected.
        base(tumor={"initial_fractions": {"inert": 0.01}},
             schedules={"s": [until({"ctdna_detects": "inert"}), OFF]}),
        schedules(s=[until({"burden_below": 0.5}), OFF]),
        schedules(s=[until({"burden_above": 0.999e9}), OFF]),  # just below lethal / day-0 burden
        base(tumor={"carrying_capacity_cells": 2000},
             schedules={"s": [until({"burden_above": 1.999}), OFF]}),
        schedules(s={"repeat": True, "phases": [until({"burden_below": 0.5}),
                                                until({"burden_above": 1.0}, drugs=[])]}),
        schedules(s={"repeat": True, "phases": [until({"after_days": 21}),
                                                until({"after_days": 7}, drugs=[])]}),
        schedules(s={"repeat": True, "phases": [until("progression")]}),
        dosed(dose=0.5, every_days=2.0, on_days=14, off_days=7),
        dosed(dose=2, on_days=1, off_days=6),  # on_days == every_days: one dose per cycle
        schedules(s=[{"drugs": ["osimertinib", {"name": "savolitinib", "dose": 0.5},
                                "axl_inhibitor"]}]),
        schedules(**{"Plan-B_2": [OSI]}),
        drug("targeted_killer", {"targets": {"MET": {"ic50": 1e-6, "hill": 4, "max_inhibition": 1}},
                                 "extra_death_per_day": {"sensitive": 0.01}}),
    ],
    ids=["no-schedules", "one-phase", "no-drugs", "two-lines", "days-increasing", "day-before-horizon",
         "after-days", "ctdna", "ctdna-initial-fraction", "burden-below", "burden-above-lethal",
         "burden-above-capacity", "adaptive", "repeat-after-days", "repeat-progression",
         "holidays", "on-equals-every", "three-drugs", "plain-name", "targets-and-death"],
)
def test_valid_therapy_configs(data: dict[str, Any]) -> None:
    assert isinstance(config_from_mapping(data), Config)


# --------------------------------------------------------------------------- schedules: names


@pytest.mark.parametrize(
    ("data", "key", "match"),
    [
        # The requirement's own example.
        (schedules(sequential=[until("progression"), {"drugs": ["osimertinib", "savolitnib"]}]),
         phase("sequential", 2), r"^schedules\.sequential, phase 2: unknown drug 'savolitnib'; "
         r"known: \['osimertinib', 'savolitinib', 'axl_inhibitor'\]$"),
        (schedules(s=[until("progression"), until("progression", drugs=["savolitinib"]),
                      {"drugs": [{"name": "crizotinib", "dose": 2}]}]),
         phase("s", 3), r"unknown drug 'crizotinib'"),
        (schedules(s={"repeat": True, "phases": [until({"after_days": 5}),
                                                 until({"after_days": 5}, drugs=["Osimertinib"])]}),
         phase("s", 2), r"unknown drug 'Osimertinib'"),
        (base(drugs={}, schedules={"s": [OSI]}), phase("s", 1),
         r"unknown drug 'osimertinib'; known: \[\]"),
        (ends({"ctdna_detects": "MET_amplification"}), phase("s", 1),
         r"ctdna_detects 'MET_amplification': not an alteration; known alterations: "
         r"\['MET_amp', 'inert'\]"),
        (ends({"ctdna_detects": "persister"}), phase("s", 1),
         r"ctdna_detects 'persister': a phenotype; ctDNA sees only alterations"),
        (ends({"ctdna_detects": "inert"}), phase("s", 1),
         r"ctdna_detects 'inert' can never fire: the alteration has mutation rate 0 and no "
         r"initial fraction"),
        (base(alterations={}, schedules={"s": [until({"ctdna_detects": "MET_amp"}), OFF]}),
         phase("s", 1), r"ctdna_detects 'MET_amp': not an alteration; known alterations: \[\]"),
        (ends({"ctdna_detects": 3}), phase("s", 1),
         r"ctdna_detects needs an alteration name \(got 3(\.0)?\)"),
    ],
    ids=["unknown-drug-phase-2", "unknown-drug-phase-3", "unknown-drug-case", "no-drugs-defined",
         "unknown-alteration", "ctdna-phenotype", "ctdna-never-arises", "no-alterations",
         "ctdna-number"],
)
def test_unknown_drug_or_alteration_names_schedule_and_phase(
    data: dict[str, Any], key: str, match: str
) -> None:
    fails(data, key, match)


@pytest.mark.parametrize(
    "name", ["my schedule", "1st", "a+b", "a.b", "sched/1", "_private"],
)
def test_invalid_schedule_name(name: str) -> None:
    fails(schedules(**{name: [OSI]}), f"schedules.{name}",
          rf"'{re.escape(name)}' is not a valid name: use letters, digits, '_' and '-', "
          "starting with a letter")


def test_invalid_drug_name() -> None:
    fails(drug("osi mertinib", {"targets": {"EGFR": {"ic50": 0.1}}}), "drugs.osi mertinib",
          r"'osi mertinib' is not a valid name")


# --------------------------------------------------------------------------- schedules: triggers


@pytest.mark.parametrize(
    ("data", "key", "match"),
    [
        # A cycle of phases with no trigger.
        (schedules(adaptive={"repeat": True, "phases": [until({"burden_below": 0.5}), OFF]}),
         phase("adaptive", 2),
         r"a repeating schedule cycles through its phases, so every phase needs an 'until' trigger"),
        (schedules(adaptive={"repeat": True, "phases": [OSI, until({"after_days": 5})]}),
         phase("adaptive", 1), r"every phase needs an 'until' trigger"),
        (schedules(adaptive={"repeat": True, "phases": [OSI]}), phase("adaptive", 1),
         r"every phase needs an 'until' trigger"),
        # A phase without trigger that is not the last.
        (schedules(s=[OSI, OFF]), phase("s", 1),
         r"only the last phase may have no 'until' trigger; the phases after this one could "
         r"never start"),
        (schedules(s=[until("progression"), OSI, OFF]), phase("s", 2),
         r"only the last phase may have no 'until' trigger"),
        # A trigger on the last phase of a schedule that does not repeat.
        (schedules(s=[until("progression")]), phase("s", 1),
         r"the last phase has a trigger \(progression\) but nothing follows it: add a phase "
         r"\(e\.g\. \{drugs: \[\]\}\) or set repeat: true"),
        (schedules(s=[until("progression"), until({"burden_below": 0.5})]), phase("s", 2),
         r"the last phase has a trigger \(burden_below: 0\.5\) but nothing follows it"),
    ],
    ids=["repeat-last-without", "repeat-first-without", "repeat-single-without",
         "first-of-two-without", "middle-without", "last-with-trigger", "last-of-two-with-trigger"],
)
def test_phase_order_and_missing_triggers(data: dict[str, Any], key: str, match: str) -> None:
    fails(data, key, match)


@pytest.mark.parametrize(
    ("data", "key", "match"),
    [
        (ends({"day": 100}), phase("s", 1),
         r"day 100 can never fire: it is not before horizon_days 100"),
        (ends({"day": 150}), phase("s", 1),
         r"day 150 can never fire: it is not before horizon_days 100"),
        (ends({"day": 0}), phase("s", 1), r"day 0 can never fire: it must be after day 0"),
        (ends({"day": -5}), phase("s", 1), r"day -5 can never fire: it must be after day 0"),
        (ends({"day": float("inf")}), phase("s", 1), r"day must be finite \(got inf\)"),
        (ends({"day": float("nan")}), phase("s", 1), r"day must be finite \(got nan\)"),
        (schedules(s=[until({"day": 30}), until({"day": 30}, drugs=["savolitinib"]), OFF]),
         phase("s", 2), r"day 30 can never end this phase: an earlier phase only ends on day 30"),
        (schedules(s=[until({"day": 30}), until({"day": 20}, drugs=["savolitinib"]), OFF]),
         phase("s", 2), r"day 20 can never end this phase: an earlier phase only ends on day 30"),
        (schedules(s=[until({"day": 30}), until("progression"), until({"day": 10}), OFF]),
         phase("s", 3), r"day 10 can never end this phase: an earlier phase only ends on day 30"),
        (schedules(s={"repeat": True, "phases": [until({"day": 30}), until({"after_days": 5})]}),
         phase("s", 1), r"a day trigger fires once, so it cannot be part of a repeating schedule; "
         r"use after_days"),
        (schedules(s={"repeat": True, "phases": [until({"after_days": 5}), until({"day": 30})]}),
         phase("s", 2), r"a day trigger fires once"),
        (ends({"after_days": 0}), phase("s", 1), r"after_days must be positive \(got 0\)"),
        (ends({"after_days": -3}), phase("s", 1), r"after_days must be positive \(got -3\)"),
        (ends({"after_days": 100}), phase("s", 1),
         r"after_days 100 can never fire: it is not shorter than horizon_days 100"),
        (ends({"burden_below": 0}), phase("s", 1),
         r"burden_below 0 can never fire: a burden is never below 0"),
        (ends({"burden_below": -0.5}), phase("s", 1), r"burden_below -0\.5 can never fire"),
        (ends({"burden_above": -1}), phase("s", 1),
         r"burden_above must not be negative \(got -1\)"),
        # 1e9 x 1000 cells at day 0 reaches lethal_cells 1e12.
        (ends({"burden_above": 1e9}), phase("s", 1),
         r"burden_above 1e\+09 can never fire: 1e\+09 x the day-0 burden 1000 is not below the "
         r"lethal size or carrying capacity 1e\+12"),
        (base(tumor={"carrying_capacity_cells": 2000},
              schedules={"s": [until({"burden_above": 2.0}), OFF]}),
         phase("s", 1), r"burden_above 2 can never fire: 2 x the day-0 burden 1000 is not below "
         r"the lethal size or carrying capacity 2000"),
        (base(tumor={"lethal_cells": 5000}, schedules={"s": [until({"burden_above": 6}), OFF]}),
         phase("s", 1), r"burden_above 6 can never fire: .* carrying capacity 5000"),
        # With pre-growth the day-0 burden is grow_from_single_cell_to.
        (base(tumor={"initial_cells": None, "grow_from_single_cell_to": 1000,
                     "initial_fractions": {}},
              schedules={"s": [until({"burden_above": 1e9}), OFF]}),
         phase("s", 1), r"burden_above 1e\+09 can never fire: 1e\+09 x the day-0 burden 1000"),
        (schedules(s={"repeat": True, "phases": [
            until({"burden_below": 0.5}), until({"burden_above": 2e9}, drugs=[])]}),
         phase("s", 2), r"burden_above 2e\+09 can never fire"),
        (ends({"burden_above": "big"}), phase("s", 1), r"burden_above needs a number \(got 'big'\)"),
        (ends({"day": "10"}), phase("s", 1), r"day needs a number \(got '10'\)"),
    ],
    ids=["day-at-horizon", "day-after-horizon", "day-0", "day-negative", "day-inf", "day-nan",
         "day-equal-earlier", "day-before-earlier", "day-before-earlier-gap", "day-in-repeat",
         "day-in-repeat-phase-2", "after-days-0", "after-days-negative", "after-days-horizon",
         "burden-below-0", "burden-below-negative", "burden-above-negative",
         "burden-above-lethal", "burden-above-capacity", "burden-above-small-lethal",
         "burden-above-pregrowth", "burden-above-in-cycle", "burden-above-text", "day-text"],
)
def test_triggers_that_cannot_fire(data: dict[str, Any], key: str, match: str) -> None:
    fails(data, key, match)


@pytest.mark.parametrize(
    ("trigger", "match"),
    [
        ("progresion", r"unknown trigger 'progresion'; use progression, \{day: D\}, "
                       r"\{after_days: D\}, \{ctdna_detects: ALTERATION\}, \{burden_below: X\} or "
                       r"\{burden_above: X\}"),
        ("day", r"unknown trigger 'day'; use progression"),
        ({"week": 10}, r"unknown trigger 'week'; known: \['progression', 'day', 'after_days', "
                       r"'ctdna_detects', 'burden_below', 'burden_above'\]"),
        ({"Day": 10}, r"unknown trigger 'Day'"),
        ({"day": 10, "burden_below": 0.5},
         r"a trigger has exactly one key \(got \['burden_below', 'day'\]\)"),
        ({}, r"a trigger has exactly one key \(got \[\]\)"),
        (5, r"valid dictionary .*\(got 5\)"),
    ],
    ids=["typo-string", "bare-day", "unknown-mapping", "capitalised", "two-keys", "empty-mapping",
         "number"],
)
def test_malformed_triggers_name_the_until_key(trigger: Any, match: str) -> None:
    fails_at(schedules(plan=[until(trigger), OFF]), "plan", 1, "until", match)


def test_malformed_trigger_in_a_later_phase_names_its_number() -> None:
    data = schedules(plan=[until("progression"), until({"weeks": 2}), OFF])
    fails_at(data, "plan", 2, "until", r"unknown trigger 'weeks'")


# --------------------------------------------------------------------------- schedules: doses


@pytest.mark.parametrize(
    ("dose", "field", "match"),
    [
        ({"dose": -1}, "dose", r"greater than 0 \(got -1\)"),
        ({"dose": 0}, "dose", r"greater than 0 \(got 0\)"),
        ({"dose": -0.5}, "dose", r"greater than 0 \(got -0\.5\)"),
        ({"dose": float("inf")}, "dose", r"must be a finite number \(got inf\)"),
        ({"dose": float("nan")}, "dose", r"\(got nan\)"),
        ({"every_days": 0}, "every_days", r"greater than 0 \(got 0\)"),
        ({"every_days": -7}, "every_days", r"greater than 0 \(got -7\)"),
        ({"on_days": 0, "off_days": 7}, "on_days", r"greater than 0 \(got 0\)"),
        ({"on_days": 7, "off_days": -1}, "off_days", r"greater than 0 \(got -1\)"),
        ({"dose": True}, "dose", r"must be a number, not true/false \(got True\)"),
        ({"dose": False}, "dose", r"must be a number, not true/false \(got False\)"),
        ({"every_days": True}, "every_days", r"must be a number, not true/false"),
        ({"dose": "high"}, "dose", r"valid number.*\(got 'high'\)"),
        ({"dose": "yes"}, "dose", r"valid number.*\(got 'yes'\)"),
        ({"dose": [1]}, "dose", r"valid number \(got \[1\]\)"),
        ({"dose": None}, "dose", r"valid number \(got None\)"),
        ({"doze": 2}, "doze", r"unknown key \(check the spelling against the config contract\)"),
        ({"every_day": 7}, "every_day", r"unknown key"),
        ({"on_day": 7, "off_days": 7}, "on_day", r"unknown key"),
    ],
    ids=["negative", "zero", "negative-fraction", "inf", "nan", "every-0", "every-negative",
         "on-0", "off-negative", "bool-true", "bool-false", "every-bool", "text", "yes-text",
         "list", "null", "typo-dose", "typo-every", "typo-on"],
)
def test_bad_dose_values_name_schedule_phase_and_drug(
    dose: dict[str, Any], field: str, match: str
) -> None:
    fails_at(dosed(**dose), "s", 1, f"drugs[0].{field}", match)


def test_bad_dose_in_a_later_phase_and_drug_names_both() -> None:
    data = schedules(sequential=[until("progression"),
                                 {"drugs": ["osimertinib", {"name": "savolitinib", "dose": -2}]}])
    fails_at(data, "sequential", 2, "drugs[1].dose", r"greater than 0 \(got -2\)")


@pytest.mark.parametrize(
    ("data", "key", "match"),
    [
        (dosed(on_days=14), phase("s", 1), r"drug 'osimertinib': give both on_days and off_days"),
        (dosed(off_days=14), phase("s", 1), r"drug 'osimertinib': give both on_days and off_days"),
        (dosed(every_days=7, on_days=3, off_days=4), phase("s", 1),
         r"drug 'osimertinib': on_days 3 is shorter than every_days 7, so no dose is ever given"),
        (schedules(s=[{"drugs": ["osimertinib", {"name": "osimertinib", "dose": 2}]}]), phase("s", 1),
         r"drug 'osimertinib' is listed twice"),
        (schedules(s=[until("progression"), {"drugs": ["savolitinib", "savolitinib"]}]),
         phase("s", 2), r"drug 'savolitinib' is listed twice"),
    ],
    ids=["on-without-off", "off-without-on", "on-shorter-than-every", "listed-twice",
         "listed-twice-phase-2"],
)
def test_dosing_patterns_name_schedule_and_phase(data: dict[str, Any], key: str, match: str) -> None:
    fails(data, key, match)


@pytest.mark.parametrize(
    ("data", "key", "match"),
    [
        (schedules(s=[{"drugs": ["osimertinib"], "untill": "progression"}, OFF]),
         phase("s", 1), r"^schedules\.s, phase 1: untill: unknown key"),
        (schedules(s=[{"drug": ["osimertinib"]}]), phase("s", 1),
         r"^schedules\.s, phase 1: drugs: required key is missing$"),
        (schedules(s=[{"until": "progression"}, OFF]), phase("s", 1),
         r"^schedules\.s, phase 1: drugs: required key is missing$"),
        (schedules(s=[{"drugs": [{"dose": 2}]}]), phase("s", 1),
         r"^schedules\.s, phase 1: drugs\[0\]\.name: required key is missing$"),
        (schedules(s={"repeats": True, "phases": [OSI]}), "schedules.s.repeats", r"unknown key"),
        # A typo of the required key reports it missing, not the misspelt key.
        (schedules(s={"phase": [OSI]}), "schedules.s.phases", r"required key is missing"),
        (schedules(s={"phases": [OSI], "progression_reference": "start"}),
         "schedules.s.progression_reference", r"'nadir' or 'baseline' \(got 'start'\)"),
        (schedules(s={"repeat": "maybe", "phases": [OSI]}), "schedules.s.repeat",
         r"valid boolean.*\(got 'maybe'\)"),
        (schedules(s=[]), "schedules.s.phases", r"at least 1 item.*\(got \[\]\)"),
        (schedules(s={"phases": []}), "schedules.s.phases", r"at least 1 item"),
        (schedules(s={"phases": None}), "schedules.s.phases", r"valid list \(got None\)"),
        (schedules(s=[{"drugs": "osimertinib"}]), phase("s", 1),
         r"^schedules\.s, phase 1: drugs: .*valid list \(got 'osimertinib'\)"),
        (base(schedules=[OSI]), "schedules", r"valid dictionary"),
    ],
    ids=["phase-typo-until", "phase-typo-drugs", "phase-without-drugs", "dose-without-name",
         "schedule-typo-repeat", "schedule-typo-phases", "progression-reference",
         "repeat-not-boolean", "empty-list", "empty-phases", "null-phases", "drugs-text",
         "schedules-list"],
)
def test_schedule_shape_errors_name_the_key(data: dict[str, Any], key: str, match: str) -> None:
    fails(data, key, match)


# --------------------------------------------------------------------------- drugs


@pytest.mark.parametrize(
    ("target", "field", "match"),
    [
        ({"ic50": 0}, "ic50", r"greater than 0 \(got 0\)"),
        ({"ic50": -0.1}, "ic50", r"greater than 0 \(got -0\.1\)"),
        ({"ic50": float("inf")}, "ic50", r"must be a finite number \(got inf\)"),
        ({"ic50": True}, "ic50", r"must be a number, not true/false \(got True\)"),
        ({"ic50": "0.1x"}, "ic50", r"valid number.*\(got '0\.1x'\)"),
        ({"ic50": 0.1, "max_inhibition": 1.5}, "max_inhibition",
         r"less than or equal to 1 \(got 1\.5\)"),
        ({"ic50": 0.1, "max_inhibition": -0.1}, "max_inhibition",
         r"greater than or equal to 0 \(got -0\.1\)"),
        ({"ic50": 0.1, "max_inhibition": True}, "max_inhibition", r"not true/false"),
        ({"ic50": 0.1, "hill": 0}, "hill", r"greater than 0 \(got 0\)"),
        ({"ic50": 0.1, "hill": -1}, "hill", r"greater than 0 \(got -1\)"),
        ({"ic50": 0.1, "hill": False}, "hill", r"not true/false"),
        ({"hill": 1.0}, "ic50", r"required key is missing"),
        # A typo of the required key reports it missing, not the misspelt key.
        ({"ic_50": 0.1}, "ic50", r"required key is missing"),
        ({"ic50": 0.1, "hil": 2}, "hil", r"unknown key"),
        ({"ic50": 0.1, "imax": 0.9}, "imax", r"unknown key"),
    ],
    ids=["ic50-0", "ic50-negative", "ic50-inf", "ic50-bool", "ic50-text", "max-inhibition-above-1",
         "max-inhibition-negative", "max-inhibition-bool", "hill-0", "hill-negative", "hill-bool",
         "ic50-missing", "typo-ic50", "typo-hill", "typo-max-inhibition"],
)
def test_bad_target_values_name_drug_and_pathway(
    target: dict[str, Any], field: str, match: str
) -> None:
    fails(drug("osimertinib", {"targets": {"EGFR": target}}),
          f"drugs.osimertinib.targets.EGFR.{field}", match)


@pytest.mark.parametrize(
    ("spec", "key", "match"),
    [
        ({"targets": {"EGFR": {"ic50": 0.1}}, "half_life_days": -2}, "drugs.d.half_life_days",
         r"greater than 0 \(got -2\)"),
        ({"targets": {"EGFR": {"ic50": 0.1}}, "half_life_days": 0}, "drugs.d.half_life_days",
         r"greater than 0 \(got 0\)"),
        ({"targets": {"EGFR": {"ic50": 0.1}}, "half_life_days": True}, "drugs.d.half_life_days",
         r"not true/false"),
        ({"targets": {"EGFR": {"ic50": 0.1}}, "half_life_days": float("inf")},
         "drugs.d.half_life_days", r"finite"),
        ({"targets": {"HER2": {"ic50": 0.1}}}, "drugs.d.targets.HER2",
         r"unknown pathway 'HER2'; known: \['EGFR', 'MET'\]"),
        ({"targets": {"EGFR": {"ic50": 0.1}, "egfr": {"ic50": 0.1}}}, "drugs.d.targets.egfr",
         r"unknown pathway 'egfr'"),
        ({"targets": {"EGFR": None}}, "drugs.d.targets.EGFR", r"valid dictionary.*\(got None\)"),
        ({"extra_death_per_day": {"dormant": 0.1}}, "drugs.d.extra_death_per_day.dormant",
         r"unknown phenotype 'dormant'; known: \['sensitive', 'persister'\]"),
        ({"extra_death_per_day": {"persister": -0.1}}, "drugs.d.extra_death_per_day.persister",
         r"greater than or equal to 0 \(got -0\.1\)"),
        ({"extra_death_per_day": {"persister": True}}, "drugs.d.extra_death_per_day.persister",
         r"not true/false"),
        ({"extra_death_per_day": {"persister": 0.1}, "extra_death_ic50": 0},
         "drugs.d.extra_death_ic50", r"greater than 0 \(got 0\)"),
        ({"extra_death_per_day": {"persister": 0.1}, "extra_death_hill": -1},
         "drugs.d.extra_death_hill", r"greater than 0 \(got -1\)"),
        ({}, "drugs.d", r"the drug has no effect: give targets or extra_death_per_day"),
        ({"targets": {}, "half_life_days": 1.0}, "drugs.d", r"the drug has no effect"),
        ({"extra_death_per_day": {"persister": 0.0}}, "drugs.d", r"the drug has no effect"),
        ({"targets": {"EGFR": {"ic50": 0.1}}, "half_life": 2}, "drugs.d.half_life", r"unknown key"),
        ({"target": {"EGFR": {"ic50": 0.1}}}, "drugs.d.target", r"unknown key"),
        ({"extra_death": {"persister": 0.1}}, "drugs.d.extra_death", r"unknown key"),
        (None, "drugs.d", r"valid dictionary.*\(got None\)"),
    ],
    ids=["half-life-negative", "half-life-0", "half-life-bool", "half-life-inf", "unknown-pathway",
         "pathway-case", "target-null", "unknown-phenotype", "extra-death-negative",
         "extra-death-bool", "extra-death-ic50-0", "extra-death-hill-negative", "no-effect-empty",
         "no-effect-empty-targets", "no-effect-zero-death", "typo-half-life", "typo-targets",
         "typo-extra-death", "null-drug"],
)
def test_bad_drugs_name_the_key(spec: Any, key: str, match: str) -> None:
    fails(drug("d", spec), key, match)


def test_ic50_fold_names_an_unknown_drug() -> None:
    data = base(alterations={"MET_amp": {"mutation_rate_per_division": 1e-8,
                                         "ic50_fold": {"crizotinib": 10}}})
    fails(data, "alterations.MET_amp.ic50_fold.crizotinib",
          r"unknown drug 'crizotinib'; known: \['osimertinib', 'savolitinib', 'axl_inhibitor'\]")


# --------------------------------------------------------------------------- from YAML files


YAML_HEAD = """\
name: therapy
time: {horizon_days: 100}
tumor: {initial_cells: 1000}
phenotypes:
  sensitive: {birth_rate_per_day: 1.0, death_rate_per_day: 0.5}
pathways: [EGFR, MET]
driver_pathway: EGFR
drugs:
  osimertinib: {targets: {EGFR: {ic50: 0.02}}, half_life_days: 2.0}
  savolitinib: {targets: {MET: {ic50: 0.05}}}
"""


@pytest.mark.parametrize(
    ("text", "key", "match"),
    [
        ("schedules:\n  sequential:\n    - {drugs: [osimertinib], until: progression}\n"
         "    - {drugs: [osimertinib, savolitnib]}\n",
         phase("sequential", 2), r"unknown drug 'savolitnib'"),
        # YAML 1.2: `yes` is text, not a boolean, and not a number either.
        ("schedules:\n  s:\n    - {drugs: [{name: osimertinib, dose: yes}]}\n",
         phase("s", 1), r"^schedules\.s, phase 1: drugs\[0\]\.dose: .*\(got 'yes'\)"),
        ("schedules:\n  s:\n    - {drugs: [{name: osimertinib, dose: true}]}\n",
         phase("s", 1), r"^schedules\.s, phase 1: drugs\[0\]\.dose: must be a number, "
         r"not true/false"),
        ("schedules:\n  s:\n    - {drugs: [{name: osimertinib, dose: 1e-1, every_days: -1}]}\n",
         phase("s", 1), r"^schedules\.s, phase 1: drugs\[0\]\.every_days: .*greater than 0 "
         r"\(got -1\)"),
        ("schedules:\n  s:\n    - {drugs: [osimertinib], until: {day: yes}}\n    - {drugs: []}\n",
         phase("s", 1), r"day needs a number \(got 'yes'\)"),
        ("schedules:\n  s:\n    repeat: true\n    phases:\n"
         "      - {drugs: [osimertinib], until: {burden_below: 0.5}}\n      - {drugs: []}\n",
         phase("s", 2), r"every phase needs an 'until' trigger"),
    ],
    ids=["unknown-drug", "dose-yes", "dose-true", "every-negative", "day-yes", "cycle-without-trigger"],
)
def test_errors_from_yaml_files(tmp_path: Path, text: str, key: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(write(tmp_path, YAML_HEAD + text))
    check_line(info.value, key)


def test_ic50_of_zero_from_yaml(tmp_path: Path) -> None:
    text = YAML_HEAD.replace("{ic50: 0.02}", "{ic50: 0}")
    with pytest.raises(ConfigError, match=r"greater than 0 \(got 0\)") as info:
        load_config(write(tmp_path, text))
    check_line(info.value, "drugs.osimertinib.targets.EGFR.ic50")


# --------------------------------------------------------------------------- the command line


def _one_error_line(exit_code: int, stdout: str, stderr: str) -> str:
    """Exit 2, one line on stderr starting 'error:', nothing on stdout, no traceback."""
    assert "Traceback" not in stdout + stderr, stdout + stderr
    lines = [line for line in ANSI.sub("", stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    assert not ANSI.sub("", stdout).strip(), stdout
    assert exit_code == USER_ERROR, (exit_code, stderr)
    return lines[0].removeprefix("error: ")


CLI_CASES = [
    ("schedules:\n  sequential:\n    - {drugs: [osimertinib], until: progression}\n"
     "    - {drugs: [osimertinib, savolitnib]}\n",
     "schedules.sequential, phase 2: unknown drug 'savolitnib'; known: "
     "['osimertinib', 'savolitinib']"),
    ("schedules:\n  s:\n    - {drugs: [{name: osimertinib, dose: -1}]}\n",
     "schedules.s, phase 1: drugs[0].dose: Input should be greater than 0 (got -1)"),
    ("schedules:\n  adaptive:\n    repeat: true\n    phases:\n"
     "      - {drugs: [osimertinib], until: {burden_below: 0.5}}\n      - {drugs: []}\n",
     "schedules.adaptive, phase 2: a repeating schedule cycles through its phases"),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("text", "expected"), CLI_CASES,
                         ids=["unknown-drug", "negative-dose", "cycle-without-trigger"])
def test_cli_reports_one_line(tmp_path: Path, command: str, text: str, expected: str) -> None:
    config = write(tmp_path, YAML_HEAD + text)
    out = tmp_path / "run"
    args = ["validate", str(config)] if command == "validate" else [
        "run", str(config), "--replicates", "1", "--seed", "1", "--out", str(out), "--quiet"]
    # A narrow console must not wrap the message onto a second line.
    result = CliRunner().invoke(app, args, env={"COLUMNS": "40"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    line = _one_error_line(result.exit_code, result.stdout, result.stderr)
    assert line.startswith(expected), line
    assert not out.exists()


def test_cli_ic50_zero_one_line(tmp_path: Path) -> None:
    config = write(tmp_path, YAML_HEAD.replace("{ic50: 0.02}", "{ic50: 0}"))
    result = CliRunner().invoke(app, ["validate", str(config)])
    line = _one_error_line(result.exit_code, result.stdout, result.stderr)
    assert line == "drugs.osimertinib.targets.EGFR.ic50: Input should be greater than 0 (got 0)"


def test_installed_script_validate_and_run(tmp_path: Path) -> None:
    """The real ``clonesim`` script: exit status 2 and one line on stderr, for validate and run."""
    script = shutil.which("clonesim") or str(Path(sys.executable).parent / "clonesim")
    assert Path(script).exists(), script
    config = write(tmp_path, YAML_HEAD + CLI_CASES[0][0])
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    env["NO_COLOR"] = "1"
    out = tmp_path / "run"
    for args in (["validate", str(config)], ["run", str(config), "--out", str(out), "--quiet"]):
        done = subprocess.run([script, *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
        line = _one_error_line(done.returncode, done.stdout, done.stderr)
        assert line.startswith(CLI_CASES[0][1]), line
    assert not out.exists()


def test_cli_full_design_example_validates(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(write(tmp_path, FULL_EXAMPLE))],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "egfr-osimertinib-met" in result.stdout


# --------------------------------------------------------------------------- known gaps
# Each states the wanted behaviour; strict xfail turns into a failure once it holds.


def test_gap_boolean_trigger_value_names_a_clean_key() -> None:
    with pytest.raises(ConfigError, match=r"not true/false") as info:
        config_from_mapping(ends({"day": True}))
    assert "function-before" not in str(info.value), str(info.value)
    assert info.value.key in ("schedules.s.phases[0].until", phase("s", 1)), str(info.value)


def test_gap_ctdna_detects_list_names_a_clean_key() -> None:
    with pytest.raises(ConfigError, match=r"alteration") as info:
        config_from_mapping(ends({"ctdna_detects": ["MET_amp"]}))
    assert "function-before" not in str(info.value), str(info.value)


def test_gap_progression_written_as_mapping_is_explained() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(ends({"progression": True}))
    assert not re.search(r"unknown trigger 'progression'", str(info.value)), str(info.value)


def test_gap_internal_trigger_form_is_rejected() -> None:
    with pytest.raises(ConfigError):
        config_from_mapping(ends({"kind": "day", "value": 10}))


@pytest.mark.parametrize(
    "data",
    [ends(5), schedules(s=["osimertinib"]), schedules(s=[{"drugs": [5]}]),
     schedules(s=[{"drugs": [None]}]), schedules(s=None)],
    ids=["trigger-number", "phase-text", "dose-number", "dose-null", "schedule-null"],
)
def test_gap_type_errors_do_not_name_internal_classes(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data)
    assert not re.search(r"Config\b", str(info.value)), str(info.value)


def test_gap_drug_with_zero_max_inhibition_has_no_effect() -> None:
    fails(drug("d", {"targets": {"EGFR": {"ic50": 0.1, "max_inhibition": 0}}}), "drugs.d",
          r"no effect")


def test_gap_ctdna_detects_alteration_no_phenotype_can_acquire() -> None:
    data = base(phenotypes={
        "sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5,
                      "mutation_rate_multiplier": 0},
        "persister": {"birth_rate_per_day": 0.1, "death_rate_per_day": 0.05,
                      "mutation_rate_multiplier": 0},
    }, schedules={"s": [until({"ctdna_detects": "MET_amp"}), OFF]})
    fails(data, phase("s", 1), r"can never fire")


@pytest.mark.parametrize("value", ["yes", "on", 1])
def test_gap_repeat_accepts_only_true_or_false(value: Any) -> None:
    fails(schedules(s={"repeat": value, "phases": [until({"after_days": 5})]}),
          "schedules.s.repeat", r"true or false|boolean")
