"""Pharmacodynamics of DESIGN §1.2 as kernel-ready functions (arrays and scalars only).

Exposure c_d is in units of the drug's standard regimen (1.0 = the standard
regimen's steady-state average), so IC50s are in the same units.

* Hill inhibition of pathway r by drug d in genotype g:
  h_{d,r}(c) = Imax x^n / (1 + x^n),  x = c / (IC50_{d,r} f_{g,d}),
  with f_{g,d} the product of the IC50 fold shifts of the alterations in g.
* Bliss independence across drugs on one pathway: 1 - I_r = prod_d (1 - h_{d,r}).
* Bypass rule: the signal flows through the least-inhibited active pathway,
  s_g = max over active r of (1 - I_r). Active pathways are the driver plus
  those the genotype's alterations add.

Tables (D drugs, R pathways, A alterations):
``target_ic50[D, R]``, ``target_hill[D, R]``, ``target_max_inhibition[D, R]``
(0 where drug d does not act on pathway r), ``alteration_ic50_fold[A, D]``
(1 where the alteration does not resist the drug).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def hill_inhibition(exposure, ic50, hill, max_inhibition):
    """h(c) = Imax x^n / (1 + x^n), x = c / IC50; 0 for no exposure or no effect."""
    if exposure <= 0.0 or max_inhibition <= 0.0:
        return 0.0
    x_n = (exposure / ic50) ** hill
    return max_inhibition * x_n / (1.0 + x_n)


@njit(cache=True)
def active_pathways(genotype, driver_pathway_mask, alteration_pathway_mask):
    """Bit mask of the pathways that signal in genotype g: the driver plus any an alteration adds."""
    mask = driver_pathway_mask
    for a in range(alteration_pathway_mask.shape[0]):
        if (genotype >> a) & 1:
            mask |= alteration_pathway_mask[a]
    return mask


@njit(cache=True)
def genotype_signal(genotype, exposure, driver_pathway_mask, alteration_pathway_mask,
                    alteration_ic50_fold, target_ic50, target_hill, target_max_inhibition):
    """s_g = max over active pathways r of prod_d (1 - h_{d,r}(c_d / f_{g,d})), in [0, 1].

    ``exposure`` has shape (D,). Without drugs (D = 0 or all exposures 0) s_g = 1.
    """
    num_drugs = exposure.shape[0]
    num_pathways = target_ic50.shape[1]
    active = active_pathways(genotype, driver_pathway_mask, alteration_pathway_mask)
    signal = 0.0
    for r in range(num_pathways):
        if not (active >> r) & 1:
            continue
        passing = 1.0  # 1 - I_r, Bliss independence across drugs
        for d in range(num_drugs):
            if exposure[d] <= 0.0 or target_max_inhibition[d, r] <= 0.0:
                continue
            fold = 1.0
            for a in range(alteration_ic50_fold.shape[0]):
                if (genotype >> a) & 1:
                    fold *= alteration_ic50_fold[a, d]
            passing *= 1.0 - hill_inhibition(
                exposure[d], target_ic50[d, r] * fold, target_hill[d, r],
                target_max_inhibition[d, r],
            )
        signal = max(signal, passing)
        if signal >= 1.0:
            break
    return signal
