"""Pharmacodynamics (DESIGN §1.2) against hand calculations.

Pathways EGFR (bit 0), MET (1), MAPK (2); the driver is EGFR. Drugs:
osimertinib on EGFR (IC50 0.02, Hill 1, Imax 0.999), gefitinib on EGFR
(IC50 0.05), savolitinib on MET (IC50 0.05). Alterations: C797S (1000-fold
IC50 shift for osimertinib), MET_amp (adds MET), KRAS_mut (adds MAPK).
"""

from __future__ import annotations

import numpy as np
import pytest

from clonesim.model.pharmacodynamics import active_pathways, genotype_signal, hill_inhibition

OSI, GEF, SAVO = 0, 1, 2
C797S, MET_AMP, KRAS = 1 << 0, 1 << 1, 1 << 2
DRIVER = 1 << 0
ALTERATION_PATHWAY = np.array([0, 1 << 1, 1 << 2], dtype=np.int64)
FOLD = np.ones((3, 3))
FOLD[0, OSI] = 1000.0
IC50 = np.full((3, 3), np.inf)
HILL = np.ones((3, 3))
IMAX = np.zeros((3, 3))
for drug, pathway, ic50 in ((OSI, 0, 0.02), (GEF, 0, 0.05), (SAVO, 1, 0.05)):
    IC50[drug, pathway] = ic50
    IMAX[drug, pathway] = 0.999


def signal(genotype: int, osimertinib=0.0, gefitinib=0.0, savolitinib=0.0) -> float:
    exposure = np.array([osimertinib, gefitinib, savolitinib])
    return genotype_signal(np.int64(genotype), exposure, np.int64(DRIVER), ALTERATION_PATHWAY,
                           FOLD, IC50, HILL, IMAX)


# Hand calculations: h = 0.999 x / (1 + x).
H_OSI = 0.999 * 50 / 51  # x = 1 / 0.02
H_SAVO = 0.999 * 20 / 21  # x = 1 / 0.05
H_GEF = 0.999 * 20 / 21
H_OSI_C797S = 0.999 * 0.05 / 1.05  # x = 1 / (0.02 * 1000)


def test_hill_curve():
    assert hill_inhibition(0.02, 0.02, 1.0, 0.999) == pytest.approx(0.4995)
    assert hill_inhibition(0.0, 0.02, 1.0, 0.999) == 0.0
    assert hill_inhibition(1.0, 0.5, 2.0, 1.0) == pytest.approx(4 / 5)
    assert hill_inhibition(1.0, 0.5, 2.0, 0.0) == 0.0


def test_active_pathways():
    assert active_pathways(np.int64(0), np.int64(DRIVER), ALTERATION_PATHWAY) == 0b001
    assert active_pathways(np.int64(MET_AMP | KRAS), np.int64(DRIVER), ALTERATION_PATHWAY) == 0b111


def test_no_drug_full_signal():
    for genotype in (0, C797S, MET_AMP, KRAS, C797S | MET_AMP):
        assert signal(genotype) == 1.0
    no_drugs = np.zeros(0)
    assert genotype_signal(np.int64(MET_AMP), no_drugs, np.int64(DRIVER), ALTERATION_PATHWAY,
                           np.ones((3, 0)), np.zeros((0, 3)), np.zeros((0, 3)),
                           np.zeros((0, 3))) == 1.0


def test_founder_is_inhibited_by_osimertinib():
    assert signal(0, osimertinib=1.0) == pytest.approx(1 - H_OSI)


def test_met_amplification_bypasses_osimertinib_alone():
    assert signal(MET_AMP, osimertinib=1.0) == 1.0


def test_met_amplification_is_shut_by_osimertinib_plus_savolitinib():
    """Both routes inhibited: the least-inhibited one (MET) carries the signal."""
    expected = max(1 - H_OSI, 1 - H_SAVO)
    assert signal(MET_AMP, osimertinib=1.0, savolitinib=1.0) == pytest.approx(expected)


def test_c797s_escapes_osimertinib_through_the_ic50_shift():
    assert signal(C797S, osimertinib=1.0) == pytest.approx(1 - H_OSI_C797S)
    # ... but not gefitinib, which it does not resist.
    assert signal(C797S, gefitinib=1.0) == pytest.approx(1 - H_GEF)


def test_bliss_independence_of_two_drugs_on_one_pathway():
    assert signal(0, osimertinib=1.0, gefitinib=1.0) == pytest.approx((1 - H_OSI) * (1 - H_GEF))


def test_downstream_route_no_rtk_inhibitor_reaches():
    assert signal(KRAS, osimertinib=1.0, gefitinib=1.0, savolitinib=1.0) == 1.0


def test_savolitinib_alone_does_not_touch_the_driver():
    assert signal(0, savolitinib=1.0) == 1.0
    assert signal(MET_AMP, savolitinib=1.0) == 1.0  # EGFR still open
