"""The shipped EGFR config's pharmacology, regimen by regimen (DESIGN §1.2, issue: therapy).

The net growth of every (genotype, phenotype) under every regimen the schedules
use, at steady-state exposure, must show the biology the config is meant to
carry: bypass (MET amplification escapes osimertinib, a MET inhibitor shuts it),
on-target resistance (T790M escapes gefitinib, C797S escapes osimertinib),
untargetable routes (HER2, KRAS) and drug tolerance (persisters survive every
TKI regimen and die only under the persister-targeting AXL inhibitor).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import clonesim
from clonesim.model import compile_model
from clonesim.model.regimens import NO_DRUG, net_growth_table, regimens

EGFR = Path(__file__).parent.parent / "configs" / "egfr_nsclc.yaml"
#: "Survives" = loses under 1 % of its cells a day (half-life over 69 days); "dies" = loses
#: over 1.5 % a day (half-life under 46 days): far apart relative to the rates involved.
SURVIVES = -0.01
DIES = -0.015


@pytest.fixture(scope="module")
def model():
    return compile_model(clonesim.load_config(EGFR))


@pytest.fixture(scope="module")
def net(model):
    table = net_growth_table(model)

    def rate(regimen: str, genotype: str, phenotype: str = "sensitive") -> float:
        row = table.filter((pl.col("regimen") == regimen) & (pl.col("genotype") == genotype)
                           & (pl.col("phenotype") == phenotype))
        assert row.height == 1, (regimen, genotype, phenotype)
        return row["net_growth_rate_per_day"].item()

    return rate


def test_the_schedules_use_these_regimens(model):
    assert list(regimens(model)) == [
        NO_DRUG, "gefitinib", "osimertinib", "osimertinib+savolitinib",
        "osimertinib+axl_inhibitor", "osimertinib 3/3d",
    ]


def test_hand_calculation_of_the_founder_under_osimertinib(model, net):
    """s = 1 - h(1), h = x / (1 + x), x = 1 / IC50; b = b_p (1 - phi (1 - s)), d = d_p + k (1 - s)."""
    k = model.kernel
    osimertinib = model.drug_names.index("osimertinib")
    egfr = model.pathway_names.index("EGFR")
    x = 1.0 / k.drug_target_ic50[osimertinib, egfr]
    signal = 1.0 - k.drug_target_max_inhibition[osimertinib, egfr] * x / (1.0 + x)
    birth = k.phenotype_birth_rate_per_day[0] * (1.0 - k.phenotype_cytostatic_share[0] * (1 - signal))
    death = k.phenotype_death_rate_per_day[0] + k.phenotype_drug_kill_rate_per_day[0] * (1 - signal)
    mutation = k.alteration_mutation_rate_per_division.sum()
    assert net("osimertinib", "founder") == pytest.approx(birth * (1 - mutation) - death, rel=1e-12)


def test_untreated_every_compartment_grows(net, model):
    for genotype in ("founder",) + model.alteration_names:
        for phenotype in model.phenotype_names:
            assert net(NO_DRUG, genotype, phenotype) > 0, (genotype, phenotype)


def test_tkis_shrink_the_sensitive_founder(net):
    for regimen in ("gefitinib", "osimertinib", "osimertinib+savolitinib", "osimertinib 3/3d"):
        assert net(regimen, "founder") < DIES, regimen


def test_met_amplification_bypasses_osimertinib_and_a_met_inhibitor_shuts_it(net):
    assert net("osimertinib", "MET_amp") > 0
    assert net("osimertinib+savolitinib", "MET_amp") < DIES
    # The bypass signal is the MET route: it is as if no EGFR drug were given.
    assert net("osimertinib", "MET_amp") == pytest.approx(net(NO_DRUG, "MET_amp"), rel=1e-6)


def test_on_target_mutations_escape_their_drug_only(net):
    assert net("gefitinib", "T790M") > 0
    assert net("osimertinib", "T790M") < DIES  # osimertinib was designed against T790M
    assert net("osimertinib", "C797S") > 0
    assert net("osimertinib+savolitinib", "C797S") > 0  # MET inhibition does not help
    assert net("gefitinib", "C797S") < DIES  # C797S alone stays gefitinib-sensitive


def test_her2_and_kras_escape_every_regimen(net, model):
    for regimen in regimens(model):
        assert net(regimen, "HER2_amp") > 0, regimen
        assert net(regimen, "KRAS_mut") > 0, regimen


def test_persisters_survive_every_tki_and_die_under_the_axl_inhibitor(net, model):
    for regimen in regimens(model):
        rate = net(regimen, "founder", "persister")
        if "axl_inhibitor" in regimen:
            assert rate < DIES, regimen
        else:
            assert rate > SURVIVES, regimen
            # ... while the sensitive cells they came from die ten times faster.
            if regimen != NO_DRUG:
                assert net(regimen, "founder") < 10 * rate, regimen


def test_dteps_grow_on_every_tki_and_die_under_the_axl_inhibitor(net, model):
    """Drug-tolerant expanded persisters: net b - d = 0.03 - 0.02 on any TKI (they divide
    in drug, no cytostasis, no kill), minus the AXL inhibitor's extra death 0.04."""
    dtep = model.phenotype_names.index("dtep")
    birth = model.kernel.phenotype_birth_rate_per_day[dtep]
    death = model.kernel.phenotype_death_rate_per_day[dtep]
    for regimen in regimens(model):
        rate = net(regimen, "founder", "dtep")
        if "axl_inhibitor" in regimen:
            assert rate < DIES, regimen
        else:
            # Less the outflow by mutation, b * multiplier * sum(U) = 0.03 * 10 * 2.2e-6.
            assert rate == pytest.approx(birth - death, abs=1e-5), regimen
            assert rate > 0, regimen
