"""Every config validation branch gives a one-line ConfigError that names the key.

The project's rule (DESIGN §9, ``clonesim.config.errors``): bad input gets one line,
``dotted.key: problem``, that mentions the bad value where there is one.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import pytest

from clonesim.config import Config, ConfigError, as_config, config_from_mapping, load_config
from clonesim.config.semantics import MAX_ALTERATIONS, MAX_LETHAL_CELLS

from conftest import check_line, fails, write

DELETE = object()

MINIMAL: dict[str, Any] = {
    "name": "minimal",
    "time": {"horizon_days": 5},
    "tumor": {"initial_cells": 1},
    "phenotypes": {"sensitive": {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5}},
}

PERSISTER = {"birth_rate_per_day": 0.004, "death_rate_per_day": 0.002}


def _merge(target: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if value is DELETE:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def base(**overrides: Any) -> dict[str, Any]:
    """The minimal config with ``overrides`` merged in (nested dicts merge; DELETE removes)."""
    config = copy.deepcopy(MINIMAL)
    _merge(config, overrides)
    return config


def two_phenotypes(**overrides: Any) -> dict[str, Any]:
    """``base`` with a second phenotype, ``persister``, after the founder ``sensitive``."""
    config = base(phenotypes={"persister": dict(PERSISTER)})
    _merge(config, overrides)
    return config


# --------------------------------------------------------------------------- valid configs

def test_minimal_config_is_valid_with_documented_defaults() -> None:
    config = config_from_mapping(MINIMAL)
    assert isinstance(config, Config)
    assert config.time.dt_days == 1.0
    assert config.time.record_every_days == 7.0
    assert config.tumor.lethal_cells == 1e12
    assert config.tumor.detection_cells == 1e8
    assert config.replicates == 1000
    assert config.seed is None
    assert config.founder_phenotype == "sensitive"
    assert config.drugs == {} and config.schedules == {}


FULL_EXAMPLE = """\
name: egfr-osimertinib-met
seed: 20261124
replicates: 1000

time:
  horizon_days: 1825
  dt_days: 1.0
  record_every_days: 7

tumor:
  initial_cells: 1.0e9
  initial_fractions: {persister: 0.003, MET_amp: 1.0e-4}
  carrying_capacity_cells: null
  lethal_cells: 1.0e12
  detection_cells: 1.0e8

phenotypes:
  sensitive: {birth_rate_per_day: 0.05, death_rate_per_day: 0.03,
              drug_kill_rate_per_day: 0.08, cytostatic_share: 0.5}
  persister: {birth_rate_per_day: 0.004, death_rate_per_day: 0.002,
              drug_kill_rate_per_day: 0.0, mutation_rate_multiplier: 20}

switching:
  - {from: sensitive, to: persister, rate_per_day: 1.0e-5, drug_induced_rate_per_day: 0.02}
  - {from: persister, to: sensitive, rate_per_day: 0.05}

driver_pathway: EGFR
pathways: [EGFR, MET, HER2, MAPK]

alterations:
  MET_amp: {mutation_rate_per_division: 1.0e-8, adds_pathway: MET}
  C797S:   {mutation_rate_per_division: 5.0e-9}
  KRAS_mut: {mutation_rate_per_division: 1.0e-9, adds_pathway: MAPK}

events:
  progression_diameter_increase: 0.2
  partial_response_diameter_decrease: 0.3
  established_cells: 1.0e4
  ctdna: {every_days: 56, detection_limit_vaf: 0.001}
"""

DRUGS = """
drugs:
  osimertinib: {targets: {EGFR: {ic50: 0.02, hill: 1.0, max_inhibition: 0.999}},
                half_life_days: 2.0}
  savolitinib: {targets: {MET: {ic50: 0.05, hill: 1.0, max_inhibition: 0.999}},
                half_life_days: 0.25}
  axl_inhibitor: {extra_death_per_day: {persister: 0.05}}
"""

SCHEDULES = """
schedules:
  osimertinib: [{drugs: [osimertinib]}]
  sequential:
    - {drugs: [osimertinib], until: progression}
    - {drugs: [osimertinib, savolitinib]}
  adaptive:
    repeat: true
    phases:
      - {drugs: [osimertinib], until: {burden_below: 0.5}}
      - {drugs: [], until: {burden_above: 1.0}}
"""


def test_full_design_example_without_drugs_and_schedules_is_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_EXAMPLE))
    assert config.tumor.initial_cells == 1e9
    assert config.tumor.initial_fractions == {"persister": 0.003, "MET_amp": 1e-4}
    assert config.tumor.carrying_capacity_cells is None
    assert config.switching[0].from_ == "sensitive"
    assert config.switching[1].rate_per_day == 0.05
    assert list(config.alterations) == ["MET_amp", "C797S", "KRAS_mut"]
    assert config.events.ctdna.every_days == 56
    assert config.founder_phenotype == "sensitive"


def test_full_design_example_with_drugs_and_schedules_is_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_EXAMPLE + DRUGS + SCHEDULES))
    assert list(config.drugs) == ["osimertinib", "savolitinib", "axl_inhibitor"]
    assert config.drugs["savolitinib"].targets["MET"].ic50 == 0.05
    assert config.drugs["axl_inhibitor"].extra_death_per_day == {"persister": 0.05}
    sequential = config.schedules["sequential"]
    assert [p.until.kind if p.until else None for p in sequential.phases] == ["progression", None]
    adaptive = config.schedules["adaptive"]
    assert adaptive.repeat and adaptive.phases[0].until.value == 0.5
    # The resolved config (as recorded in run.json) reads back to the same config.
    assert config_from_mapping(config.model_dump(mode="json", by_alias=True)) == config


def test_ic50_fold_names_an_unknown_drug() -> None:
    data = base(alterations={"C797S": {"mutation_rate_per_division": 5e-9,
                                       "ic50_fold": {"osimertinib": 1000}}})
    fails(data, "alterations.C797S.ic50_fold.osimertinib",
          r"unknown drug 'osimertinib'; known: \[\]")


def test_as_config_accepts_config_mapping_and_path(tmp_path: Path) -> None:
    config = config_from_mapping(MINIMAL)
    assert as_config(config) is config
    assert as_config(MINIMAL) == config
    assert as_config(write(tmp_path, FULL_EXAMPLE)).name == "egfr-osimertinib-met"
    assert as_config(str(write(tmp_path, FULL_EXAMPLE))).name == "egfr-osimertinib-met"


# --------------------------------------------------------------------------- schema (pydantic)

@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"nmae": "x"}, "nmae"),
        ({"tumor": {"inital_cells": 10}}, "tumor.inital_cells"),
        ({"time": {"dt": 1.0}}, "time.dt"),
        ({"phenotypes": {"sensitive": {"brith_rate_per_day": 1.0}}},
         "phenotypes.sensitive.brith_rate_per_day"),
        ({"switching": [{"from": "sensitive", "to": "p", "rate": 1.0}]}, "switching[0].rate"),
        ({"events": {"ctdna": {"every": 7}}}, "events.ctdna.every"),
        ({"engine": {"threads": 4}}, "engine.threads"),
    ],
)
def test_unknown_keys_are_errors(overrides: dict[str, Any], key: str) -> None:
    fails(base(**overrides), key, r": unknown key \(check the spelling")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (base(name=DELETE), "name"),
        (base(time=DELETE), "time"),
        (base(tumor=DELETE), "tumor"),
        (base(phenotypes=DELETE), "phenotypes"),
        (base(time={"horizon_days": DELETE}), "time.horizon_days"),
        (base(phenotypes={"sensitive": {"death_rate_per_day": DELETE}}),
         "phenotypes.sensitive.death_rate_per_day"),
        (base(switching=[{"to": "sensitive", "rate_per_day": 1.0}]), "switching[0].from"),
        (base(alterations={"A": {}}), "alterations.A.mutation_rate_per_division"),
    ],
)
def test_missing_required_keys(data: dict[str, Any], key: str) -> None:
    fails(data, key, r": required key is missing$")


@pytest.mark.parametrize(
    ("overrides", "key", "match"),
    [
        # negative rates and counts
        ({"phenotypes": {"sensitive": {"birth_rate_per_day": -0.1}}},
         "phenotypes.sensitive.birth_rate_per_day", r"greater than or equal to 0 \(got -0\.1\)"),
        ({"phenotypes": {"sensitive": {"death_rate_per_day": -1}}},
         "phenotypes.sensitive.death_rate_per_day", r"greater than or equal to 0 \(got -1\)"),
        ({"phenotypes": {"sensitive": {"drug_kill_rate_per_day": -0.5}}},
         "phenotypes.sensitive.drug_kill_rate_per_day", r"\(got -0\.5\)"),
        ({"phenotypes": {"sensitive": {"mutation_rate_multiplier": -2}}},
         "phenotypes.sensitive.mutation_rate_multiplier", r"\(got -2\)"),
        ({"switching": [{"from": "sensitive", "to": "p", "rate_per_day": -1e-5}]},
         "switching[0].rate_per_day", r"greater than or equal to 0 \(got -1e-05\)"),
        ({"time": {"horizon_days": 0}}, "time.horizon_days", r"greater than 0 \(got 0\)"),
        ({"time": {"dt_days": -1.0}}, "time.dt_days", r"greater than 0 \(got -1\.0\)"),
        ({"time": {"record_every_days": 0}}, "time.record_every_days", r"\(got 0\)"),
        ({"tumor": {"carrying_capacity_cells": 0}}, "tumor.carrying_capacity_cells",
         r"greater than 0 \(got 0\)"),
        ({"replicates": 0}, "replicates", r"greater than or equal to 1 \(got 0\)"),
        ({"seed": -1}, "seed", r"greater than or equal to 0 \(got -1\)"),
        ({"seed": 2**63}, "seed", r"less than .*\(got 9223372036854775808\)"),
        ({"engine": {"max_compartments": 0}}, "engine.max_compartments", r"\(got 0\)"),
        ({"engine": {"block_replicates": 2_000_000}}, "engine.block_replicates",
         r"less than or equal to 1000000 \(got 2000000\)"),
        # probabilities outside [0, 1]
        ({"phenotypes": {"sensitive": {"cytostatic_share": 1.5}}},
         "phenotypes.sensitive.cytostatic_share", r"less than or equal to 1 \(got 1\.5\)"),
        ({"phenotypes": {"sensitive": {"cytostatic_share": -0.1}}},
         "phenotypes.sensitive.cytostatic_share", r"greater than or equal to 0 \(got -0\.1\)"),
        ({"alterations": {"A": {"mutation_rate_per_division": 2.0}}},
         "alterations.A.mutation_rate_per_division", r"less than or equal to 1 \(got 2\.0\)"),
        ({"alterations": {"A": {"mutation_rate_per_division": -1e-9}}},
         "alterations.A.mutation_rate_per_division", r"\(got -1e-09\)"),
        ({"phenotypes": {"persister": PERSISTER},
          "tumor": {"initial_fractions": {"persister": 1.2}}},
         "tumor.initial_fractions.persister", r"less than or equal to 1 \(got 1\.2\)"),
        ({"alterations": {"MET_amp": {"mutation_rate_per_division": 1e-8}},
          "tumor": {"initial_fractions": {"MET_amp": -1e-4}}},
         "tumor.initial_fractions.MET_amp", r"greater than or equal to 0 \(got -0\.0001\)"),
        ({"events": {"ctdna": {"detection_limit_vaf": 1.01}}},
         "events.ctdna.detection_limit_vaf", r"\(got 1\.01\)"),
        ({"events": {"partial_response_diameter_decrease": 1.0}},
         "events.partial_response_diameter_decrease", r"less than 1 \(got 1\.0\)"),
        ({"events": {"progression_diameter_increase": 0}},
         "events.progression_diameter_increase", r"greater than 0 \(got 0\)"),
        ({"alterations": {"A": {"mutation_rate_per_division": 1e-9, "ic50_fold": {"d": 0}}}},
         "alterations.A.ic50_fold.d", r"greater than 0 \(got 0\)"),
        # non-finite values
        ({"phenotypes": {"sensitive": {"birth_rate_per_day": math.inf}}},
         "phenotypes.sensitive.birth_rate_per_day", r"must be a finite number \(got inf\)"),
        ({"time": {"horizon_days": math.inf}}, "time.horizon_days",
         r"must be a finite number \(got inf\)"),
        ({"tumor": {"lethal_cells": math.inf}}, "tumor.lethal_cells",
         r"must be a finite number \(got inf\)"),
        ({"phenotypes": {"sensitive": {"death_rate_per_day": math.nan}}},
         "phenotypes.sensitive.death_rate_per_day", r"\(got nan\)"),
        ({"phenotypes": {"sensitive": {"cytostatic_share": math.nan}}},
         "phenotypes.sensitive.cytostatic_share", r"\(got nan\)"),
        ({"alterations": {"A": {"mutation_rate_per_division": math.inf}}},
         "alterations.A.mutation_rate_per_division", r"\(got inf\)"),
        ({"tumor": {"initial_cells": math.nan}}, "tumor.initial_cells", r"\(got nan\)"),
        # whole numbers of cells
        ({"tumor": {"initial_cells": 1.5}}, "tumor.initial_cells",
         r"must be a whole number of cells \(got 1\.5\)"),
        ({"tumor": {"initial_cells": 0.5}}, "tumor.initial_cells",
         r"greater than or equal to 1 \(got 0\.5\)"),
        ({"tumor": {"lethal_cells": 1e9 + 0.5}}, "tumor.lethal_cells", r"whole number of cells"),
        ({"events": {"established_cells": 10.25}}, "events.established_cells",
         r"whole number of cells \(got 10\.25\)"),
        ({"replicates": 2.5}, "replicates", r"valid integer.*\(got 2\.5\)"),
        # wrong types
        ({"phenotypes": {"sensitive": {"birth_rate_per_day": "fast"}}},
         "phenotypes.sensitive.birth_rate_per_day", r"valid number.*\(got 'fast'\)"),
        ({"phenotypes": {"sensitive": {"birth_rate_per_day": True}}},
         "phenotypes.sensitive.birth_rate_per_day",
         r"must be a number, not true/false \(got True\)"),
        ({"replicates": True}, "replicates", r"must be a number, not true/false"),
        ({"tumor": {"initial_cells": [1, 2]}}, "tumor.initial_cells", r"\(got \[1, 2\]\)"),
        ({"replicates": "many"}, "replicates", r"valid integer.*\(got 'many'\)"),
        ({"name": 5}, "name", r"valid string \(got 5\)"),
        ({"name": ""}, "name", r"at least 1 character \(got ''\)"),
        ({"tumor": 5}, "tumor", r"valid dictionary.*\(got 5\)"),
        ({"time": [5]}, "time", r"valid dictionary.*\(got \[5\]\)"),
        ({"phenotypes": None}, "phenotypes", r"valid dictionary \(got None\)"),
        ({"phenotypes": {"sensitive": 1.0}}, "phenotypes.sensitive", r"\(got 1\.0\)"),
        ({"switching": {"from": "sensitive"}}, "switching", r"valid list \(got a mapping\)"),
        ({"pathways": "EGFR"}, "pathways", r"valid list \(got 'EGFR'\)"),
        ({"switching": [{"from": "sensitive", "to": "p", "scaled_by_signal": "maybe"}]},
         "switching[0].scaled_by_signal", r"valid boolean.*\(got 'maybe'\)"),
        ({"tumor": {"initial_fractions": [0.1]}}, "tumor.initial_fractions",
         r"valid dictionary \(got \[0\.1\]\)"),
    ],
)
def test_schema_errors_name_key_and_value(overrides: dict[str, Any], key: str, match: str) -> None:
    fails(base(**overrides), key, rf"^{re.escape(key)}: .*{match}")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({**MINIMAL, 1: 2}, "1"),
        (base(tumor={2: 3}), "tumor.2"),
        (base(phenotypes={True: {"birth_rate_per_day": 1.0, "death_rate_per_day": 0.5}}),
         "phenotypes.True"),
        (base(phenotypes={"persister": PERSISTER}, tumor={"initial_fractions": {1: 0.1}}),
         "tumor.initial_fractions.1"),
    ],
)
def test_names_must_be_text(data: dict[Any, Any], key: str) -> None:
    fails(data, key, r"a name must be text, got .* \(quote it in YAML\)$")


def test_phenotypes_must_not_be_empty() -> None:
    fails({**MINIMAL, "phenotypes": {}}, "phenotypes",
          r"^phenotypes: .*at least 1 item.*\(got a mapping\)$")


@pytest.mark.parametrize("data", [[1, 2], "name: x", 5, None])
def test_config_must_be_a_mapping(data: Any) -> None:
    error = fails(data, "", r"^a config must be a mapping of keys to values, got ")
    assert type(data).__name__ in str(error)


def test_seed_and_replicates_accept_whole_floats() -> None:
    # YAML reads 1e3 as a float; a whole float is a valid count.
    config = config_from_mapping(base(replicates=1e3, seed=1.0))
    assert config.replicates == 1000 and isinstance(config.replicates, int)
    assert config.seed == 1


# --------------------------------------------------------------------------- semantics

def test_names_reserved_or_with_plus_are_rejected() -> None:
    fails(base(phenotypes={"founder": PERSISTER}), "phenotypes.founder",
          r"'founder' is reserved \(it labels the unaltered genotype\)")
    fails(base(alterations={"MET+KRAS": {"mutation_rate_per_division": 1e-9}}),
          "alterations.MET+KRAS", r"'MET\+KRAS' is not a valid name: use letters, digits")
    fails(base(alterations={"founder": {"mutation_rate_per_division": 1e-9}}),
          "alterations.founder", r"'founder' is reserved")
    fails(base(phenotypes={"": PERSISTER}), "phenotypes", r"^phenotypes: a name must not be empty$")


@pytest.mark.parametrize("name", ["MET.amp", "MET amp", "a/b", "x=y", "1st", "_x", "é"])
def test_names_must_be_plain(name: str) -> None:
    """Names appear in dotted override paths and hive partition paths."""
    fails(base(alterations={name: {"mutation_rate_per_division": 1e-9}}),
          f"alterations.{name}", r"is not a valid name")
    fails(base(pathways=["EGFR", name], driver_pathway="EGFR"), "pathways[1]", r"is not a valid name")


def test_plain_names_are_accepted() -> None:
    config = config_from_mapping(base(alterations={"MET_amp": {"mutation_rate_per_division": 1e-9},
                                                   "HER2-amp2": {"mutation_rate_per_division": 1e-9}}))
    assert list(config.alterations) == ["MET_amp", "HER2-amp2"]


def test_phenotype_and_alteration_names_must_differ() -> None:
    fails(two_phenotypes(alterations={"persister": {"mutation_rate_per_division": 1e-9}}),
          "alterations.persister", r"'persister' is also a phenotype name; names must be unique")


def test_duplicate_pathways() -> None:
    fails(base(pathways=["driver", "MET", "MET"]), "pathways",
          r"^pathways: duplicate pathway names in \['driver', 'MET', 'MET'\]$")


def test_too_many_alterations() -> None:
    count = MAX_ALTERATIONS + 1
    alterations = {f"A{i}": {"mutation_rate_per_division": 1e-12} for i in range(count)}
    fails(base(alterations=alterations), "alterations",
          rf"^alterations: at most {MAX_ALTERATIONS} alterations \(got {count}\)$")
    ok = {f"A{i}": {"mutation_rate_per_division": 1e-12} for i in range(MAX_ALTERATIONS)}
    assert len(config_from_mapping(base(alterations=ok)).alterations) == MAX_ALTERATIONS


def test_driver_pathway_must_be_listed() -> None:
    fails(base(driver_pathway="EGFR", pathways=["MET", "MAPK"]), "driver_pathway",
          r"'EGFR' is not in pathways \['MET', 'MAPK'\]")
    # Without a pathways list the driver pathway is the only one.
    assert config_from_mapping(base(driver_pathway="EGFR")).driver_pathway == "EGFR"


def test_adds_pathway_must_be_known() -> None:
    met_amp = {"mutation_rate_per_division": 1e-8, "adds_pathway": "MET"}
    fails(base(driver_pathway="EGFR", pathways=["EGFR"], alterations={"MET_amp": met_amp}),
          "alterations.MET_amp.adds_pathway", r"unknown pathway 'MET'; known: \['EGFR'\]")


@pytest.mark.parametrize(
    ("switch", "key", "match"),
    [
        ({"from": "sensitiv", "to": "persister", "rate_per_day": 1e-5}, "switching[0].from",
         r"unknown phenotype 'sensitiv'; known: \['sensitive', 'persister'\]"),
        ({"from": "sensitive", "to": "persistor", "rate_per_day": 1e-5}, "switching[0].to",
         r"unknown phenotype 'persistor'"),
        ({"from": "persister", "to": "persister", "rate_per_day": 1e-5}, "switching[0]",
         r"switch from 'persister' to itself"),
        ({"from": "sensitive", "to": "persister"}, "switching[0]",
         r"both rate_per_day and drug_induced_rate_per_day are 0"),
    ],
)
def test_switching_errors(switch: dict[str, Any], key: str, match: str) -> None:
    fails(two_phenotypes(switching=[switch]), key, rf"^{re.escape(key)}: {match}")


def test_duplicate_switch_names_the_second_entry() -> None:
    switch = {"from": "sensitive", "to": "persister", "rate_per_day": 1e-5}
    fails(two_phenotypes(switching=[switch, {**switch, "drug_induced_rate_per_day": 0.02}]),
          "switching[1]", r"duplicate switch 'sensitive' -> 'persister'")
    # Only drug-induced switching is fine.
    only_drug = {"from": "sensitive", "to": "persister", "drug_induced_rate_per_day": 0.02}
    assert len(config_from_mapping(two_phenotypes(switching=[only_drug])).switching) == 1


@pytest.mark.parametrize(
    "tumor",
    [{"initial_cells": DELETE}, {"grow_from_single_cell_to": 1e6}],
    ids=["neither", "both"],
)
def test_exactly_one_tumor_start(tumor: dict[str, Any]) -> None:
    fails(base(tumor=tumor), "tumor",
          r"^tumor: give exactly one of initial_cells and grow_from_single_cell_to$")


def test_lethal_cells_limit() -> None:
    fails(base(tumor={"lethal_cells": 1e16}), "tumor.lethal_cells",
          r"^tumor.lethal_cells: 1e\+16 is above the exact-count limit 1e\+15$")
    assert config_from_mapping(base(tumor={"lethal_cells": MAX_LETHAL_CELLS}))


@pytest.mark.parametrize(
    ("tumor", "key"),
    [
        ({"initial_cells": 1e12}, "tumor.initial_cells"),
        ({"initial_cells": 2e6, "lethal_cells": 1e6}, "tumor.initial_cells"),
        ({"initial_cells": DELETE, "grow_from_single_cell_to": 1e12},
         "tumor.grow_from_single_cell_to"),
    ],
)
def test_start_must_be_below_lethal(tumor: dict[str, Any], key: str) -> None:
    fails(base(tumor=tumor), key, r" is not below lethal_cells ")


def test_grow_from_single_cell_errors() -> None:
    grow = {"initial_cells": DELETE, "grow_from_single_cell_to": 1e6}
    fails(two_phenotypes(tumor={**grow, "initial_fractions": {"persister": 0.01}}),
          "tumor.initial_fractions",
          r"cannot be combined with grow_from_single_cell_to \(pre-existing clones arise")
    fails(base(tumor=grow, phenotypes={"sensitive": {"birth_rate_per_day": 0.5}}),
          "tumor.grow_from_single_cell_to",
          r"the founder phenotype 'sensitive' cannot grow \(birth 0\.5 <= death 0\.5 per day\)")
    fails(base(tumor={**grow, "carrying_capacity_cells": 1e6}),
          "tumor.grow_from_single_cell_to", r"1e\+06 is not below carrying_capacity_cells 1e\+06")
    ok = config_from_mapping(base(tumor={**grow, "carrying_capacity_cells": 1e7}))
    assert ok.tumor.grow_from_single_cell_to == 1e6 and ok.tumor.initial_cells is None


def test_initial_fractions_errors() -> None:
    fails(base(tumor={"initial_fractions": {"sensitive": 0.5}}),
          "tumor.initial_fractions.sensitive",
          r"the founder phenotype takes the remainder; do not list it")
    fails(two_phenotypes(alterations={"MET_amp": {"mutation_rate_per_division": 1e-8}},
                         tumor={"initial_fractions": {"MET_amp": 1e-4, "METamp": 1e-4}}),
          "tumor.initial_fractions.METamp",
          r"unknown phenotype or alteration 'METamp'; known: \['persister', 'MET_amp'\]")
    three = two_phenotypes(phenotypes={"quiescent": dict(PERSISTER)},
                           tumor={"initial_fractions": {"persister": 0.6, "quiescent": 0.6}})
    fails(three, "tumor.initial_fractions",
          r"^tumor.initial_fractions: phenotype fractions sum to 1\.2 > 1$")
    alterations = {"A": {"mutation_rate_per_division": 1e-9},
                   "B": {"mutation_rate_per_division": 1e-9}}
    fails(base(alterations=alterations, tumor={"initial_fractions": {"A": 0.7, "B": 0.5}}),
          "tumor.initial_fractions", r"alteration fractions sum to 1\.2 > 1$")
    # Phenotype and alteration shares are separate: each may reach 1.
    ok = config_from_mapping(two_phenotypes(alterations=alterations, tumor={
        "initial_fractions": {"persister": 1.0, "A": 0.5, "B": 0.5}}))
    assert ok.tumor.initial_fractions["persister"] == 1.0


def test_record_interval_must_be_whole_number_of_steps() -> None:
    fails(base(time={"dt_days": 2.0, "record_every_days": 7}), "time.record_every_days",
          r"^time.record_every_days: 7 is not a whole multiple of dt_days 2$")
    fails(base(time={"dt_days": 0.01, "record_every_days": 1e308}), "time.record_every_days",
          r"is not a whole multiple of dt_days 0\.01")
    assert config_from_mapping(base(time={"dt_days": 0.1, "record_every_days": 0.7}))


def test_birth_rate_times_dt_limit() -> None:
    fails(base(phenotypes={"sensitive": {"birth_rate_per_day": 6.0}}),
          "phenotypes.sensitive.birth_rate_per_day",
          r"6 x dt_days 1 exceeds 5; use a smaller dt_days$")
    ok = base(phenotypes={"sensitive": {"birth_rate_per_day": 6.0}}, time={"dt_days": 0.5,
                                                                          "record_every_days": 1})
    assert config_from_mapping(ok).phenotypes["sensitive"].birth_rate_per_day == 6.0


def test_mutation_probability_per_division_limit() -> None:
    data = two_phenotypes(
        phenotypes={"persister": {"mutation_rate_multiplier": 30}},
        alterations={"A": {"mutation_rate_per_division": 0.02},
                     "B": {"mutation_rate_per_division": 0.02}},
    )
    fails(data, "phenotypes.persister.mutation_rate_multiplier",
          r"30 makes the mutation probability per division 1\.2 > 1$")


@pytest.mark.parametrize("dt_days", [1e-8, 5e-324])
def test_too_many_steps(dt_days: float) -> None:
    fails(base(time={"dt_days": dt_days, "record_every_days": dt_days}), "time.dt_days",
          r"gives more than 1e8 steps$")


# --------------------------------------------------------------------------- YAML loader

def test_yaml_numbers_in_exponent_form_are_floats() -> None:
    import yaml

    from clonesim.config.load import _StrictLoader

    text = "a: 1e9\nb: 1.0e9\nc: 1E9\nd: -1e-3\ne: +2.5e+3\nf: .5\ng: -.5\nh: 7\ni: '1e9'\n"
    data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    assert data == {"a": 1e9, "b": 1e9, "c": 1e9, "d": -1e-3, "e": 2500.0, "f": 0.5, "g": -0.5,
                    "h": 7, "i": "1e9"}
    assert all(isinstance(data[k], float) for k in "abcdefg")
    assert isinstance(data["h"], int)


def test_yaml_exponent_floats_reach_the_config(tmp_path: Path) -> None:
    text = ("name: x\ntime: {horizon_days: 5}\ntumor: {initial_cells: 1e9, lethal_cells: 1.0e12}\n"
            "phenotypes: {s: {birth_rate_per_day: 1, death_rate_per_day: 5e-1}}\n"
            "alterations: {A: {mutation_rate_per_division: 1e-8}}\n")
    config = load_config(write(tmp_path, text))
    assert config.tumor.initial_cells == 1e9
    assert config.tumor.lethal_cells == 1e12
    assert config.phenotypes["s"].death_rate_per_day == 0.5
    assert config.alterations["A"].mutation_rate_per_division == 1e-8


def test_yaml_non_finite_values(tmp_path: Path) -> None:
    text = "name: x\ntime: {horizon_days: .inf}\ntumor: {initial_cells: 1}\n" \
           "phenotypes: {s: {birth_rate_per_day: 1, death_rate_per_day: 0}}\n"
    match = r"^time.horizon_days: must be a finite number \(got inf\)$"
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_yaml_boolean_is_not_a_number(tmp_path: Path) -> None:
    text = "name: x\ntime: {horizon_days: 5}\ntumor: {initial_cells: 1}\n" \
           "phenotypes: {s: {birth_rate_per_day: true, death_rate_per_day: 0}}\n"
    with pytest.raises(ConfigError, match=r"must be a number, not true/false") as info:
        load_config(write(tmp_path, text))
    check_line(info.value, "phenotypes.s.birth_rate_per_day")


def test_yaml_follows_the_1_2_core_schema(tmp_path: Path) -> None:
    """yes/no/on/off are text, 010 is ten, 1:30 is text (YAML 1.1 read them otherwise)."""
    text = "name: no\nseed: 010\ntime: {horizon_days: 5}\ntumor: {initial_cells: 1}\n" \
           "phenotypes: {s: {birth_rate_per_day: 1, death_rate_per_day: 0}}\n"
    config = load_config(write(tmp_path, text))
    assert config.name == "no" and config.seed == 10
    text = "name: x\ntime: {horizon_days: 1:30}\ntumor: {initial_cells: 1}\n" \
           "phenotypes: {s: {birth_rate_per_day: yes, death_rate_per_day: 0}}\n"
    with pytest.raises(ConfigError, match=r"'1:30'") as info:
        load_config(write(tmp_path, text))
    check_line(info.value, "time.horizon_days")


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: a\nname: b\n", "name", 2),
        ("name: x\ntime:\n  horizon_days: 5\n  dt_days: 1\n  horizon_days: 6\n",
         "time.horizon_days", 5),
        ("phenotypes:\n  s: {birth_rate_per_day: 1, death_rate_per_day: 0}\n"
         "  s: {birth_rate_per_day: 2, death_rate_per_day: 0}\n", "phenotypes.s", 3),
        ("switching:\n  - {from: a, to: b}\n  - {from: a, to: b, to: c}\n", "switching[1].to", 3),
    ],
)
def test_yaml_duplicate_keys_name_key_and_line(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    with pytest.raises(ConfigError, match=rf"duplicate key in YAML \(line {line}\)$") as info:
        load_config(write(tmp_path, text))
    check_line(info.value, key)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = ("name: x\ntime: {horizon_days: 5}\ntumor: {initial_cells: 1}\n"
            "phenotypes:\n  s: &rates {birth_rate_per_day: 1, death_rate_per_day: 0.5}\n"
            "  p:\n    <<: *rates\n    death_rate_per_day: 0.25\n")
    config = load_config(write(tmp_path, text))
    assert config.phenotypes["p"].birth_rate_per_day == 1.0
    assert config.phenotypes["p"].death_rate_per_day == 0.25


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"the config is empty$"),
        ("# only a comment\n", r"the config is empty$"),
        ("- name: x\n- time: 5\n", r"a config must be a mapping of keys to values, got list$"),
        ("just text\n", r"a config must be a mapping of keys to values, got str$"),
        ("name: [a\n", r"invalid YAML \(line 2, column 1\): "),
        ("name: a: b\n",
         r"invalid YAML \(line 1, column 8\): mapping values are not allowed here$"),
        ("time:\n\thorizon_days: 5\n", r"invalid YAML \(line 2, column 1\): found character"),
        ("name: a\n---\nname: b\n", r"invalid YAML \(line 2, column 1\): "),
        ("? [a, b]\n: 1\n", r"invalid YAML \(line 1, column 3\): found unhashable key$"),
        ("name: !!python/object:os.system x\n", r"invalid YAML \(line 1, column 7\): "),
        ("name: \x01\n", r"invalid YAML: unacceptable character"),
    ],
)
def test_unreadable_yaml_is_one_line_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    check_line(info.value, "")
    assert str(info.value).startswith(f"{path}: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"^config file not found: .*nope\.yaml$") as info:
        load_config(path)
    check_line(info.value, "")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cannot read config ") as info:
        load_config(tmp_path)
    check_line(info.value, "")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 9\)$") as info:
        load_config(path)
    check_line(info.value, "")


def test_schema_errors_from_a_file_name_the_dotted_key(tmp_path: Path) -> None:
    text = FULL_EXAMPLE.replace("  initial_cells: 1.0e9", "  inital_cells: 1.0e9")
    with pytest.raises(ConfigError, match=r"^tumor.inital_cells: unknown key") as info:
        load_config(write(tmp_path, text))
    check_line(info.value, "tumor.inital_cells")


# --- extends: a config file that replaces some sections of another ------------------------


def test_extends_replaces_whole_top_level_sections(tmp_path: Path) -> None:
    base_path = write(tmp_path, FULL_EXAMPLE + DRUGS + SCHEDULES, "base.yaml")
    (tmp_path / "studies").mkdir()
    child = write(tmp_path / "studies", "extends: ../base.yaml\nname: child\n"
                  "schedules:\n  only:\n    - {drugs: [osimertinib]}\n", "child.yaml")
    parent, config = load_config(base_path), load_config(child)
    assert config.name == "child"
    assert list(config.schedules) == ["only"]  # replaced, not merged with the base's
    same = {"time", "tumor", "phenotypes", "switching", "alterations", "drugs", "events"}
    assert {k: getattr(config, k) for k in same} == {k: getattr(parent, k) for k in same}


def test_extends_chains_and_the_nearest_file_wins(tmp_path: Path) -> None:
    write(tmp_path, FULL_EXAMPLE, "a.yaml")
    write(tmp_path, "extends: a.yaml\nname: b\nseed: 5\n", "b.yaml")
    config = load_config(write(tmp_path, "extends: b.yaml\nname: c\n", "c.yaml"))
    assert (config.name, config.seed) == ("c", 5)


@pytest.mark.parametrize(("files", "match"), [
    ({"c.yaml": "extends: missing.yaml\nname: c\n"}, r"'missing.yaml' in .*c.yaml: no such config file"),
    ({"c.yaml": "extends: a.yaml\n", "a.yaml": "extends: c.yaml\nname: a\n"},
     r"configs extend each other in a cycle: c.yaml -> a.yaml -> c.yaml"),
    ({"c.yaml": "extends: c.yaml\n"}, r"cycle: c.yaml -> c.yaml"),
    ({"c.yaml": "extends: [a.yaml]\n"}, r"must be the path of a config file \(got \['a.yaml'\]\)"),
])
def test_extends_errors_are_one_line(tmp_path: Path, files: dict[str, str], match: str) -> None:
    for name, text in files.items():
        write(tmp_path, text, name)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(tmp_path / "c.yaml")
    check_line(info.value, "extends")


def test_extends_errors_in_the_base_name_the_key(tmp_path: Path) -> None:
    write(tmp_path, FULL_EXAMPLE.replace("birth_rate_per_day:", "birth_rate_per_dya:", 1), "a.yaml")
    with pytest.raises(ConfigError, match=r"^phenotypes\.sensitive\.birth_rate_per_d(ay|ya): "):
        load_config(write(tmp_path, "extends: a.yaml\nname: c\n", "c.yaml"))


def test_extends_is_refused_in_a_mapping() -> None:
    fails({**base(), "extends": "a.yaml"}, "extends", "only a config file can extend another")
